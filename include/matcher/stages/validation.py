"""Stage 5, validate and gate: is the candidate better than the model in production?

Both models are scored on the held-out test split (CV -> job retrieval, see
:mod:`include.matcher.foundations.evaluation`); with no production model yet, the base model stands in. The
candidate may be promoted only if it beats production on the primary metric by ``min_improvement``
beyond doubt (the lower bound of a paired bootstrap interval, :mod:`include.matcher.stages.evidence`), and
neither the recruiter's job -> CV MAP@10 nor a well-supported category gets worse beyond doubt.
``validation_report.json`` is stored beside the candidate whatever the decision.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import numpy as np

from include.matcher.foundations import layout
from include.matcher.foundations.context import RunContext
from include.matcher.foundations.evaluation import evaluate_model, evaluate_tfidf_baseline
from include.matcher.foundations.pointers import RegistryEntry, read_production
from include.matcher.foundations.settings import GateConfig, Locations, TrainingConfig
from include.matcher.foundations.storage import ObjectStore
from include.matcher.foundations.vector_memo import VectorMemo
from include.matcher.stages.bias_audit import audit_held_out
from include.matcher.stages.corpus import record_trained
from include.matcher.stages.erasure import erased_recently
from include.matcher.stages.evidence import paired_evidence
from include.matcher.stages.model_card import read_training_stats
from include.matcher.stages.registry import version_for
from include.matcher.stages.validation_report import ValidationReport, read_report

log = logging.getLogger(__name__)


def point_evidence(candidate: dict, production: dict, gate: GateConfig) -> dict:
    """:func:`evidence.paired_evidence`'s shape from point estimates alone (no per-CV scores): each
    interval is the bare difference. For callers that hold only metrics; ``validate`` bootstraps."""
    from include.matcher.stages.evidence import NOT_ENOUGH_EVIDENCE, comparison

    def point(new: float, old: float) -> dict:
        return comparison(new, old, np.zeros(0), confidence=0)

    metric = gate.primary_metric
    per_category = {}
    for category, old in production.get("per_category", {}).items():
        new = candidate.get("per_category", {}).get(category)
        if not new:
            continue
        count = old.get("count", 0)
        per_category[category] = (
            {"count": count, **point(new[metric], old[metric])}
            if count >= gate.min_category_support
            else {"count": count, "status": NOT_ENOUGH_EVIDENCE}
        )
    map_name = "job_to_cv_map@10"
    both = map_name in candidate["metrics"] and map_name in production["metrics"]
    return {
        "confidence": 0,
        metric: point(candidate["metrics"][metric], production["metrics"][metric]),
        map_name: point(candidate["metrics"][map_name], production["metrics"][map_name]) if both else None,
        "per_category": per_category,
    }


def category_drops(evidence: dict, gate: GateConfig) -> dict[str, float]:
    """Categories whose primary metric fell by more than allowed beyond doubt: their drop, by category."""
    return {
        category: round(-change["difference"], 4)
        for category, change in evidence["per_category"].items()
        if "high" in change and change["high"] < -gate.max_category_drop
    }


def thin_categories(evidence: dict) -> list[str]:
    """Categories with too few held-out CVs to judge (reported, never silently passed)."""
    return sorted(category for category, change in evidence["per_category"].items() if "status" in change)


def _change(change: dict, confidence: float) -> str:
    text = f"{change['difference']:+.4f}"
    if confidence > 0:
        text += f" ({confidence:.0%} CI {change['low']:+.4f} to {change['high']:+.4f})"
    return text


def non_finite_tensors(model) -> tuple[list[str], int]:
    """Names of the model's weight tensors holding NaN or infinity, and how many tensors it has."""
    import torch

    named = list(model.named_parameters())
    with torch.no_grad():
        return [name for name, tensor in named if not bool(torch.isfinite(tensor).all())], len(named)


def model_problems(model, health: dict | None, gate: GateConfig) -> list[str]:
    """Why a candidate is broken whatever its metrics say: non-finite weights or vectors, collapse."""
    problems = []
    if model is not None and hasattr(model, "named_parameters"):
        bad, total = non_finite_tensors(model)
        if bad:
            problems.append(f"{len(bad)} of {total} weight tensors hold NaN or infinite values (first: {bad[0]})")
    if health:
        if not health.get("finite", True):
            problems.append("its embeddings hold NaN or infinite values")
        if health.get("zero_vectors"):
            problems.append(f"{health['zero_vectors']} held-out CVs embed to a zero vector")
        if health.get("mean_cosine") is not None and health["mean_cosine"] > gate.max_mean_cosine:
            problems.append(
                "its embeddings have collapsed: held-out CVs have mean cosine similarity "
                f"{health['mean_cosine']:.3f} (> {gate.max_mean_cosine:.2f})"
            )
    return problems


def decide(
    candidate: dict,
    production: dict,
    gate: GateConfig,
    held_out: int,
    problems: list[str] = (),
    evidence: dict | None = None,
    audit: dict | None = None,
) -> dict:
    """The gate's decision: a sound model, better beyond doubt, no category or recruiter search worse
    beyond doubt, above the floor.

    ``problems`` (from :func:`model_problems`) refuse the candidate outright: a broken model is never
    promoted, whatever its metrics. ``evidence`` holds the paired bootstrap intervals
    (:func:`evidence.paired_evidence`); without it the point estimates decide. ``audit`` (from
    :func:`bias_audit.audit_held_out`) adds the bias rules: ``impact_ratio``, ``win_rate_gap`` and
    ``name_sensitivity``.
    """
    metric = gate.primary_metric
    if held_out == 0:
        return {"promote": False, "primary_metric": metric, "reason": "no held-out CVs to validate on"}
    if problems:
        return {
            "promote": False,
            "checks": {"healthy": False},
            "primary_metric": metric,
            "problems": list(problems),
            "reason": "candidate refused as broken: " + "; ".join(problems),
        }
    evidence = evidence or point_evidence(candidate, production, gate)
    confidence = evidence["confidence"]
    primary, recruiter = evidence[metric], evidence.get("job_to_cv_map@10")
    new, old = candidate["metrics"][metric], production["metrics"][metric]
    drops = category_drops(evidence, gate)
    thin = thin_categories(evidence)
    checks = {
        "healthy": True,
        "improvement": primary["low"] >= gate.min_improvement,
        "no_job_to_cv_drop": recruiter is None or recruiter["high"] >= -gate.max_job_to_cv_drop,
        "no_category_drop": not drops,
        "floor": new >= gate.min_primary,
        **bias_checks(audit, gate),
    }
    bound = "lower bound " if confidence > 0 else ""
    verdict = "clears" if checks["improvement"] else "does not clear"
    rules = {
        "improvement": f"candidate {metric} {new:.4f} vs production {old:.4f}: change {_change(primary, confidence)}, "
        f"{bound}{verdict} the required {gate.min_improvement:+.4f}",
        "no_job_to_cv_drop": ""
        if recruiter is None
        else f"job -> CV MAP@10 {recruiter['candidate']:.4f} vs {recruiter['production']:.4f}: change "
        f"{_change(recruiter, confidence)}, "
        + ("no drop beyond doubt" if checks["no_job_to_cv_drop"] else f"a drop beyond -{gate.max_job_to_cv_drop:.2f}"),
        "no_category_drop": f"{metric} drops by more than {gate.max_category_drop:.2f} in {drops}" if drops else "",
        "floor": "" if checks["floor"] else f"{metric} {new:.4f} is below the floor {gate.min_primary:.2f}",
        **bias_rules(audit, gate, checks),
    }
    failed = [name for name, passed in checks.items() if not passed]
    decided_by = failed or ["improvement"]
    reasons = [rules[name] for name in decided_by] + [
        rules[name]
        for name in ("improvement", "no_job_to_cv_drop", "impact_ratio")
        if name not in decided_by and rules.get(name)
    ]
    if thin:
        reasons.append(f"not enough evidence (under {gate.min_category_support} held-out CVs) in {', '.join(thin)}")
    return {
        "promote": not failed,
        "checks": checks,
        "decided_by": decided_by,
        "primary_metric": metric,
        "candidate": new,
        "production": old,
        "improvement": new - old,
        "min_improvement": gate.min_improvement,
        "category_drops": drops,
        "not_enough_evidence": thin,
        "evidence": evidence,
        "reason": "; ".join(reasons),
    }


def bias_checks(audit: dict | None, gate: GateConfig) -> dict[str, bool]:
    """The bias audit's three rules, each refusing only beyond doubt (no audit: no rule). On the product
    path (CVs as the product reads them, what ranks people): the four-fifths rule, the absolute win-rate
    gap, and no more name sensitivity than production. By the model alone (the whole text): the
    four-fifths rule, so a model that learned to favour a group is refused though redaction hides names
    from it. The model alone's gap and flips are reported, not ruled on: fine-tuning the defaults grows
    them (benchmarks/RESULTS.md), and the first night must be able to promote."""
    if audit is None:
        return {}
    alone = (audit.get("model_alone") or {}).get("candidate")
    checks = {
        "impact_ratio": all(
            side["lowest_impact_ratio"]["high"] >= gate.min_impact_ratio for side in (audit["candidate"], alone) if side
        ),
        "win_rate_gap": audit["candidate"]["largest_win_rate_gap"]["low"] <= gate.max_win_rate_gap,
    }
    if "flip_rate_increase" in audit:
        checks["name_sensitivity"] = all(
            audit[f"{name}_increase"]["low"] <= gate.max_name_sensitivity_increase
            for name in ("flip_rate", "largest_win_rate_gap")
        )
    return checks


def bias_rules(audit: dict | None, gate: GateConfig, checks: dict[str, bool]) -> dict[str, str]:
    """What each bias rule saw, in words, for the decision's reason."""
    if audit is None:
        return {}
    gap = audit["candidate"]["largest_win_rate_gap"]
    reads = audit.get("reads", "whole text")
    alone = (audit.get("model_alone") or {}).get("candidate")
    ratios = [(f"({reads})", audit["candidate"]["lowest_impact_ratio"])]
    if alone:
        ratios.append(("(the model alone)", alone["lowest_impact_ratio"]))
    rules = {
        "impact_ratio": "; ".join(
            f"lowest impact ratio {lowest['value']:.3f} ({audit['confidence']:.0%} CI {lowest['low']:.3f} to "
            f"{lowest['high']:.3f}) {label} "
            + ("not below" if lowest["high"] >= gate.min_impact_ratio else "below")
            + f" {gate.min_impact_ratio:.2f} beyond doubt"
            for label, lowest in ratios
        ),
        "win_rate_gap": ""
        if checks["win_rate_gap"]
        else f"a name group wins beyond the allowed gap {gate.max_win_rate_gap:.2f} ({reads}): largest win-rate "
        f"gap {gap['value']:.3f} (CI {gap['low']:.3f} to {gap['high']:.3f}) at the "
        f"{audit.get('worst_of', {}).get('largest_win_rate_gap', 'top')} placement",
    }
    if "name_sensitivity" in checks:
        flips, gaps = audit["flip_rate_increase"], audit["largest_win_rate_gap_increase"]
        rules["name_sensitivity"] = (
            f"a name moves this candidate more than production beyond the allowed "
            f"{gate.max_name_sensitivity_increase:.2f} ({reads}): flip rate change {flips['value']:+.3f} "
            f"(CI {flips['low']:+.3f} to {flips['high']:+.3f}), largest win-rate gap change {gaps['value']:+.3f} "
            f"(CI {gaps['low']:+.3f} to {gaps['high']:+.3f})"
            if not checks["name_sensitivity"]
            else ""
        )
    return rules


def validate(
    candidate_uri: str,
    pairs_uri: str,
    run_uri: str,
    locations: Locations,
    gate: GateConfig,
    storage: ObjectStore,
    base_model: str | None = None,
    airflow_run_id: str | None = None,
) -> str:
    """Score candidate, production and the baselines; decide; store the report, its HTML and the model card.

    ``airflow_run_id`` (the DAG passes its run id) lets the Matcher page link the night to its Airflow run.

    Writes ``<candidate>/validation_report.json`` (the gate reads it), ``validation_report.html`` (for
    people: per-category chart, confusion matrix) and adds the evaluation to the model card.
    """
    from include.matcher.foundations.models import load_model
    from include.matcher.stages.model_card import refresh_model_card
    from include.matcher.stages.report import render_report

    pairs, candidate = layout.Pairs(pairs_uri), layout.Model(candidate_uri)
    held_out = storage.get_jsonl(pairs.split("test"))
    train_cvs = storage.get_jsonl(pairs.split("train_cvs"))
    jobs = storage.get_json(pairs.jobs)
    pairs_summary = storage.get_json(pairs.summary)
    production = production_for(run_uri, locations, storage)
    base_name = base_model or TrainingConfig().base_model
    production_name = production.uri if production else base_name

    memo = last_nights_memo(locations, storage)
    candidate_model = load_model(candidate_uri, storage)
    kept = {"candidate": {}, "production": {}}
    candidate_result = evaluate_model(candidate_model, held_out, jobs, keep=kept["candidate"], memo=memo)
    problems = model_problems(candidate_model, candidate_result.get("health"), gate)
    production_model = load_model(production_name, storage)
    production_result = evaluate_model(production_model, held_out, jobs, keep=kept["production"], memo=memo)
    base_result = (
        production_result
        if production_name == base_name
        else evaluate_model(load_model(base_name, storage), held_out, jobs, memo=memo)
    )
    evidence = None
    if kept["candidate"] and not problems:
        evidence = paired_evidence(
            kept["candidate"]["scores"],
            kept["production"]["scores"],
            kept["candidate"]["categories"],
            kept["candidate"]["truth"],
            gate.primary_metric,
            gate.confidence,
            gate.min_category_support,
        )
    audit = None
    if not problems and gate.audit_names_per_group > 0:
        audit = audit_held_out(
            {"candidate": candidate_model, "production": production_model}, held_out, jobs, gate, memo=memo
        )
    decision = decide(candidate_result, production_result, gate, len(held_out), problems, evidence, audit)
    report_uri = candidate.validation_report
    held_out_vectors = layout.Run(run_uri).held_out_vectors
    erased = erased_recently({cv["key"] for cv in held_out if "key" in cv}, locations, storage)
    scored = [cv for cv in held_out if cv["category"] in jobs]
    unerased = [index for index, cv in enumerate(scored) if cv.get("key") not in erased]
    write_held_out_vectors(
        held_out_vectors,
        [scored[index] for index in unerased],
        {side: kept[side]["cv_vectors"][unerased] for side in kept if kept[side]},
        storage,
    )
    remember(memo, run_uri, locations, storage, forget=erased)
    report = ValidationReport.written(
        {
            "created_at": datetime.now(UTC).isoformat(),
            "run": run_uri,
            "airflow_run_id": airflow_run_id,
            "candidate": candidate_uri,
            "version": version_for(run_uri),
            "production": {"name": production_name, "version": production.version if production else None},
            "held_out": {
                "split": "test",
                "count": len(held_out),
                "uri": pairs.split("test"),
                "vectors": held_out_vectors,
                "titles": "stripped (primary); kept (with_title)",
                "vector_memo": memo.summary(),
            },
            "data_hash": pairs_summary.get("data_hash"),
            "training_data": {
                key: pairs_summary[key] for key in ("cvs_by_split", "train_cvs_by_category") if key in pairs_summary
            },
            "training": training_summary(storage, candidate_uri),
            "candidate_metrics": candidate_result,
            "production_metrics": production_result,
            "baselines": {
                "base_zero_shot": base_result,
                "tfidf_logreg": evaluate_tfidf_baseline(train_cvs, held_out, jobs),
            },
            "decision": decision,
            "bias_audit": audit,
            "html_report": candidate.validation_report_html,
        }
    )
    storage.put_json(report_uri, report.to_json())
    storage.put_bytes(report.html_report, render_report(report).encode(), content_type="text/html; charset=utf-8")
    refresh_model_card(candidate_uri, storage, report)
    (log.warning if problems else log.info)("validate: %s", decision["reason"])
    if not decision["promote"]:
        record_trained(run_uri, locations, storage, "refused")  # the night's work is done: production stays
    log.info("validate: report at %s (for people: %s)", report_uri, report.html_report)
    return report_uri


def last_nights_memo(locations: Locations, storage: ObjectStore) -> VectorMemo:
    """The vectors the newest validation read (:mod:`~include.matcher.foundations.vector_memo`); an
    empty memo when there is none or it cannot be read (everything is then read afresh)."""
    pointer = storage.get_with_etag(layout.vector_memo_pointer(locations.work))
    if pointer is None:
        return VectorMemo()
    uri = json.loads(pointer[0]).get("uri", "")
    try:
        run = layout.Run.of_vector_memo(uri)
        return VectorMemo.from_parquet(storage.get_bytes(uri), source=run.uri if run else uri)
    except Exception as error:  # noqa: BLE001 - a memo is only a shortcut: reading afresh is always right
        log.warning("validate: last night's vectors at %s unusable (%s); reading every text", uri, error)
        return VectorMemo()


def remember(memo: VectorMemo, run_uri: str, locations: Locations, storage: ObjectStore, forget: set[str]) -> None:
    """Keep what this night read for the next (without the CVs in ``forget``) and point to it."""
    run = layout.Run(run_uri)
    storage.put_bytes(run.vector_memo, memo.to_parquet(forget))
    storage.put_json(layout.vector_memo_pointer(locations.work), {"uri": run.vector_memo, "run": run_uri})
    log.info(
        "validate: %d texts' vectors taken from %s, %d read",
        memo.recalled,
        memo.source or "no earlier night",
        memo.read,
    )


def write_held_out_vectors(uri: str, cvs: list[dict], vectors: dict, storage: ObjectStore) -> None:
    """Both models' vectors of the held-out CVs, by key and category (never the text), so the
    Matcher page can rank the same CVs with either model (:mod:`include.matcher.serving.comparison`)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {
        "key": pa.array([cv["key"] for cv in cvs], pa.string()),
        "category": pa.array([cv["category"] for cv in cvs], pa.string()),
    }
    for side, matrix in vectors.items():
        dimension = int(matrix.shape[1]) if len(cvs) else 0
        columns[side] = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1), pa.float32()), dimension)
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    storage.put_bytes(uri, buffer.getvalue())


def evaluate(candidate_uri: str, pairs_uri: str, context: RunContext, airflow_run_id: str | None = None) -> str:
    """Task ``validate.evaluate``: :func:`validate` under the run's gate settings; the report's URI."""
    return validate(
        candidate_uri,
        pairs_uri,
        context.run_uri,
        context.locations,
        context.config.gate,
        context.storage,
        base_model=context.config.training.base_model,
        airflow_run_id=airflow_run_id,
    )


def gate(report_uri: str, context: RunContext) -> bool:
    """Task ``validate.gate``: the decision stored in the report, logged with its reason; True lets promote run."""
    report = read_report(context.storage.get_bytes(report_uri))
    decision = report.decision
    log.info("gate: %s: %s", "PROMOTE" if decision.promote else "KEEP PRODUCTION", decision.reason)
    log.info("gate: validation report %r (for people: %r)", report_uri, report.html_report)
    return decision.promote


def production_for(run_uri: str, locations: Locations, storage: ObjectStore) -> RegistryEntry | None:
    """The production model the run started with (its manifest says), else the one in production now."""
    found = storage.get_with_etag(layout.Run(run_uri).manifest)
    if found is not None and "production_at_start" in (manifest := json.loads(found[0])):
        at_start = manifest["production_at_start"]
        return None if at_start is None else RegistryEntry.load(at_start)
    return read_production(storage, locations.registry)


def training_summary(storage: ObjectStore, candidate_uri: str) -> dict | None:
    """The candidate's hyperparameters and training cost, from its ``training_config.json``."""
    stats = read_training_stats(storage, candidate_uri)
    if stats is None:
        return None
    return {
        **stats.config,
        **{key: getattr(stats, key) for key in ("examples", "train_seconds", "examples_per_second", "device")},
    }
