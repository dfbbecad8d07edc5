"""Retention (GDPR Art. 5(1)(e)): personal data kept no longer than needed, the search log as long as required.

:func:`housekeep` runs in a DAG of its own (``matcher_housekeeping``, daily after the night: a quiet
night stops the retraining DAG after ingest, and retention must not wait for new CVs) and from the CLI
(``python -m include.matcher housekeeping``):

- in runs older than ``MATCHER_RETENTION_DAYS`` (90), everything that holds CV text or vectors goes:
  ``pairs/``, ``checkpoints/``, ``validation/held_out_vectors.parquet`` and the candidate's
  ``training_metadata.jsonl``; the run's manifest, reports, metrics and model stay;
- embeddings snapshots beyond the newest ``MATCHER_KEEP_SNAPSHOTS`` (2) that no pointer names, and
  unfinished snapshot folders (no manifest) older than the retention;
- text cache entries no ledger entry refers to, once a day old (a night parsing now writes its texts
  before it commits the ledger);
- search-log days older than ``MATCHER_AUDIT_RETENTION_DAYS`` (183), never earlier; a settled day's
  batches are merged into one object (what an erasure reads grows by a day, not by a batch).

It never touches the registry (every promoted version stays, so a rollback reaches each of them), the
snapshot ``current.json`` names, the ledger, or a run younger than the retention (a night running now).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from include.matcher.foundations import layout
from include.matcher.foundations.pointers import read_current
from include.matcher.foundations.settings import Locations, deployment_setting
from include.matcher.foundations.storage import ObjectStore
from include.matcher.stages.corpus import read_ledger

log = logging.getLogger(__name__)

ORPHAN_GRACE = timedelta(days=1)
# A day of the search log takes no more batches once this far behind: a batch goes to the day of its
# first record, written seconds (or, after an S3 outage, hours) later.
SEARCH_LOG_SETTLED = timedelta(days=2)


def retention_settings() -> dict[str, int]:
    return {
        "retention_days": int(deployment_setting("MATCHER_RETENTION_DAYS")),
        "keep_snapshots": int(deployment_setting("MATCHER_KEEP_SNAPSHOTS")),
        "audit_retention_days": int(deployment_setting("MATCHER_AUDIT_RETENTION_DAYS")),
    }


def housekeep(locations: Locations, storage: ObjectStore, now: datetime | None = None, dry_run: bool = False) -> dict:
    """Delete what the retention settings say is kept no longer; what was (or would be) deleted, counted."""
    now = now or datetime.now(UTC)
    settings = retention_settings()
    cutoff = now - timedelta(days=settings["retention_days"])
    deleted: dict[str, list[str]] = {
        "run_parts": [],
        "snapshots": [],
        "texts": [],
        "search_log_days": [],
        "search_log_batches_merged": [],
    }

    def delete(uri: str, kind: str, prefix: bool = False) -> None:
        deleted[kind].append(uri)
        if not dry_run:
            storage.delete_prefix(uri) if prefix else storage.delete(uri)

    runs_root = layout.runs(locations.work)
    objects = storage.list(runs_root)
    manifests = {run.uri: info for info in objects if (run := layout.Run.of_manifest(info.uri))}
    for run_uri in sorted(manifests):
        created = storage.get_json(manifests[run_uri].uri).get("created_at", "")
        if not created or datetime.fromisoformat(created) >= cutoff:
            continue
        for target, folder in layout.Run(run_uri).personal_parts:
            if folder:
                if any(info.uri.startswith(target + "/") for info in objects):
                    delete(target + "/", "run_parts", prefix=True)
            elif any(info.uri == target for info in objects):
                delete(target, "run_parts")

    current = read_current(storage, locations.embeddings)
    live = current["uri"].rstrip("/") if current else None
    folders: dict[str, dict] = {}
    for info in storage.list(locations.embeddings):
        snapshot = layout.Snapshot.holding(locations.embeddings, info.uri)
        if snapshot is None:
            continue  # current.json and the like
        entry = folders.setdefault(snapshot.uri, {"manifest": None, "modified": ""})
        entry["modified"] = max(entry["modified"], info.modified)
        if info.uri == snapshot.manifest:
            entry["manifest"] = info.uri
    finished = sorted(
        (storage.get_json(entry["manifest"]).get("written_at", ""), folder)
        for folder, entry in folders.items()
        if entry["manifest"]
    )
    kept = {folder for _, folder in finished[-settings["keep_snapshots"] :]} if settings["keep_snapshots"] else set()
    for folder, entry in sorted(folders.items()):
        if folder == live or folder in kept:
            continue
        unfinished_and_recent = entry["manifest"] is None and entry["modified"] >= cutoff.isoformat()
        if not unfinished_and_recent:
            delete(folder + "/", "snapshots", prefix=True)

    ledger, _ = read_ledger(storage, locations)
    referenced = {entry.get("text_uri") for entry in ledger["objects"].values()}
    referenced |= texts_of_uncollected_nights(objects, manifests, storage, cutoff)
    for info in storage.list(layout.texts(locations.work)):
        if info.uri not in referenced and info.modified and info.modified < (now - ORPHAN_GRACE).isoformat():
            delete(info.uri, "texts")

    audit_cutoff = (now - timedelta(days=settings["audit_retention_days"])).date().isoformat()
    matches = layout.search_log(locations.work)
    by_day: dict[str, list[str]] = {}
    for info in storage.list(matches):
        by_day.setdefault(info.uri[len(matches) + 1 :].split("/", 1)[0], []).append(info.uri)
    for day, uris in sorted(by_day.items()):
        day_uri = layout.search_log_day(locations.work, day)
        if day < audit_cutoff:
            delete(day_uri + "/", "search_log_days", prefix=True)
        elif day <= (now - SEARCH_LOG_SETTLED).date().isoformat() and len(uris) > 1:
            deleted["search_log_batches_merged"].append(day_uri)
            if not dry_run:
                compact_search_log_day(day_uri, uris, storage)

    summary = {"dry_run": dry_run, **settings, **{kind: len(uris) for kind, uris in deleted.items()}}
    log.info("housekeeping: %s", summary)
    return {**summary, "deleted": deleted}


def compact_search_log_day(day_uri: str, uris: list[str], storage: ObjectStore) -> str:
    """Merge one settled day's search-log objects into one (records in time order, each once), then
    delete the merged ones: the log's object count, and what an erasure reads, grows by about one a
    day rather than one a batch. Interrupted, it is run again: a record already merged is kept once."""
    import json
    import uuid

    seen: dict[str, dict] = {}
    for blob in storage.get_many(sorted(uris)):
        for line in blob.decode().splitlines():
            if line.strip():
                seen.setdefault(json.dumps(json.loads(line), sort_keys=True), json.loads(line))
    merged = layout.search_log_compacted(day_uri, uuid.uuid4().hex[:12])
    storage.put_jsonl(merged, sorted(seen.values(), key=lambda record: record["at"]))
    for uri in uris:
        storage.delete(uri)
    return merged


def texts_of_uncollected_nights(objects, manifests: dict, storage: ObjectStore, cutoff: datetime) -> set[str]:
    """Texts a night parsed (or found in the cache) but has not yet committed to the ledger: its
    ``collect`` will point the ledger at them, so they are no orphans while that night is in flight
    (younger than the retention and without a corpus snapshot). A cache hit on an old orphan used
    to lose its text to a housekeeping run between ``parse_shard`` and ``collect``."""
    uris = {info.uri for info in objects}
    texts: set[str] = set()
    for info in objects:
        run = layout.Run.of_parse_outcomes(info.uri)
        if run is None:
            continue
        run_uri = run.uri
        if run_uri not in manifests or layout.Run(run_uri).corpus in uris:
            continue  # collected (the ledger says what it refers to), or no night at all
        created = storage.get_json(manifests[run_uri].uri).get("created_at", "")
        if created and datetime.fromisoformat(created) < cutoff:
            continue  # a night abandoned longer ago than anything is kept
        texts |= {row.get("text_uri") for row in storage.get_jsonl(info.uri) if row.get("text_uri")}
    return texts


def housekeeping(context) -> dict:
    """Task ``housekeeping``: :func:`housekeep` for the deployment's locations; the counts."""
    found = housekeep(context.locations, context.storage)
    return {k: v for k, v in found.items() if k != "deleted"}
