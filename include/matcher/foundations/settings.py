"""Where things live and how the pipeline is tuned: every value is a setting, none is code.

:class:`Locations` names the S3 places (from ``MATCHER_*`` environment variables);
:class:`TrainingConfig` and :class:`GateConfig` carry the knobs a manual trigger can change.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from include.matcher.foundations.losses import LOSSES
from include.matcher.foundations.metrics import PER_CV_METRICS

BASE_MODEL = "all-MiniLM-L6-v2"
RETRAINING_DAG_ID = "matcher_retraining"  # the DAG, its Airflow permissions and the Matcher page's links


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def parse_boolean(value: Any, name: str = "value") -> bool:
    """A yes/no setting, read one way everywhere: ``true/yes/on/1`` or ``false/no/off/0`` (any case,
    surrounding spaces ignored). Anything else is an error, never a silent ``False``: a typo in
    ``MATCHER_REQUIRE_APPROVAL`` must not turn human oversight off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = value.strip().lower() if isinstance(value, str) else None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{name} must be one of true/false, yes/no, on/off, 1/0, not {value!r}")


@dataclass(frozen=True)
class Variable:
    """A deployment setting: one environment variable, its default ("" for unset), what it does, and
    what it may hold (``kind``: text, int, number, flag or choice; bounds inclusive, ``above``
    exclusive). A value outside that is refused where it is read, in one line."""

    name: str
    default: str
    help: str
    kind: str = "text"
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: str) -> str:
        """``value`` when it is one this variable may hold; ValueError saying what it may hold otherwise."""
        if self.kind == "text" or (value == "" and self.default == ""):
            return value
        if self.kind == "flag":
            parse_boolean(value, self.name)
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, not {value!r}")
            return value
        try:
            number = int(value) if self.kind == "int" else float(value)
        except ValueError:
            raise ValueError(f"{self.name} must be {self.describe()}, not {value!r}") from None
        if not math.isfinite(number) or not self.within(number):
            raise ValueError(f"{self.name} must be {self.describe()}, not {value!r}")
        return value

    def within(self, number: float) -> bool:
        return (
            (self.minimum is None or number >= self.minimum)
            and (self.maximum is None or number <= self.maximum)
            and (self.above is None or number > self.above)
        )

    def describe(self) -> str:
        """What the variable may hold, in words (errors and the table in docs/settings.md)."""
        if self.kind == "flag":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(f"`{c}`" for c in self.choices)
        what = "a whole number" if self.kind == "int" else "a number"
        bounds = [
            f"{word} {bound:g}"
            for word, bound in (("at least", self.minimum), ("above", self.above), ("at most", self.maximum))
            if bound is not None
        ]
        return what + (" " + " and ".join(bounds) if bounds else "")


# Every environment variable the project reads, declared once: code reads them through
# :func:`deployment_setting`, and docs/settings.md's environment table is generated from this (a test keeps both so).
DEPLOYMENT = (
    Variable("MATCHER_RAW_CVS_URI", "s3://matcher/raw/cvs", "raw CVs, `<prefix>/<CATEGORY>/<file>`"),
    Variable("MATCHER_JOBS_FILE_URI", "s3://matcher/raw/job_descriptions.json", "job descriptions JSON"),
    Variable("MATCHER_JOB_OFFERS_URI", "s3://matcher/raw/job-offers", "job-offer documents (PDF/DOCX/TXT) to embed"),
    Variable(
        "MATCHER_WORK_URI",
        "s3://matcher/work",
        "run outputs (`runs/<run>/`), ingestion ledger (`state/ledger.json`), text cache (`texts/`)",
    ),
    Variable("MATCHER_REGISTRY_URI", "s3://matcher/registry", "model registry"),
    Variable("MATCHER_EMBEDDINGS_URI", "s3://matcher/embeddings", "embeddings by model version, `current.json`"),
    Variable("MATCHER_SCHEDULE", "0 2 * * *", "the DAG's cron schedule; `none` for manual and API triggers only"),
    Variable(
        "MATCHER_AWS_CONN_ID",
        "aws_default",
        'Airflow connection for S3 (endpoint in its extra: `{"endpoint_url": ...}`)',
    ),
    Variable("MATCHER_GPU_QUEUE", "", "route `train.fine_tune` to a GPU worker's Celery queue"),
    Variable("MATCHER_GPU_POOL", "", "and to this Airflow pool (one fine-tune per GPU)"),
    Variable("MATCHER_WORKER_NAME", "", "the host name a task records (`make up-celery` names its two workers)"),
    Variable("MATCHER_ALERT_EMAIL", "", "failure notifications by e-mail (smtp provider); failures are always logged"),
    Variable("MATCHER_SLACK_CONN_ID", "", "failure notifications through this Slack webhook connection"),
    Variable("MATCHER_PARSE_SHARD_SIZE", "500", "files per `parse_shard` task", "int", minimum=1),
    Variable("MATCHER_EMBED_SHARD_SIZE", "2000", "CVs per `embed_shard` task", "int", minimum=1),
    Variable(
        "MATCHER_PARSE_TIMEOUT_S",
        "60",
        "seconds one file may take to parse (see docs/operations.md)",
        "number",
        above=0,
    ),
    Variable("MATCHER_PARSE_MEMORY_MB", "2048", "address space one parser process may take", "int", minimum=256),
    Variable("MATCHER_PARSE_WORKERS", "0", "parser processes (0: one per core)", "int", minimum=0),
    Variable("MATCHER_MAX_FILE_BYTES", str(20 * 1024 * 1024), "largest raw file parsed (20 MiB)", "int", minimum=1),
    Variable(
        "MATCHER_PDF_EXTRACTOR",
        "pdfium",
        "what reads PDF text: `pdfium` (words rebuilt from pdfium's character boxes, pdfplumber for a file "
        "whose fast text looks wrong) or `pdfplumber` (the reference, ~10x slower); a change re-parses every PDF",
        "choice",
        choices=("pdfium", "pdfplumber"),
    ),
    Variable(
        "MATCHER_MAX_TEXT_CHARS",
        "200000",
        "most characters of text a CV may have (`too_long` beyond)",
        "int",
        minimum=1,
    ),
    Variable(
        "MATCHER_EMBED_BACKEND",
        "torch",
        "runtime of the embedding refresh: `torch`, `onnx` or `onnx-int8` (ONNX Runtime; the export is made once "
        "per model version and stored in `models/<version>/onnx/`)",
        "choice",
        choices=("torch", "onnx", "onnx-int8"),
    ),
    Variable(
        "MATCHER_ENCODE_PRECISION",
        "auto",
        "precision models read CVs and jobs with outside training (validation, refresh, search): `bf16` (linear "
        "layers in bfloat16 under autocast; the attention's query and key, the norms and softmax in fp32: on CPUs "
        "with AMX a 512-token CV costs about what a 256-token one did in fp32, and each top 10 of fp32 stays "
        "above 0.99, see docs/training.md), `fp32`, or `auto` (bf16 where the CPU has AMX or the GPU bfloat16, "
        "else fp32)",
        "choice",
        choices=("auto", "fp32", "bf16"),
    ),
    Variable(
        "MATCHER_CV_POOLING",
        "truncate",
        "how a CV longer than the model's reading length becomes one vector: `truncate` (its first "
        "`max_seq_length` tokens), or `mean` / `max` over windows of that length; training reads CVs alike "
        "(each window an example)",
        "choice",
        choices=("truncate", "mean", "max"),
    ),
    Variable("MATCHER_MODEL_CACHE", "~/.cache/matcher/models", "local copies of models downloaded from S3"),
    Variable(
        "MATCHER_MODEL_CACHE_KEEP",
        "6",
        "models the cache keeps: a download removes the least recently used beyond this (one not used in "
        "the last ten minutes), so a worker's disk does not grow by a model every night",
        "int",
        minimum=1,
    ),
    Variable(
        "MATCHER_MAX_MODEL_BYTES",
        str(4 * 1024**3),
        "largest model folder downloaded (4 GiB); more than 200 files, no top-level `modules.json`, no safetensors "
        "weights or a JSON file over 32 MiB are refused before anything is fetched",
        "int",
        minimum=1,
    ),
    Variable(
        "MATCHER_REDACT_IDENTIFIERS",
        "true",
        "the encoder reads CVs without names, e-mails, phones, addresses, profile links, birth dates and "
        "pronouns (`foundations/redaction.py`; `texts/` keeps the whole text); `false` only to measure the "
        "model alone",
        "flag",
    ),
    Variable(
        "MATCHER_AUDIT_NAMES",
        "",
        "a JSON file of the bias audit's groups of names (default: the shipped audit-study names, "
        "`include/matcher/foundations/audit_names.json`)",
    ),
    Variable(
        "MATCHER_REQUIRE_APPROVAL",
        "true",
        "the default of the `require_approval` param: a person approves each promotion in the Airflow UI "
        "(`make demo` and `make test` set `false`)",
        "flag",
    ),
    Variable(
        "MATCHER_RUN_DEFAULTS",
        "",
        'a deployment\'s own defaults for run settings, as a JSON object (e.g. `{"epochs": 2}`): the trigger '
        "form shows them and scheduled nights use them; a trigger's params and CLI flags still win. "
        "`require_approval` and `raw_prefix` have variables of their own",
    ),
    Variable(
        "MATCHER_REVIEWERS",
        "",
        "Airflow user ids (comma-separated) who may answer a promotion's approval: Airflow refuses anyone "
        "else's answer; they are notified (MATCHER_ALERT_EMAIL, MATCHER_SLACK_CONN_ID) when a night waits. "
        "Empty: anyone allowed to act on the DAG",
    ),
    Variable(
        "MATCHER_APPROVAL_TIMEOUT_HOURS",
        "24",
        "how long a promotion waits for a reviewer; unanswered, it is rejected",
        "number",
        above=0,
        maximum=24 * 365,
    ),
    Variable(
        "MATCHER_ERASURE_KEY",
        "",
        "the key of the erasure tombstones' keyed hash (default: a random one made once in `<work>/state/`)",
    ),
    Variable(
        "MATCHER_RETENTION_DAYS",
        "90",
        "housekeeping deletes what holds CV text or vectors (pairs, training metadata, held-out vectors, "
        "validation's vector memo, checkpoints) in runs older than this; reports and metrics stay",
        "int",
        minimum=1,
    ),
    Variable(
        "MATCHER_HOUSEKEEPING_SCHEDULE",
        "30 4 * * *",
        "cron of the `matcher_housekeeping` DAG (retention); `none` for manual and API triggers only",
    ),
    Variable(
        "MATCHER_KEEP_SNAPSHOTS",
        "2",
        "embeddings snapshots kept besides the one `current.json` names",
        "int",
        minimum=0,
    ),
    Variable(
        "MATCHER_AUDIT_RETENTION_DAYS",
        "183",
        "how long the search log is kept (never less than six months: EU AI Act Art. 26(6))",
        "int",
        minimum=183,
    ),
    Variable(
        "MATCHER_S3_RETRY_SECONDS", "120", "how long one S3 operation is retried through outages", "number", minimum=0
    ),
    Variable(
        "MATCHER_LOG_LEVEL",
        "INFO",
        "the CLI's log level (`DEBUG` shows a user error's traceback)",
        "choice",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    ),
    Variable(
        "MATCHER_CELERY_REDIS_PORT",
        "6390",
        "`make up-celery`: Redis (the Celery broker)",
        "int",
        minimum=1,
        maximum=65535,
    ),
    Variable(
        "MATCHER_CELERY_POSTGRES_PORT",
        "5439",
        "`make up-celery`: PostgreSQL (metadata DB, result backend)",
        "int",
        minimum=1,
        maximum=65535,
    ),
    Variable(
        "MATCHER_CELERY_API_PORT",
        "8088",
        "`make up-celery`: the Airflow API server and UI",
        "int",
        minimum=1,
        maximum=65535,
    ),
    Variable("MATCHER_CELERY_S3_PORT", "8343", "`make up-celery`: its embedded S3", "int", minimum=1, maximum=65535),
    Variable(
        "MATCHER_CELERY_POSTGRES_DIR",
        "",
        "`make up-celery`: PostgreSQL's data and sockets (unset: where its user can reach them, see below)",
    ),
)
VARIABLES = {variable.name: variable for variable in DEPLOYMENT}


def deployment_setting(name: str, environ: dict[str, str] | None = None) -> str:
    """A deployment setting's value: the environment's when set, else its declared default.

    ``name`` must be declared in :data:`DEPLOYMENT` (a KeyError otherwise: a variable read but not
    declared would be missing from docs/settings.md).
    """
    declared = VARIABLES[name]
    environ = os.environ if environ is None else environ
    value = environ.get(name) or declared.default
    return declared.check(value.strip() if declared.kind != "text" else value)


def deployment_flag(name: str, environ: dict[str, str] | None = None) -> bool:
    """A yes/no deployment setting (:func:`parse_boolean`)."""
    return parse_boolean(deployment_setting(name, environ), name)


def check_deployment(environ: dict[str, str] | None = None) -> None:
    """Every deployment setting checked at once (ValueError naming the first bad one): the CLI, the
    DAGs and the Matcher page call this when they start, so a bad value stops them with one line
    rather than deep inside a night."""
    for variable in DEPLOYMENT:
        deployment_setting(variable.name, environ)
    run_defaults(environ)


def run_defaults(environ: dict[str, str] | None = None) -> dict:
    """``MATCHER_RUN_DEFAULTS``: run settings this deployment defaults to, checked as a run's params are."""
    text = deployment_setting("MATCHER_RUN_DEFAULTS", environ).strip()
    if not text:
        return {}
    try:
        values = json.loads(text)
    except ValueError:
        raise ValueError(f"MATCHER_RUN_DEFAULTS is not JSON: {text[:80]!r}") from None
    if not isinstance(values, dict):
        raise ValueError('MATCHER_RUN_DEFAULTS must be a JSON object of run settings, e.g. {"epochs": 2}')
    own = sorted({"require_approval", "raw_prefix"} & set(values))
    if own:
        raise ValueError(f"MATCHER_RUN_DEFAULTS cannot set {own}: MATCHER_REQUIRE_APPROVAL and MATCHER_RAW_CVS_URI do")
    try:
        PipelineConfig(locations=Locations.from_env()).with_params(values)
    except (ValueError, TypeError) as error:
        raise ValueError(f"MATCHER_RUN_DEFAULTS: {error}") from None
    return values


def environment_table() -> str:
    """The deployment settings as a Markdown table (docs/settings.md): variable, default, meaning."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for variable in DEPLOYMENT:
        default = f"`{variable.default}`" if variable.default else "unset"
        holds = f" ({variable.describe()})" if variable.kind not in ("text", "choice") else ""
        rows.append(f"| `{variable.name}` | {default} | {variable.help}{holds} |")
    return "\n".join(rows)


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

    raw_cvs: str = VARIABLES["MATCHER_RAW_CVS_URI"].default
    jobs_file: str = VARIABLES["MATCHER_JOBS_FILE_URI"].default
    job_offers: str = VARIABLES["MATCHER_JOB_OFFERS_URI"].default
    work: str = VARIABLES["MATCHER_WORK_URI"].default
    registry: str = VARIABLES["MATCHER_REGISTRY_URI"].default
    embeddings: str = VARIABLES["MATCHER_EMBEDDINGS_URI"].default

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
        values = {name: deployment_setting(var, environ) for name, var in cls.ENV.items()}
        values.update({k: v for k, v in overrides.items() if v})
        return cls(**values)

    @classmethod
    def in_bucket(cls, bucket: str) -> Locations:
        """The default layout, in another bucket (tests and benchmarks use throwaway ones)."""
        return cls(
            **{f.name: getattr(cls(), f.name).replace("s3://matcher/", f"s3://{bucket}/", 1) for f in fields(cls)}
        )

    def buckets(self) -> set[str]:
        from include.matcher.foundations.uris import S3Uri

        return {S3Uri.parse(getattr(self, f.name)).bucket for f in fields(self)}

    def run_uri(self, run_id: str) -> str:
        from include.matcher.foundations import layout
        from include.matcher.foundations.uris import join_uri

        return join_uri(layout.runs(self.work), run_folder(run_id))

    def run_folder_uri(self, folder: str) -> str:
        """The run folder called ``folder`` (a name listed under ``runs/``); ValueError for anything else."""
        from include.matcher.foundations import layout
        from include.matcher.foundations.uris import join_uri

        if not RUN_FOLDER.fullmatch(folder) or not folder.strip("."):
            raise ValueError(f"{folder!r} is not a run folder name")
        return join_uri(layout.runs(self.work), folder)


def setting(default, help: str, section: str, *, minimum=None, maximum=None, above=None, choices=None, pattern=None):
    """A run setting, declared once: the DAG's trigger form, the CLI flags, the docs/settings.md table and the
    checks in ``__post_init__`` are all generated from this (``above``: an exclusive minimum)."""
    bounds = {"minimum": minimum, "maximum": maximum, "above": above, "choices": choices, "pattern": pattern}
    return field(
        default=default,
        metadata={"help": help, "section": section, **{k: v for k, v in bounds.items() if v is not None}},
    )


def check_settings(config) -> None:
    """Refuse a value outside what its field declares (NaN and infinities too): one message per field."""
    for f in fields(config):
        value, rules = getattr(config, f.name), f.metadata
        if not rules:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{f.name} must be a finite number, not {value!r}")
        if "choices" in rules and value not in rules["choices"]:
            raise ValueError(f"{f.name} must be one of {tuple(rules['choices'])}, not {value!r}")
        if "pattern" in rules and not re.fullmatch(rules["pattern"], value):
            raise ValueError(f"{f.name} must match {rules['pattern']!r}, not {value!r}")
        if "minimum" in rules and value < rules["minimum"]:
            raise ValueError(f"{f.name} must be at least {rules['minimum']}, not {value!r}")
        if "above" in rules and not value > rules["above"]:
            raise ValueError(f"{f.name} must be above {rules['above']}, not {value!r}")
        if "maximum" in rules and value > rules["maximum"]:
            raise ValueError(f"{f.name} must be at most {rules['maximum']}, not {value!r}")


TRAINING, GATE, DATA = "Training", "Gate", "Data"


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of one fine-tuning run (the old ``fine_tune_matcher`` flags and a few more)."""

    loss: str = setting(
        "multiple_negatives",
        "Training loss: cosine (labelled pairs), multiple_negatives (in-batch negatives, one CV per category in a "
        "batch), triplet.",
        TRAINING,
        choices=LOSSES,
    )
    epochs: int = setting(
        3,
        "Passes over the training examples; with select_best the best checkpoint is kept.",
        TRAINING,
        minimum=1,
        maximum=50,
    )
    batch_size: int = setting(16, "Examples per step.", TRAINING, minimum=1, maximum=1024)
    learning_rate: float = setting(
        5e-5, "AdamW peak learning rate (linear warmup, then decay).", TRAINING, above=0, maximum=1
    )
    negative_ratio: float = setting(
        1.0,
        "Negatives per positive, fractions honoured on average; multiple_negatives uses in-batch negatives instead.",
        TRAINING,
        minimum=0,
        maximum=20,
    )
    base_model: str = setting(
        BASE_MODEL,
        "Model fine-tuned each night: the packaged base model, or a folder or s3:// URI holding a "
        "sentence-transformers model (modules.json and safetensors weights, checked before anything is fetched).",
        TRAINING,
        pattern=r"[^\s]{1,1024}",
    )
    warmup_ratio: float = setting(
        0.1, "Share of the steps spent warming the learning rate up.", TRAINING, minimum=0, maximum=0.5
    )
    seed: int = setting(
        42, "Random seed (sampling, shuffling, initialisation).", TRAINING, minimum=0, maximum=2**32 - 1
    )
    max_seq_length: int = setting(
        512,
        "Tokens of a text the model reads, in training and (saved with the model) wherever it is loaded; longer "
        "CVs are truncated (or pooled in windows of this length, MATCHER_CV_POOLING).",
        TRAINING,
        minimum=16,
        maximum=512,
    )
    checkpoint_minutes: float = setting(
        10.0,
        "Minutes of training between checkpoints, and one at each epoch's end (mirrored to S3 in the background "
        "for resume; scored when select_best).",
        TRAINING,
        minimum=0.1,
    )
    checkpoint_steps: int = setting(
        0, "Also checkpoint every this many steps (0: by time and epoch ends only).", TRAINING, minimum=0
    )
    hard_negatives: int = setting(
        0,
        "Hard negatives mined per CV with the base model (0: off); multiple_negatives adds one per pair, triplet "
        "uses them.",
        TRAINING,
        minimum=0,
        maximum=20,
    )
    hard_negative_margin: float = setting(
        0.05,
        "A mined negative must score this far below the CV's own category (near-synonym categories are not negatives).",
        TRAINING,
        minimum=0,
        maximum=1,
    )
    cached_mini_batch: int = setting(
        0,
        "multiple_negatives: > 0 uses CachedMultipleNegativesRankingLoss with this mini-batch, for batches larger "
        "than memory.",
        TRAINING,
        minimum=0,
        maximum=1024,
    )
    select_best: bool = setting(
        True, "Score every checkpoint on the validation split and keep the best, not the last.", TRAINING
    )
    strip_titles: bool = setting(
        True, "Train on CVs without their first line (the job title, which often names the category).", TRAINING
    )
    name_consistency: float = setting(
        0.0,
        "Counterfactual training (multiple_negatives only): each training CV is read under two names of different "
        "groups of the bias audit's training names (never the audited ones), both readings rank its job, and the "
        "loss adds this weight times how far apart the two readings are (1 - cosine), so the model itself learns "
        "a name says nothing; 0: off.",
        TRAINING,
        minimum=0,
        maximum=10,
    )
    name_augmentation: bool = setting(
        False,
        "Counterfactual augmentation: each training CV carries a name line drawn evenly from every group of the "
        "bias audit's names (never the names the audit scores with), so the model learns a name says nothing "
        "about fit.",
        TRAINING,
    )

    def __post_init__(self) -> None:
        check_settings(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrainingConfig:
        return _coerce(cls, {k: v for k, v in values.items() if k in _names(cls) and v is not None})

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

    min_improvement: float = setting(
        0.01, "How much the candidate must beat production on the primary metric.", GATE, minimum=0, maximum=1
    )
    primary_metric: str = setting(
        "mrr@10", "The metric the gate compares (held-out CVs, titles stripped).", GATE, choices=PER_CV_METRICS
    )
    confidence: float = setting(
        0.95,
        "Confidence of the paired bootstrap intervals the gate decides on (candidate minus production over the "
        "held-out CVs): the interval's lower bound must clear min_improvement. 0 compares point estimates.",
        GATE,
        minimum=0,
        maximum=0.999,
    )
    max_job_to_cv_drop: float = setting(
        0.0,
        "Largest drop of job -> CV MAP@10 (the recruiter's search) allowed beyond doubt: the candidate is refused "
        "when the whole interval of its change lies below minus this.",
        GATE,
        minimum=0,
        maximum=1,
    )
    max_category_drop: float = setting(
        0.10,
        "Largest loss of the primary metric allowed in any category with min_category_support held-out CVs "
        "(beyond doubt: the whole interval of the category's change lies below minus this).",
        GATE,
        minimum=0,
        maximum=1,
    )
    min_category_support: int = setting(
        5,
        "Held-out CVs a category needs before its drop can refuse a candidate; smaller ones are reported as "
        "not enough evidence.",
        GATE,
        minimum=1,
    )
    min_primary: float = setting(0.30, "Absolute floor on the candidate's primary metric.", GATE, minimum=0, maximum=1)
    max_mean_cosine: float = setting(
        0.95,
        "A candidate whose held-out CV vectors are this alike on average (mean pairwise cosine) has collapsed and is "
        "refused; the base model measured 0.55 on the demo CVs.",
        GATE,
        minimum=0,
        maximum=1,
    )

    require_approval: bool = setting(
        True,
        "A person approves the promotion in the Airflow UI (Airflow's ApprovalOperator, between gate and promote); "
        "a rejection or no answer within MATCHER_APPROVAL_TIMEOUT_HOURS keeps production. The DAG's default comes "
        "from MATCHER_REQUIRE_APPROVAL.",
        GATE,
    )
    min_impact_ratio: float = setting(
        0.8,
        "Bias audit: the candidate is refused when its lowest impact ratio (a name group's scoring or selection "
        "rate over the highest group's) lies below this beyond doubt (the whole interval), as the product reads "
        "CVs or by the model alone; 0.8 is the four-fifths rule.",
        GATE,
        minimum=0,
        maximum=1,
    )
    max_name_sensitivity_increase: float = setting(
        0.05,
        "Bias audit: the candidate is refused when its flip rate (the name alone moves a CV in or out of a job's "
        "top 10 %) or its largest paired-win-rate gap exceeds production's by more than this beyond doubt, "
        "as the product reads CVs.",
        GATE,
        minimum=0,
        maximum=1,
    )
    max_win_rate_gap: float = setting(
        0.05,
        "Bias audit: the candidate is refused when its largest paired-win-rate gap (how far a name group's "
        "variants win against another's from an even 0.5), as the product reads CVs, lies above this beyond "
        "doubt, whatever production did.",
        GATE,
        minimum=0,
        maximum=0.5,
    )
    audit_cvs: int = setting(
        40,
        "Held-out CVs the bias audit scores in every name's variant (0: all; the audit is off when "
        "audit_names_per_group is 0).",
        GATE,
        minimum=0,
    )
    audit_names_per_group: int = setting(
        2,
        "Names per group the bias audit puts on each audited CV (it encodes CVs x names x groups per model); "
        "0 turns the audit off. At most 4: name augmentation trains on the names after them.",
        GATE,
        minimum=0,
        maximum=4,
    )

    def __post_init__(self) -> None:
        check_settings(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> GateConfig:
        return _coerce(cls, {k: v for k, v in values.items() if k in _names(cls) and v is not None})


@dataclass(frozen=True)
class DataOptions:
    """Per-run choices about the input rather than the model."""

    raw_prefix: str = setting(
        "",
        "Raw CV prefix (s3://bucket/prefix holding <CATEGORY>/<file>); empty: MATCHER_RAW_CVS_URI.",
        DATA,
        pattern=r"(s3://\S+)?",
    )
    force_retrain: bool = setting(
        False, "Retrain even when no CV is new or changed and the jobs file is the same.", DATA
    )
    publish_from_other_prefix: bool = setting(
        False,
        "A run whose raw_prefix is not MATCHER_RAW_CVS_URI refreshes the production embeddings only when this is set "
        "(a trial batch must not change what search serves).",
        DATA,
    )

    def __post_init__(self) -> None:
        check_settings(self)


RUN_SETTINGS = (TrainingConfig, GateConfig, DataOptions)


def deployment_gate() -> GateConfig:
    """The gate's settings as this deployment starts them: ``require_approval`` from
    ``MATCHER_REQUIRE_APPROVAL`` (the DAG's trigger form and the CLI alike), the rest as declared."""
    return GateConfig(require_approval=deployment_flag("MATCHER_REQUIRE_APPROVAL"))


def run_setting_fields():
    """(dataclass, field) for every setting a run can be given (DAG params, CLI flags), in form order."""
    return [(cls, f) for cls in RUN_SETTINGS for f in fields(cls)]


def settings_table() -> str:
    """The run settings as a Markdown table (docs/settings.md): name, default, section, meaning."""
    rows = ["| param | default | section | meaning |", "| --- | --- | --- | --- |"]
    for _, f in run_setting_fields():
        default = {"raw_prefix": "`MATCHER_RAW_CVS_URI`", "require_approval": "`MATCHER_REQUIRE_APPROVAL`"}.get(
            f.name, f"`{json.dumps(f.default)}`"
        )
        rows.append(f"| `{f.name}` | {default} | {f.metadata['section']} | {f.metadata['help']} |")
    return "\n".join(rows)


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what the parser accepts and on what parsing one file may cost.

    Environment overrides: ``MATCHER_PARSE_TIMEOUT_S``, ``MATCHER_PARSE_MEMORY_MB``,
    ``MATCHER_PARSE_WORKERS``, ``MATCHER_MAX_FILE_BYTES``, ``MATCHER_MAX_TEXT_CHARS``,
    ``MATCHER_PDF_EXTRACTOR``.
    """

    max_bytes: int = int(VARIABLES["MATCHER_MAX_FILE_BYTES"].default)
    min_chars: int = 100  # and half as many letters or digits: 300 dots or zero-width spaces are no CV
    # Far above any real CV (a 40-page one holds ~120,000): a text past it is refused, so no upload can
    # make a night's training data (and its memory) grow without bound.
    max_chars: int = int(VARIABLES["MATCHER_MAX_TEXT_CHARS"].default)
    max_docx_uncompressed_bytes: int = 200 * 1024 * 1024
    max_docx_entries: int = 2000
    timeout_s: float = float(VARIABLES["MATCHER_PARSE_TIMEOUT_S"].default)
    memory_mb: int = int(VARIABLES["MATCHER_PARSE_MEMORY_MB"].default)
    workers: int = int(VARIABLES["MATCHER_PARSE_WORKERS"].default)  # 0: one per core
    pdf_extractor: str = VARIABLES["MATCHER_PDF_EXTRACTOR"].default

    def __post_init__(self):
        if self.pdf_extractor not in ("pdfium", "pdfplumber"):
            raise ValueError(f"MATCHER_PDF_EXTRACTOR must be `pdfium` or `pdfplumber`, not {self.pdf_extractor!r}")


def parse_limits_from_env(environ: dict[str, str] | None = None) -> ParseLimits:
    names = {
        "timeout_s": "MATCHER_PARSE_TIMEOUT_S",
        "memory_mb": "MATCHER_PARSE_MEMORY_MB",
        "workers": "MATCHER_PARSE_WORKERS",
        "max_bytes": "MATCHER_MAX_FILE_BYTES",
        "max_chars": "MATCHER_MAX_TEXT_CHARS",
        "pdf_extractor": "MATCHER_PDF_EXTRACTOR",
    }
    return _coerce(ParseLimits, {field_name: deployment_setting(var, environ) for field_name, var in names.items()})


@dataclass(frozen=True)
class ShardConfig:
    """How the heavy stages split their work into mapped tasks (one shard, one task instance).

    A shard should take a worker a few minutes: enough work to dwarf a task's start-up (~2 s), small
    enough that a retry repeats little. Environment overrides: ``MATCHER_PARSE_SHARD_SIZE``,
    ``MATCHER_EMBED_SHARD_SIZE``.
    """

    parse_files: int = int(VARIABLES["MATCHER_PARSE_SHARD_SIZE"].default)
    embed_texts: int = int(VARIABLES["MATCHER_EMBED_SHARD_SIZE"].default)

    def __post_init__(self) -> None:
        if self.parse_files < 1 or self.embed_texts < 1:
            raise ValueError("shard sizes must be at least 1")


def shard_config_from_env(environ: dict[str, str] | None = None) -> ShardConfig:
    names = {"parse_files": "MATCHER_PARSE_SHARD_SIZE", "embed_texts": "MATCHER_EMBED_SHARD_SIZE"}
    return _coerce(ShardConfig, {field_name: deployment_setting(var, environ) for field_name, var in names.items()})


@dataclass(frozen=True)
class PipelineConfig:
    """Everything one run needs besides its inputs."""

    locations: Locations = field(default_factory=Locations)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    gate: GateConfig = field(default_factory=lambda: deployment_gate())
    split: SplitConfig = field(default_factory=SplitConfig)
    limits: ParseLimits = field(default_factory=parse_limits_from_env)
    shards: ShardConfig = field(default_factory=shard_config_from_env)

    data: DataOptions = field(default_factory=DataOptions)
    # The deployment's raw prefix, kept when a run's ``raw_prefix`` param replaces ``locations.raw_cvs``.
    deployment_raw_cvs: str = ""

    @property
    def publishes_embeddings(self) -> bool:
        """Whether this run may refresh the production embeddings: a run on the deployment's own
        raw prefix, or one told to publish from its other prefix."""
        deployment = (self.deployment_raw_cvs or self.locations.raw_cvs).rstrip("/")
        return self.data.publish_from_other_prefix or self.locations.raw_cvs.rstrip("/") == deployment

    def with_params(self, params: dict[str, Any]) -> PipelineConfig:
        """Apply a run's params (Airflow ``params``, CLI flags) over these defaults; an unknown name is an error."""
        known = {f.name for _, f in run_setting_fields()}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown run setting(s) {unknown}; the settings are {sorted(known)}")
        given = {k: v for k, v in params.items() if v is not None}
        training = _coerce(
            TrainingConfig, {**asdict(self.training), **{k: v for k, v in given.items() if k in _names(TrainingConfig)}}
        )
        gate = _coerce(GateConfig, {**asdict(self.gate), **{k: v for k, v in given.items() if k in _names(GateConfig)}})
        data = _coerce(
            DataOptions, {**asdict(self.data), **{k: v for k, v in given.items() if k in _names(DataOptions)}}
        )
        locations = replace(self.locations, raw_cvs=data.raw_prefix) if data.raw_prefix else self.locations
        deployment = self.deployment_raw_cvs or self.locations.raw_cvs
        return replace(
            self, locations=locations, training=training, gate=gate, data=data, deployment_raw_cvs=deployment
        )


RUN_FOLDER = re.compile(r"[A-Za-z0-9._-]{1,120}")


def run_folder(run_id: str) -> str:
    """The S3 folder of one Airflow run: a readable slug of its id and a hash of the exact id.

    ``manual__2026-01-01T02:00:00+00:00`` -> ``manual__2026-01-01T02-00-00-00-00-3f2a9c1e``. Two ids that
    slug alike (``nightly 1`` and ``nightly/1``, ``run ü`` and ``run é``) differ in the hash, so no run
    ever reuses another's manifest, candidate or version name.
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.")[:100]
    if not slug:
        raise ValueError(f"run id {run_id!r} cannot name a run folder: it needs a letter or digit")
    return f"{slug}-{hashlib.sha256(run_id.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def _coerce(cls, kwargs: dict[str, Any]):
    casts = {"int": int, "float": float, "str": str, "bool": parse_boolean}
    typed = {}
    for f in fields(cls):
        if f.name in kwargs:
            cast = casts.get(str(f.type))
            typed[f.name] = cast(kwargs[f.name]) if cast else kwargs[f.name]
    return cls(**typed)
