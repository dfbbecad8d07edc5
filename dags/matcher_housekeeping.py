"""
### Retention housekeeping

Every day after the night (`MATCHER_HOUSEKEEPING_SCHEDULE`, default 04:30; `none`: manual only), and on
a manual trigger. A separate DAG rather than a task of `matcher_retraining`: a quiet night stops that
DAG after ingest, and retention must not wait for new CVs. Deletes, per the retention settings, what
holds CV text or vectors in runs older than `MATCHER_RETENTION_DAYS` (pairs, training metadata,
held-out vectors, checkpoints; reports and metrics stay), embeddings snapshots beyond the newest
`MATCHER_KEEP_SNAPSHOTS` that no pointer names, text cache entries no ledger entry refers to, and
search-log days older than `MATCHER_AUDIT_RETENTION_DAYS`. Never the registry, the current snapshot,
the ledger, or a run younger than the retention. Same as `python -m include.matcher housekeeping`.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from include.airflow_support import operations_dag, run_stage
from include.matcher.foundations.settings import deployment_setting

SCHEDULE = deployment_setting("MATCHER_HOUSEKEEPING_SCHEDULE")


@dag(
    dag_id="matcher_housekeeping",
    **operations_dag(schedule=None if SCHEDULE.lower() == "none" else SCHEDULE),
    tags=["ml", "matcher", "operations", "privacy"],
    doc_md=__doc__,
)
def matcher_housekeeping():
    @task
    def housekeeping(params=None, run_id=None) -> dict:
        """Delete what the retention settings keep no longer; the counts."""
        from include.matcher.stages import housekeeping as stage

        return run_stage(stage.housekeeping, params=params, run_id=run_id)

    housekeeping()


matcher_housekeeping()
