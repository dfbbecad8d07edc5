"""A human-readable account of a run: what came in, what was trained, what the gate decided."""

from __future__ import annotations

from include.matcher.foundations import layout
from include.matcher.foundations.pointers import read_current, read_production
from include.matcher.foundations.settings import Locations
from include.matcher.foundations.storage import ObjectStore
from include.matcher.stages.approval import approval_summary
from include.matcher.stages.report import audit_headline
from include.matcher.stages.validation_report import read_report


def latest_run_uri(locations: Locations, storage: ObjectStore) -> str | None:
    """The run whose manifest is newest."""
    manifests = [info for info in storage.list(layout.runs(locations.work)) if layout.Run.of_manifest(info.uri)]
    if not manifests:
        return None
    newest = max(manifests, key=lambda info: storage.get_json(info.uri)["created_at"])
    return layout.Run.of_manifest(newest.uri).uri


def describe_run(run_uri: str, locations: Locations, storage: ObjectStore) -> str:
    lines = [f"run:        {run_uri}"]
    run = layout.Run(run_uri)
    manifest = storage.get_json(run.manifest)
    lines.append(f"ingest:     {manifest['counts']}")
    parse = _maybe_json(storage, run.parse_summary)
    if parse is None:
        lines.append("parse:      skipped (nothing new; trigger with force_retrain to retrain anyway)")
    else:
        lines.append(
            f"parse:      {parse['parsed']} parsed, {parse['rejected']} rejected {parse['rejects_by_reason']}; "
            f"corpus {parse['corpus_size']} CVs"
        )
        lines.append(f"rejects:    {parse['rejects_uri']}")
    found = storage.get_with_etag(run.candidate.validation_report)
    if found is not None:
        report = read_report(found[0])
        lines.append(f"candidate:  {report.candidate}")
        lines.append(f"report:     {run.candidate.validation_report}")
        decision = report.decision
        metric = decision.primary_metric
        candidate, production = report.candidate_result, report.production_result
        lines.append(
            f"metrics:    {metric} candidate {candidate.metric(metric):.3f} vs production "
            f"{production.metric(metric):.3f}; "
            f"accuracy@1 {candidate.metric('accuracy@1'):.3f} vs {production.metric('accuracy@1'):.3f}"
        )
        lines.append(f"fairness:   {audit_headline(report.bias_audit)}")
        lines.append(f"gate:       {'PASSED' if decision.promote else 'REFUSED'}: {decision.reason}")
        if report.approval:
            lines.append(f"approval:   {approval_summary(report.approval)}")
        lines.append(f"became:     {night_outcome(report, locations, storage)}")
    production = read_production(storage, locations.registry)
    lines.append(f"production: {production.version + ' at ' + production.uri if production else 'none yet'}")
    current = read_current(storage, locations.embeddings)
    lines.append(f"embeddings: {current['uri'] + ' (model ' + current['version'] + ')' if current else 'none yet'}")
    manifest = storage.get_json(current["manifest"]) if current else {}
    if manifest.get("corpus") == run.corpus:  # this night published the snapshot search serves
        lines.append(f"refreshed:  {manifest.get('counts', {})}")
    from include.matcher.stages.housekeeping import retention_settings

    kept = retention_settings()
    lines.append(
        f"retention:  CV text and vectors of runs kept {kept['retention_days']} days, {kept['keep_snapshots']} "
        f"embeddings snapshots besides the current one, the search log {kept['audit_retention_days']} days "
        "(matcher_housekeeping)"
    )
    timings = task_timings(run_uri, storage)
    if timings:
        lines.append("timings:    " + ", ".join(f"{task} {seconds:.1f}s" for task, seconds in timings.items()))
    return "\n".join(lines)


def night_outcome(report, locations: Locations, storage: ObjectStore) -> str:
    """What became of the night, as the Matcher page says it (awaiting approval, promoted, rolled back...)."""
    from include.matcher.pages.dashboard import registry_view
    from include.matcher.pages.night_state import night_state

    production, versions, rollbacks = registry_view(storage, locations)
    state = night_state(report, versions, production, rollbacks)
    until = f", until {state.deadline}" if state.deadline else ""
    return state.label + (f" ({state.detail}{until})" if state.detail or until else "")


def task_timings(run_uri: str, storage: ObjectStore) -> dict[str, float]:
    """Seconds of work per task (mapped instances summed), from the DAG's ``timings/`` records."""
    totals: dict[str, float] = {}
    for info in storage.list(layout.Run(run_uri).timings):
        record = storage.get_json(info.uri)
        totals[record["task"]] = totals.get(record["task"], 0.0) + record["seconds"]
    return totals


def describe_last_run(locations: Locations, storage: ObjectStore) -> str:
    run_uri = latest_run_uri(locations, storage)
    return "no run yet" if run_uri is None else describe_run(run_uri, locations, storage)


def _maybe_json(storage: ObjectStore, uri: str):
    found = storage.get_with_etag(uri)
    if found is None:
        return None
    import json

    return json.loads(found[0])
