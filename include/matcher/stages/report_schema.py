"""What a readable ``validation_report.json`` is: one checker that every reader of reports goes through.

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
}


class UnreadableReport(ValueError):
    """Bytes where a validation report belongs that are not one this project wrote."""


def read_report(blob: bytes) -> dict:
    """The report in ``blob`` if it has the shape :data:`REPORT` declares; :class:`UnreadableReport` otherwise."""
    if len(blob) > MAX_REPORT_BYTES:
        raise UnreadableReport(f"{len(blob)} bytes: larger than any validation report ({MAX_REPORT_BYTES})")
    try:
        report = json.loads(blob)
    except (ValueError, RecursionError) as error:  # RecursionError: JSON nested too deep to parse
        raise UnreadableReport(f"not JSON: {type(error).__name__}") from None
    return check_report(report)


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
