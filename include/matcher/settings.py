"""Where things live and how the pipeline is tuned: every value is a setting, none is code.

:class:`Locations` names the S3 places (from ``MATCHER_*`` environment variables);
:class:`TrainingConfig` and :class:`GateConfig` carry the knobs a manual trigger can change.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

LOSSES = ("cosine", "multiple_negatives", "triplet")
BASE_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Locations:
    """S3 URIs of the pipeline's inputs and outputs.

    raw_cvs:     ``<prefix>/<CATEGORY>/<file>`` CV files (the Kaggle ``data/data`` layout).
    jobs_file:   JSON mapping each category to a job description or a list of them.
    job_offers:  job-offer documents (PDF/DOCX/TXT) to embed beside the descriptions.
    work:        run-scoped outputs (``runs/<run_id>/...``), the ingestion ledger and the text cache.
    registry:    the versioned model registry (``models/<version>/``, ``production.json``).
    embeddings:  embeddings by model version and the ``current.json`` pointer.
    """

    raw_cvs: str = "s3://matcher/raw/cvs"
    jobs_file: str = "s3://matcher/raw/job_descriptions.json"
    job_offers: str = "s3://matcher/raw/job-offers"
    work: str = "s3://matcher/work"
    registry: str = "s3://matcher/registry"
    embeddings: str = "s3://matcher/embeddings"

    ENV = {
        "raw_cvs": "MATCHER_RAW_CVS_URI",
        "jobs_file": "MATCHER_JOBS_FILE_URI",
        "job_offers": "MATCHER_JOB_OFFERS_URI",
        "work": "MATCHER_WORK_URI",
        "registry": "MATCHER_REGISTRY_URI",
        "embeddings": "MATCHER_EMBEDDINGS_URI",
    }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: str) -> Locations:
        environ = os.environ if environ is None else environ
        values = {name: environ[var] for name, var in cls.ENV.items() if environ.get(var)}
        values.update({k: v for k, v in overrides.items() if v})
        return cls(**values)

    @classmethod
    def in_bucket(cls, bucket: str) -> Locations:
        """The default layout, in another bucket (tests and benchmarks use throwaway ones)."""
        return cls(**{f.name: getattr(cls(), f.name).replace("s3://matcher/", f"s3://{bucket}/", 1) for f in fields(cls)})

    def buckets(self) -> set[str]:
        from include.matcher.storage import S3Uri

        return {S3Uri.parse(getattr(self, f.name)).bucket for f in fields(self)}

    def run_uri(self, run_id: str) -> str:
        from include.matcher.storage import join_uri

        return join_uri(self.work, "runs", safe_run_id(run_id))


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of one fine-tuning run (the old ``fine_tune_matcher`` flags and a few more)."""

    loss: str = "multiple_negatives"
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 5e-5
    negative_ratio: float = 1.0
    base_model: str = BASE_MODEL
    warmup_ratio: float = 0.1
    seed: int = 42
    max_seq_length: int = 256
    checkpoint_steps: int = 50
    # Hard negatives per CV, mined with the base model (0: off); a candidate negative must score at
    # least ``hard_negative_margin`` below the CV's own category, so near-synonyms are not used.
    hard_negatives: int = 0
    hard_negative_margin: float = 0.05
    # multiple_negatives only: >0 uses CachedMultipleNegativesRankingLoss with this mini-batch, so
    # a large batch (more in-batch negatives) fits in memory.
    cached_mini_batch: int = 0
    # Evaluate on the validation split every checkpoint and keep the best checkpoint, not the last.
    select_best: bool = True
    # Train on CV text without its first line. In the Kaggle-style data that line is the job title
    # and names the label: a model trained with it learns to read the title, which new CVs need not
    # have, instead of the experience below it.
    strip_titles: bool = True

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {self.loss!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive finite number, not {self.learning_rate!r}")
        if self.checkpoint_steps < 1:
            raise ValueError(f"checkpoint_steps must be at least 1, not {self.checkpoint_steps!r}")
        if not (math.isfinite(self.warmup_ratio) and 0 <= self.warmup_ratio < 1):
            raise ValueError(f"warmup_ratio must be in [0, 1), not {self.warmup_ratio!r}")
        if not (math.isfinite(self.negative_ratio) and self.negative_ratio >= 0):
            raise ValueError(f"negative_ratio must be a finite number >= 0, not {self.negative_ratio!r}")
        if not (math.isfinite(self.hard_negative_margin) and 0 <= self.hard_negative_margin <= 1):
            raise ValueError(f"hard_negative_margin must be in [0, 1], not {self.hard_negative_margin!r}")
        if self.hard_negatives < 0 or self.cached_mini_batch < 0:
            raise ValueError("hard_negatives and cached_mini_batch must not be negative")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrainingConfig:
        known = {f.name: f.type for f in fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in known and v is not None}
        return _coerce(cls, kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of the corpus held out, assigned by content hash so a CV never changes side."""

    validation_fraction: float = 0.1
    test_fraction: float = 0.2


@dataclass(frozen=True)
class GateConfig:
    """When a candidate may replace production."""

    min_improvement: float = 0.01
    primary_metric: str = "mrr@10"
    # No category may lose more than this on the primary metric (only categories with enough
    # held-out CVs to measure it), and the candidate must reach an absolute floor.
    max_category_drop: float = 0.10
    min_category_support: int = 5
    min_primary: float = 0.30
    # A candidate whose held-out CV vectors are this alike on average (mean pairwise cosine) has
    # collapsed: it cannot rank anything, whatever its metrics say. Working models sit near 0.3.
    max_mean_cosine: float = 0.95

    def __post_init__(self) -> None:
        from include.matcher.evaluation import METRICS

        if self.primary_metric not in METRICS:
            raise ValueError(f"primary_metric must be one of {METRICS}, not {self.primary_metric!r}")
        if not (math.isfinite(self.min_improvement) and 0 <= self.min_improvement <= 1):
            raise ValueError(f"min_improvement must be in [0, 1], not {self.min_improvement!r}")
        for name in ("max_category_drop", "min_primary", "max_mean_cosine"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise ValueError(f"{name} must be in [0, 1], not {value!r}")
        if self.min_category_support < 1:
            raise ValueError(f"min_category_support must be at least 1, not {self.min_category_support!r}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> GateConfig:
        kwargs = {f.name: values[f.name] for f in fields(cls) if values.get(f.name) is not None}
        return _coerce(cls, kwargs)


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what the parser accepts and on what parsing one file may cost.

    Environment overrides: ``MATCHER_PARSE_TIMEOUT_S``, ``MATCHER_PARSE_MEMORY_MB``,
    ``MATCHER_PARSE_WORKERS``, ``MATCHER_MAX_FILE_BYTES``.
    """

    max_bytes: int = 20 * 1024 * 1024
    min_chars: int = 100
    max_docx_uncompressed_bytes: int = 200 * 1024 * 1024
    max_docx_entries: int = 2000
    timeout_s: float = 60.0
    memory_mb: int = 2048
    workers: int = 0  # 0: one per core


def parse_limits_from_env(environ: dict[str, str] | None = None) -> ParseLimits:
    environ = os.environ if environ is None else environ
    names = {"timeout_s": "MATCHER_PARSE_TIMEOUT_S", "memory_mb": "MATCHER_PARSE_MEMORY_MB", "workers": "MATCHER_PARSE_WORKERS", "max_bytes": "MATCHER_MAX_FILE_BYTES"}
    return _coerce(ParseLimits, {field_name: environ[var] for field_name, var in names.items() if environ.get(var)})


@dataclass(frozen=True)
class ShardConfig:
    """How the heavy stages split their work into mapped tasks (one shard, one task instance).

    A shard should take a worker a few minutes: enough work to dwarf a task's start-up (~2 s), small
    enough that a retry repeats little. Environment overrides: ``MATCHER_PARSE_SHARD_SIZE``,
    ``MATCHER_EMBED_SHARD_SIZE``.
    """

    parse_files: int = 500
    embed_texts: int = 2000

    def __post_init__(self) -> None:
        if self.parse_files < 1 or self.embed_texts < 1:
            raise ValueError("shard sizes must be at least 1")


def shard_config_from_env(environ: dict[str, str] | None = None) -> ShardConfig:
    environ = os.environ if environ is None else environ
    names = {"parse_files": "MATCHER_PARSE_SHARD_SIZE", "embed_texts": "MATCHER_EMBED_SHARD_SIZE"}
    return _coerce(ShardConfig, {field_name: environ[var] for field_name, var in names.items() if environ.get(var)})


@dataclass(frozen=True)
class PipelineConfig:
    """Everything one run needs besides its inputs."""

    locations: Locations = field(default_factory=Locations)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    limits: ParseLimits = field(default_factory=parse_limits_from_env)
    shards: ShardConfig = field(default_factory=shard_config_from_env)

    def with_params(self, params: dict[str, Any]) -> PipelineConfig:
        """Apply a manual trigger's params (Airflow ``params``) over these defaults."""
        merged_training = {**self.training.to_dict(), **{k: v for k, v in params.items() if v is not None}}
        merged_gate = {**asdict(self.gate), **{k: v for k, v in params.items() if v is not None}}
        locations = self.locations
        if params.get("raw_prefix"):
            locations = replace(locations, raw_cvs=params["raw_prefix"])
        return replace(
            self,
            locations=locations,
            training=TrainingConfig.from_mapping(merged_training),
            gate=GateConfig.from_mapping(merged_gate),
        )


def safe_run_id(run_id: str) -> str:
    """An Airflow run id made safe for an S3 key segment (``manual__2026-01-01T02:00:00+00:00``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-")
    if not safe.strip("."):
        raise ValueError(f"run id {run_id!r} cannot name a run folder: use letters, digits, '.', '_' or '-'")
    return safe


def _boolean(value: Any) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"} if isinstance(value, str) else bool(value)


def _coerce(cls, kwargs: dict[str, Any]):
    casts = {"int": int, "float": float, "str": str, "bool": _boolean}
    typed = {}
    for f in fields(cls):
        if f.name in kwargs:
            cast = casts.get(str(f.type))
            typed[f.name] = cast(kwargs[f.name]) if cast else kwargs[f.name]
    return cls(**typed)
