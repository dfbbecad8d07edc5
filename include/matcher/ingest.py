"""Stage 1, ingest: find new or changed CV files in the raw bucket.

The raw layout is ``<prefix>/<CATEGORY>/<file>``; the folder is the label. The stage compares a
listing with the ingestion ledger (key -> ETag, size, category, outcome) and writes this run's
manifest. It never changes the ledger: the parse stage commits each file's outcome, so a run that
dies between the two stages leaves its files to be picked up again.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from include.matcher.documents import SUPPORTED_EXTENSIONS
from include.matcher.settings import Locations
from include.matcher.storage import S3Uri, Storage, join_uri

log = logging.getLogger(__name__)


def ledger_uri(locations: Locations) -> str:
    return join_uri(locations.work, "state", "ledger.json")


def read_ledger(storage: Storage, locations: Locations) -> tuple[dict, str | None]:
    """The ledger and its ETag (None before the first run)."""
    found = storage.get_with_etag(ledger_uri(locations))
    if found is None:
        return {"objects": {}, "jobs_file_etag": None}, None
    return json.loads(found[0]), found[1]


def classify_key(relative_key: str) -> tuple[str | None, str | None]:
    """(category, None) for a usable ``<CATEGORY>/<file>`` key, else (None, why it is skipped)."""
    parts = relative_key.split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None, "outside_layout"
    category, filename = parts
    if filename.startswith("."):
        return None, "hidden_file"
    if not filename.lower().endswith(SUPPORTED_EXTENSIONS):
        return None, "unsupported_type"
    return category, None


def ingest(run_uri: str, locations: Locations, storage: Storage, *, force: bool = False) -> str:
    """List the raw prefix, diff it with the ledger and write ``<run>/manifest.json``.

    Returns the manifest's URI. ``force`` marks the run as wanting a retrain even without new files.
    """
    ledger, _ = read_ledger(storage, locations)
    known = ledger["objects"]
    raw = S3Uri.parse(locations.raw_cvs)
    base = f"{raw.key}/" if raw.key else ""

    items, skipped, seen = [], [], set()
    for info in storage.list(locations.raw_cvs):
        relative = info.key[len(base) :]
        category, why = classify_key(relative)
        if why:
            skipped.append({"key": info.key, "reason": why})
            continue
        seen.add(info.key)
        previous = known.get(info.key)
        if previous and previous["etag"] == info.etag and previous["size"] == info.size:
            continue
        items.append(
            {
                "key": info.key,
                "uri": str(S3Uri(raw.bucket, info.key)),
                "etag": info.etag,
                "size": info.size,
                "category": category,
                "change": "changed" if previous else "new",
            }
        )

    removed = sorted(key for key in known if key not in seen)
    jobs = storage.head(locations.jobs_file)
    if jobs is None:
        raise FileNotFoundError(f"job descriptions not found at {locations.jobs_file}")
    jobs_changed = jobs.etag != ledger.get("jobs_file_etag")

    manifest = {
        "created_at": datetime.now(timezone.utc).isoformat(),
        "raw_prefix": locations.raw_cvs,
        "items": items,
        "skipped": skipped,
        "removed": removed,
        "jobs_file": {"uri": locations.jobs_file, "etag": jobs.etag, "changed": jobs_changed},
        "force_retrain": force,
        "counts": {
            "new": sum(i["change"] == "new" for i in items),
            "changed": sum(i["change"] == "changed" for i in items),
            "skipped": len(skipped),
            "removed": len(removed),
            "already_ingested": len(seen) - len(items),
        },
    }
    manifest["has_work"] = bool(items or removed or jobs_changed or force)
    uri = join_uri(run_uri, "manifest.json")
    storage.put_json(uri, manifest)
    log.info("ingest: %s -> %s", manifest["counts"], uri)
    for entry in skipped:
        log.warning("ingest: skipped %s (%s)", entry["key"], entry["reason"])
    return uri
