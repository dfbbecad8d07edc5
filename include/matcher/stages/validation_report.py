"""The validation report: the typed record ``validate`` writes and every reader reads.

:class:`ValidationReport` is what the gate, the registry, the report page, the Matcher page, the run
summary and the side-by-side view take: attributes, not raw keys. ``validate`` builds one with
:meth:`ValidationReport.from_json` (so what it writes passes the same check as what is read back) and
stores :meth:`ValidationReport.to_json`; readers go through :func:`read_report`.

Whoever can write the work bucket can put any bytes where a report belongs (evidence as a list, a
metric as a string, JSON nested 200,000 deep). The Matcher page, the report page and the
side-by-side view read reports only through :func:`read_report`, which either returns a report whose
every field the readers use has the declared shape, or raises :class:`UnreadableReport`.

A spec is a type name (``"number"``, ``"count"``, ``"text"``, ``"flag"``), a ``[spec]`` list, a
``{key: spec}`` object (``key?``: may be absent or null; ``"*"``: every other key), or a tuple of
specs of which one must fit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from include.matcher.foundations.errors import NotFound

# Far above any report validate writes (its confusion matrix is bounded): beyond it, the page would
# spend the API server's memory on one object.
MAX_REPORT_BYTES = 32 * 1024 * 1024

NUMBER, COUNT, TEXT, FLAG = "number", "count", "text", "flag"
METRIC_VALUES = {"*": NUMBER}
INTERVAL = {"candidate": NUMBER, "production": NUMBER, "difference": NUMBER, "low": NUMBER, "high": NUMBER}
CHANGE = ({**INTERVAL, "count?": COUNT}, {"status": TEXT, "count?": COUNT})
EVIDENCE = {
    "confidence": NUMBER,
    "resamples?": COUNT,
    "held_out?": COUNT,
    "per_category": {"*": CHANGE},
    "*": (CHANGE, None),
}
MODEL_RESULT = {
    "metrics": METRIC_VALUES,
    "per_category?": {"*": {"*": NUMBER}},
    "confusion?": {
        "labels": [TEXT],
        "matrix": [[COUNT]],
        "top_confusions?": [{"true": TEXT, "predicted": TEXT, "count": COUNT}],
        "categories?": COUNT,
    },
    "with_title?": {"metrics": METRIC_VALUES},
}
DECISION = {
    "promote": FLAG,
    "reason": TEXT,
    "primary_metric?": TEXT,
    "decided_by?": [TEXT],
    "evidence?": EVIDENCE,
}
BOUNDS = {"value": NUMBER, "low": NUMBER, "high": NUMBER}
AUDIT_FIGURES = {
    "groups": {
        "*": {
            "scoring_rate": NUMBER,
            "selection_rate": NUMBER,
            "impact_ratio": NUMBER,
            "selection_impact_ratio": NUMBER,
            "impact_ratio_low": NUMBER,
            "impact_ratio_high": NUMBER,
        }
    },
    "lowest_impact_ratio": BOUNDS,
    "lowest_selection_impact_ratio": BOUNDS,
    "flip_rate": BOUNDS,
    "name_sensitivity": BOUNDS,
    "largest_win_rate_gap": BOUNDS,
    "win_rates": {"*": NUMBER},
}
# One audit: a set of variants (a placement read one way, or the placebo) scored by each model.
AUDIT = {
    "cvs": COUNT,
    "names": COUNT,
    "confidence": NUMBER,
    "resamples": COUNT,
    "candidate": AUDIT_FIGURES,
    "production?": AUDIT_FIGURES,
    "flip_rate_increase?": BOUNDS,
    "largest_win_rate_gap_increase?": BOUNDS,
}
WORST_OF_PLACEMENTS = {
    "worst_of?": {"*": TEXT},
    "candidate": AUDIT_FIGURES,
    "production?": AUDIT_FIGURES,
    "flip_rate_increase?": BOUNDS,
    "largest_win_rate_gap_increase?": BOUNDS,
}
BIAS_AUDIT = {
    "cvs": COUNT,
    "names": COUNT,
    "names_per_group": COUNT,
    "groups": [TEXT],
    "confidence": NUMBER,
    "resamples": COUNT,
    "seconds?": NUMBER,
    "placements?": [TEXT],
    "reads?": TEXT,
    "worst_of?": {"*": TEXT},
    "candidate": AUDIT_FIGURES,
    "production?": AUDIT_FIGURES,
    "flip_rate_increase?": BOUNDS,
    "largest_win_rate_gap_increase?": BOUNDS,
    "model_alone?": WORST_OF_PLACEMENTS,
    "by_placement?": {"*": {"product?": AUDIT, "model_alone": AUDIT}},
    "placebo?": AUDIT,
}
REPORT = {
    "created_at": TEXT,
    "run": TEXT,
    "version": TEXT,
    "candidate?": TEXT,
    "airflow_run_id?": TEXT,
    "production": {"name": TEXT, "version?": TEXT},
    "held_out": {"count": COUNT, "vectors?": TEXT},
    "data_hash?": TEXT,
    "decision": DECISION,
    "candidate_metrics": MODEL_RESULT,
    "production_metrics": MODEL_RESULT,
    "baselines?": {"*": MODEL_RESULT},
    "training?": {"*": (NUMBER, TEXT, FLAG, None)},
    "html_report?": TEXT,
    "bias_audit?": BIAS_AUDIT,
    "training_data?": {"cvs_by_split?": {"*": COUNT}, "train_cvs_by_category?": {"*": COUNT}},
    "approval?": {"state": TEXT, "by?": TEXT, "decided_at?": TEXT},
    "approval_request?": {"requested_at": TEXT, "deadline?": TEXT, "reviewers?": [TEXT]},
}


class UnreadableReport(NotFound, ValueError):
    """Bytes where a validation report belongs that are not one this project wrote."""


@dataclass(frozen=True)
class ModelResult:
    """One model's scores on the held-out CVs: overall, per category, its confusions, and with titles kept."""

    metrics: dict[str, float]
    per_category: dict[str, dict[str, float]]
    confusion: dict
    titled_metrics: dict[str, float]

    @classmethod
    def from_json(cls, data: dict) -> ModelResult:
        return cls(
            metrics=data["metrics"],
            per_category=data.get("per_category") or {},
            confusion=data.get("confusion") or {},
            titled_metrics=(data.get("with_title") or {}).get("metrics", {}),
        )

    def metric(self, name: str) -> float:
        """The metric's value, 0 where the model was not scored (no held-out CV)."""
        return self.metrics.get(name, 0.0)


@dataclass(frozen=True)
class Decision:
    """What the gate decided, why, by which rules, and the paired evidence it decided on."""

    promote: bool
    reason: str
    primary_metric: str
    decided_by: tuple[str, ...]
    evidence: dict | None

    @classmethod
    def from_json(cls, data: dict) -> Decision:
        from include.matcher.foundations.settings import GateConfig

        return cls(
            promote=data["promote"],
            reason=data["reason"],
            primary_metric=data.get("primary_metric") or GateConfig().primary_metric,
            decided_by=tuple(data.get("decided_by") or ()),
            evidence=data.get("evidence"),
        )


@dataclass(frozen=True)
class ValidationReport:
    """One night's validation: the candidate against production and the baselines, and the decision."""

    created_at: str
    run: str
    version: str
    candidate: str | None
    airflow_run_id: str | None
    production_name: str
    production_version: str | None
    held_out_count: int
    held_out_vectors: str | None
    data_hash: str | None
    training: dict
    decision: Decision
    candidate_result: ModelResult
    production_result: ModelResult
    baselines: dict[str, ModelResult]
    html_report: str | None
    bias_audit: dict | None
    approval: dict | None
    approval_request: dict | None
    training_data: dict
    json: dict = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data) -> ValidationReport:
        """The record of a report's JSON, checked against :data:`REPORT` (:class:`UnreadableReport` if not)."""
        check_report(data)
        held_out = data["held_out"]
        return cls(
            created_at=data["created_at"],
            run=data["run"],
            version=data["version"],
            candidate=data.get("candidate"),
            airflow_run_id=data.get("airflow_run_id"),
            production_name=data["production"]["name"],
            production_version=data["production"].get("version"),
            held_out_count=held_out["count"],
            held_out_vectors=held_out.get("vectors"),
            data_hash=data.get("data_hash"),
            training=data.get("training") or {},
            decision=Decision.from_json(data["decision"]),
            candidate_result=ModelResult.from_json(data["candidate_metrics"]),
            production_result=ModelResult.from_json(data["production_metrics"]),
            baselines={name: ModelResult.from_json(result) for name, result in (data.get("baselines") or {}).items()},
            html_report=data.get("html_report"),
            bias_audit=data.get("bias_audit"),
            approval=data.get("approval"),
            approval_request=data.get("approval_request"),
            training_data=data.get("training_data") or {},
            json=data,
        )

    def to_json(self) -> dict:
        """The JSON ``validation_report.json`` holds (and the Matcher page's JSON link serves)."""
        return self.json

    @property
    def run_name(self) -> str:
        """The run's folder name under ``<work>/runs/``, as the Matcher page's links name a night."""
        return self.run.rsplit("/", 1)[-1]

    @property
    def production_label(self) -> str:
        return self.production_version or self.production_name


def read_report(blob: bytes) -> ValidationReport:
    """The report in ``blob`` if it has the shape :data:`REPORT` declares; :class:`UnreadableReport` otherwise."""
    if len(blob) > MAX_REPORT_BYTES:
        raise UnreadableReport(f"{len(blob)} bytes: larger than any validation report ({MAX_REPORT_BYTES})")
    try:
        report = json.loads(blob)
    except (ValueError, RecursionError) as error:  # RecursionError: JSON nested too deep to parse
        raise UnreadableReport(f"not JSON: {type(error).__name__}") from None
    return ValidationReport.from_json(report)


def check_report(report) -> dict:
    """``report`` when it fits :data:`REPORT`; :class:`UnreadableReport` naming the first field that does not."""
    problem = _problem(report, REPORT, "report")
    if problem:
        raise UnreadableReport(problem)
    return report


def _problem(value, spec, path: str) -> str | None:
    if isinstance(spec, tuple):
        if any(_problem(value, option, path) is None for option in spec):
            return None
        return f"{path}: none of its allowed shapes"
    if spec is None:
        return None if value is None else f"{path}: expected null"
    if isinstance(spec, str):
        return None if _fits(value, spec) else f"{path}: expected a {spec}"
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{path}: expected a list"
        for index, item in enumerate(value):
            problem = _problem(item, spec[0], f"{path}[{index}]")
            if problem:
                return problem
        return None
    if not isinstance(value, dict):
        return f"{path}: expected an object"
    named = {key.rstrip("?"): key.endswith("?") for key in spec if key != "*"}
    for key, optional in named.items():
        field_spec = spec[f"{key}?" if optional else key]
        if key not in value or (optional and value[key] is None):
            if optional:
                continue
            return f"{path}.{key}: missing"
        problem = _problem(value[key], field_spec, f"{path}.{key}")
        if problem:
            return problem
    if "*" in spec:
        for key, item in value.items():
            if key not in named:
                problem = _problem(item, spec["*"], f"{path}.{key}")
                if problem:
                    return problem
    return None


def _fits(value, kind: str) -> bool:
    if kind == TEXT:
        return isinstance(value, str)
    if kind == FLAG:
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return kind == NUMBER or (isinstance(value, int) and value >= 0)
