"""What every stage is given besides its input URIs: the run's folder, the run's settings and the store.

Every stage function takes its input URIs first and one :class:`RunContext` last, and is named after
its DAG task (``find_new_files``, ``plan_shards``, ``build_pairs``, ``fine_tune``, ``evaluate`` ...). The
DAG builds the context from a task's params and run id (``include/airflow_support/tasks.py``), the CLI from
its flags, a test from what it set up: the same functions, called the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.matcher.foundations.settings import Locations, PipelineConfig, run_defaults
from include.matcher.foundations.storage import ObjectStore


@dataclass(frozen=True)
class RunContext:
    run_uri: str | None  # None: an operator's action outside any run (a promote or refresh from the CLI)
    config: PipelineConfig
    storage: ObjectStore

    @property
    def locations(self) -> Locations:
        return self.config.locations

    @classmethod
    def of(cls, run_id: str | None, params: dict | None, storage: ObjectStore, locations: Locations | None = None):
        """Run ``run_id``'s context: the deployment's settings (or ``locations``) with the run's params over them."""
        given = {k: v for k, v in (params or {}).items() if v is not None}
        config = PipelineConfig(locations=locations or Locations.from_env()).with_params({**run_defaults(), **given})
        return cls(config.locations.run_uri(run_id) if run_id else None, config, storage)
