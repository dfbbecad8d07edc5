"""A human-readable account of a run: what came in, what was trained, what the gate decided."""

from __future__ import annotations

from include.matcher.embeddings import read_current
from include.matcher.registry import read_production
from include.matcher.settings import Locations
from include.matcher.storage import S3Uri, Storage, join_uri


def latest_run_uri(locations: Locations, storage: Storage) -> str | None:
    """The run whose manifest is newest."""
    runs = join_uri(locations.work, "runs")
    bucket = S3Uri.parse(runs).bucket
    manifests = [info for info in storage.list(runs) if info.key.endswith("/manifest.json")]
    if not manifests:
        return None
    newest = max(manifests, key=lambda info: storage.get_json(f"s3://{bucket}/{info.key}")["created_at"])
    return f"s3://{bucket}/{newest.key.rsplit('/', 1)[0]}"


def describe_run(run_uri: str, locations: Locations, storage: Storage) -> str:
    lines = [f"run:        {run_uri}"]
    manifest = storage.get_json(join_uri(run_uri, "manifest.json"))
    lines.append(f"ingest:     {manifest['counts']}")
    parse = _maybe_json(storage, join_uri(run_uri, "parse", "summary.json"))
    if parse is None:
        lines.append("parse:      skipped (nothing new; trigger with force_retrain to retrain anyway)")
    else:
        lines.append(f"parse:      {parse['parsed']} parsed, {parse['rejected']} rejected {parse['rejects_by_reason']}; corpus {parse['corpus_size']} CVs")
        lines.append(f"rejects:    {parse['rejects_uri']}")
    report = _maybe_json(storage, join_uri(run_uri, "candidate", "validation_report.json"))
    if report is not None:
        lines.append(f"candidate:  {report['candidate']}")
        lines.append(f"report:     {join_uri(run_uri, 'candidate', 'validation_report.json')}")
        decision = report["decision"]
        lines.append(f"gate:       {'PROMOTED' if decision['promote'] else 'NOT PROMOTED'}: {decision['reason']}")
    production = read_production(storage, locations.registry)
    lines.append(f"production: {production['version'] + ' at ' + production['uri'] if production else 'none yet'}")
    current = read_current(storage, locations.embeddings)
    lines.append(f"embeddings: {current['uri'] + ' (model ' + current['version'] + ')' if current else 'none yet'}")
    return "\n".join(lines)


def describe_last_run(locations: Locations, storage: Storage) -> str:
    run_uri = latest_run_uri(locations, storage)
    return "no run yet" if run_uri is None else describe_run(run_uri, locations, storage)


def _maybe_json(storage: Storage, uri: str):
    found = storage.get_with_etag(uri)
    if found is None:
        return None
    import json

    return json.loads(found[0])
