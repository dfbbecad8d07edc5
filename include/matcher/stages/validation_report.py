"""The validation report: the typed record ``validate`` writes and every reader reads.

:class:`ValidationReport` is what the gate, the registry, the approval, the report page, the Matcher
page, the run summary and the side-by-side view take: attributes, not raw keys. It is a pydantic model
(:class:`~include.matcher.foundations.records.Record`): ``validate`` builds it with
:meth:`ValidationReport.written` (every key it puts must be declared here, so a writer and this reader
cannot drift apart unnoticed) and stores :meth:`ValidationReport.to_json`; readers go through
:func:`read_report`.

Whoever can write the work bucket can put any bytes where a report belongs (evidence as a list, a
metric as a string, JSON nested 200,000 deep). The Matcher page, the report page and the
side-by-side view read reports only through :func:`read_report`, which either returns a report whose
every field has its declared JSON type, or raises :class:`UnreadableReport` naming the first field
that does not (``report.decision.promote: ...``).

The bias audit and the paired evidence are checked against their classes here (:class:`BiasAudit`,
:class:`Evidence`) and handed on as the JSON their own modules write and read
(:mod:`~include.matcher.stages.bias_audit`, :mod:`~include.matcher.stages.evidence`).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field

from include.matcher.foundations.records import Count, Number, Record, UnreadableRecord, checked_json
from include.matcher.foundations.settings import GateConfig

# Far above any report validate writes (its confusion matrix is bounded): beyond it, the page would
# spend the API server's memory on one object.
MAX_REPORT_BYTES = 32 * 1024 * 1024


class Interval(Record):
    """A paired bootstrap interval of the change candidate - production (:func:`evidence.interval`)."""

    candidate: Number
    production: Number
    difference: Number
    low: Number
    high: Number
    count: Count | None = None


class NotEnoughEvidence(Record):
    """A category with too few held-out CVs to judge."""

    status: str
    count: Count | None = None


Change = Interval | NotEnoughEvidence


class Evidence(Record):
    """The gate's paired evidence: one :data:`Change` per metric (extra keys), and per category."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Change | None] = Field(init=False)

    confidence: Number
    resamples: Count | None = None
    held_out: Count | None = None
    per_category: dict[str, Change]


class ConfusedPair(Record):
    true: str
    predicted: str
    count: Count


class Confusion(Record):
    labels: list[str]
    matrix: list[list[Count]]
    top_confusions: list[ConfusedPair] | None = None
    categories: Count | None = None


class TitledResult(Record):
    metrics: dict[str, Number]


class Health(Record):
    """What :func:`evaluation.embedding_health` found of a model's vectors."""

    finite: bool
    zero_vectors: Count
    mean_cosine: Number | None = None


class ModelResult(Record):
    """One model's scores on the held-out CVs: overall, per category, its confusions, and with titles kept."""

    metrics: dict[str, Number]
    per_category: dict[str, dict[str, Number]] | None = None
    confusion: checked_json(Confusion) | None = None
    with_title: TitledResult | None = None
    health: Health | None = None
    text: str | None = None
    skipped: str | None = None

    def metric(self, name: str) -> Number:
        """The metric's value, 0 where the model was not scored (no held-out CV)."""
        return self.metrics.get(name, 0.0)

    @property
    def titled_metrics(self) -> dict[str, Number]:
        return self.with_title.metrics if self.with_title else {}

    @property
    def categories(self) -> dict[str, dict[str, Number]]:
        return self.per_category or {}


class Decision(Record):
    """What the gate decided, why, by which rules, and the paired evidence it decided on."""

    promote: bool
    reason: str
    primary_metric: str = Field(default_factory=lambda: GateConfig().primary_metric)  # reports that predate it
    decided_by: list[str] = []
    evidence: checked_json(Evidence) | None = None
    checks: dict[str, bool] | None = None
    problems: list[str] | None = None
    candidate: Number | None = None
    production: Number | None = None
    improvement: Number | None = None
    min_improvement: Number | None = None
    category_drops: dict[str, Number] | None = None
    not_enough_evidence: list[str] | None = None


class Bounds(Record):
    value: Number
    low: Number
    high: Number


class GroupFigures(Record):
    scoring_rate: Number
    selection_rate: Number
    impact_ratio: Number
    selection_impact_ratio: Number
    impact_ratio_low: Number
    impact_ratio_high: Number


class AuditFigures(Record):
    """One model's figures in one audit (:func:`bias_audit.audit`)."""

    groups: dict[str, GroupFigures]
    lowest_impact_ratio: Bounds
    lowest_selection_impact_ratio: Bounds
    flip_rate: Bounds
    name_sensitivity: Bounds
    largest_win_rate_gap: Bounds
    win_rates: dict[str, Number]


class Audit(Record):
    """A set of name variants (one placement read one way, or the placebo) scored by each model."""

    cvs: Count
    names: Count
    confidence: Number
    resamples: Count
    candidate: AuditFigures
    production: AuditFigures | None = None
    flip_rate_increase: Bounds | None = None
    largest_win_rate_gap_increase: Bounds | None = None


class WorstOfPlacements(Record):
    worst_of: dict[str, str] | None = None
    candidate: AuditFigures
    production: AuditFigures | None = None
    flip_rate_increase: Bounds | None = None
    largest_win_rate_gap_increase: Bounds | None = None


class PlacementAudits(Record):
    product: Audit | None = None
    model_alone: Audit


class BiasAudit(Record):
    """The bias audit of :func:`bias_audit.audit_held_out`: the product path's worst placement, the
    model alone's, each placement and the placebo."""

    cvs: Count
    names: Count
    names_per_group: Count
    groups: list[str]
    confidence: Number
    resamples: Count
    seconds: Number | None = None
    placements: list[str] | None = None
    reads: str | None = None
    worst_of: dict[str, str] | None = None
    candidate: AuditFigures
    production: AuditFigures | None = None
    flip_rate_increase: Bounds | None = None
    largest_win_rate_gap_increase: Bounds | None = None
    model_alone: WorstOfPlacements | None = None
    by_placement: dict[str, PlacementAudits] | None = None
    placebo: Audit | None = None


class ProductionRef(Record):
    name: str
    version: str | None = None


class VectorMemoUse(Record):
    source: str | None = Field(default=None, alias="from")
    recalled: Count
    read: Count


class HeldOut(Record):
    count: Count
    vectors: str | None = None
    split: str | None = None
    uri: str | None = None
    titles: str | None = None
    vector_memo: VectorMemoUse | None = None


class TrainingData(Record):
    cvs_by_split: dict[str, Count] | None = None
    train_cvs_by_category: dict[str, Count] | None = None


class Approval(Record):
    """A person's answer to the promotion's approval (:mod:`stages.approval`)."""

    state: str
    by: str | None = None
    decided_at: str | None = None


class ApprovalRequest(Record):
    """That a person's answer is awaited, until when and from whom."""

    requested_at: str
    deadline: str | None = None
    reviewers: list[str] | None = None


class UnreadableReport(UnreadableRecord):
    """Bytes where a validation report belongs that are not one this project wrote."""


class ValidationReport(Record):
    """One night's validation: the candidate against production and the baselines, and the decision."""

    created_at: str
    run: str
    version: str
    candidate: str | None = None
    airflow_run_id: str | None = None
    production: ProductionRef
    held_out: HeldOut
    data_hash: str | None = None
    decision: Decision
    candidate_metrics: ModelResult
    production_metrics: ModelResult
    baselines: dict[str, ModelResult] | None = None
    training: dict[str, Number | str | bool | None] | None = None
    html_report: str | None = None
    bias_audit: checked_json(BiasAudit) | None = None
    training_data: TrainingData | None = None
    approval: Approval | None = None
    approval_request: ApprovalRequest | None = None

    record_name: ClassVar[str] = "report"
    unreadable: ClassVar[type[UnreadableRecord]] = UnreadableReport

    @classmethod
    def from_json(cls, data: dict, *, writing: bool = False) -> ValidationReport:
        """The record of a report's parsed JSON (:class:`UnreadableReport`, naming the field, if it does not fit)."""
        return cls.load(data, writing=writing)

    @property
    def candidate_result(self) -> ModelResult:
        return self.candidate_metrics

    @property
    def production_result(self) -> ModelResult:
        return self.production_metrics

    @property
    def production_name(self) -> str:
        return self.production.name

    @property
    def production_version(self) -> str | None:
        return self.production.version

    @property
    def held_out_count(self) -> int:
        return self.held_out.count

    @property
    def held_out_vectors(self) -> str | None:
        return self.held_out.vectors

    @property
    def run_name(self) -> str:
        """The run's folder name under ``<work>/runs/``, as the Matcher page's links name a night."""
        return self.run.rsplit("/", 1)[-1]

    @property
    def production_label(self) -> str:
        return self.production_version or self.production_name


def read_report(blob: bytes) -> ValidationReport:
    """The report in ``blob`` if it fits :class:`ValidationReport`; :class:`UnreadableReport` otherwise."""
    if len(blob) > MAX_REPORT_BYTES:
        raise UnreadableReport(f"{len(blob)} bytes: larger than any validation report ({MAX_REPORT_BYTES})")
    return ValidationReport.load(blob)  # pydantic's parser also refuses JSON nested too deep
