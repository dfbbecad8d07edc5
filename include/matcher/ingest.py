"""Stage 1, ingest: find new or changed CV files in the raw bucket.

The raw layout is ``<prefix>/<CATEGORY>/<file>``; the folder is the label. The stage compares a
listing with the ingestion ledger (key -> ETag, size, category, outcome) and writes this run's
manifest. It never changes the ledger: the parse stage commits each file's outcome.

Re-runs and failed nights lose nothing:

* The manifest is written once per run: a retried or cleared ``ingest`` returns the run's manifest
  as it was, never a fresh diff against a ledger its own run already committed (that would be empty).
* A parsed file is "seen", but the night's work is done only when a model was trained and judged on
  it: :func:`record_trained` stores that corpus's fingerprint when the gate has decided. A night
  whose ledger holds a corpus no finished night trained on (one that failed after parsing) has work,
  even with no new file.
* The jobs file is parsed here, with the parser ``build_pairs`` uses: a malformed one fails the run
  before anything is marked as seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime

from include.matcher import layout
from include.matcher.documents import SUPPORTED_EXTENSIONS
from include.matcher.jobs import parse_job_descriptions
from include.matcher.registry import read_production
from include.matcher.settings import Locations
from include.matcher.storage import ObjectStore, S3Uri
from include.matcher.text import category_name

log = logging.getLogger(__name__)


def ledger_uri(locations: Locations) -> str:
    return layout.ledger(locations.work)


def read_ledger(storage: ObjectStore, locations: Locations) -> tuple[dict, str | None]:
    """The ledger and its ETag (None before the first run)."""
    found = storage.get_with_etag(ledger_uri(locations))
    if found is None:
        return {"objects": {}, "jobs_file_etag": None}, None
    return json.loads(found[0]), found[1]


CORPUS_FIELDS = ("key", "category", "content_hash", "text_hash", "text_uri", "chars")


def corpus_rows(ledger: dict) -> list[dict]:
    """The corpus the ledger describes: every parsed CV, one row each, in key order."""
    return [
        {k: entry[k] for k in CORPUS_FIELDS}
        for _, entry in sorted(ledger["objects"].items())
        if entry["status"] == "parsed"
    ]


def is_current_corpus(rows: list[dict], storage: ObjectStore, locations: Locations) -> bool:
    """Whether a corpus snapshot is the corpus as it is now: the ledger's (or no ledger to say otherwise).

    An older night's snapshot can hold CVs deleted (or erased) since: publishing it would put them
    back into search, so its refresh is refused.
    """
    found = storage.get_with_etag(ledger_uri(locations))
    if found is None:
        return True
    now = {(row["key"], row["text_hash"]) for row in corpus_rows(json.loads(found[0]))}
    return {(row["key"], row["text_hash"]) for row in rows} == now


def within_prefix(key: str, entry: dict, raw_prefix: str, base: str) -> bool:
    """Whether a ledger entry belongs to the raw prefix being listed: only those can be found removed.

    Entries record the prefix they were listed under; older entries without one belong to a prefix
    whose ``<CATEGORY>/<file>`` layout their key fits.
    """
    if "raw_prefix" in entry:
        return entry["raw_prefix"].rstrip("/") == raw_prefix.rstrip("/")
    return key.startswith(base) and len(key[len(base) :].split("/")) == 2


def trained_state_uri(locations: Locations) -> str:
    return layout.last_trained(locations.work)


def corpus_fingerprint(parsed: list[dict], jobs_etag: str | None) -> str:
    """What a night trains on: every parsed CV's (category, text fingerprint) and the jobs file's version."""
    digest = hashlib.sha256()
    for category, text_hash in sorted((row["category"], row["text_hash"]) for row in parsed):
        digest.update(f"{category}\0{text_hash}\n".encode())
    digest.update(f"jobs\0{jobs_etag}\n".encode())
    return digest.hexdigest()


def ledger_fingerprint(ledger: dict, jobs_etag: str | None) -> str | None:
    """The fingerprint of the corpus the ledger describes (None when it holds no parsed CV)."""
    parsed = [entry for entry in ledger["objects"].values() if entry.get("status") == "parsed"]
    return corpus_fingerprint(parsed, jobs_etag) if parsed else None


def record_trained(run_uri: str, locations: Locations, storage: ObjectStore, outcome: str) -> None:
    """Mark the run's corpus as trained on and judged (``outcome``: promoted / refused): a later night
    with the same corpus and jobs file is quiet."""
    found = storage.get_with_etag(layout.Run(run_uri).parse_summary)
    if found is None:  # a stage run by hand outside a pipeline run: no corpus to record
        log.info("ingest state: %r has no parse summary; nothing recorded", run_uri)
        return
    summary = json.loads(found[0])
    state = {
        "fingerprint": summary["corpus_fingerprint"],
        "run": run_uri,
        "outcome": outcome,
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    storage.put_json(trained_state_uri(locations), state)
    log.info("ingest state: corpus of %s recorded as trained on (%s)", run_uri, outcome)


def classify_key(relative_key: str) -> tuple[str | None, str | None]:
    """(category, None) for a usable ``<CATEGORY>/<file>`` key, else (None, why it is skipped)."""
    parts = relative_key.split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None, "outside_layout"
    category, filename = category_name(parts[0]), parts[1]
    if filename.startswith("."):
        return None, "hidden_file"
    if not filename.lower().endswith(SUPPORTED_EXTENSIONS):
        return None, "unsupported_type"
    return category, None


def ingest(run_uri: str, locations: Locations, storage: ObjectStore, *, force: bool = False) -> str:
    """List the raw prefix, diff it with the ledger and write ``<run>/manifest.json``.

    Returns the manifest's URI. ``force`` marks the run as wanting a retrain even without new files.
    A run's manifest is written once: a re-run of the same run returns it unchanged.
    """
    uri = layout.Run(run_uri).manifest
    if storage.exists(uri):
        log.info("ingest: this run's manifest already exists; reusing %r", uri)
        return uri
    jobs = read_jobs_file(locations, storage)
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
                "uri": info.uri,
                "etag": info.etag,
                "size": info.size,
                "category": category,
                "change": "changed" if previous else "new",
            }
        )

    # A run on another prefix (a ``raw_prefix`` param) sees only that prefix: it must not take every
    # CV listed elsewhere for removed.
    removed = sorted(
        key for key, entry in known.items() if key not in seen and within_prefix(key, entry, locations.raw_cvs, base)
    )
    jobs_changed = jobs["etag"] != ledger.get("jobs_file_etag")
    pending = untrained_corpus(ledger, storage, locations)

    manifest = {
        "created_at": datetime.now(UTC).isoformat(),
        "raw_prefix": locations.raw_cvs,
        "items": items,
        "skipped": skipped,
        "removed": removed,
        "jobs_file": {
            "uri": locations.jobs_file,
            "etag": jobs["etag"],
            "changed": jobs_changed,
            "categories": jobs["categories"],
        },
        "force_retrain": force,
        "untrained_corpus": pending,
        # The night judges its candidate against the production it started with, so a re-run of
        # validate after promote compares with the same model, not with the candidate itself.
        "production_at_start": read_production(storage, locations.registry),
        "counts": {
            "new": sum(i["change"] == "new" for i in items),
            "changed": sum(i["change"] == "changed" for i in items),
            "skipped": len(skipped),
            "removed": len(removed),
            "already_ingested": len(seen) - len(items),
        },
    }
    manifest["has_work"] = bool(items or removed or jobs_changed or force or pending)
    storage.put_json(uri, manifest, if_none_match=True)
    log.info("ingest: %s -> %r", manifest["counts"], uri)
    if pending:
        log.warning(
            "ingest: the corpus already parsed has not been trained on by a finished night (an earlier night failed "
            "after parsing): retraining"
        )
    for entry in skipped:
        log.warning("ingest: skipped %r (%s)", entry["key"], entry["reason"])
    return uri


def read_jobs_file(locations: Locations, storage: ObjectStore) -> dict:
    """The jobs file's ETag and categories, parsed as ``build_pairs`` will parse it; a clear error if unusable."""
    found = storage.get_with_etag(locations.jobs_file)
    if found is None:
        raise FileNotFoundError(f"job descriptions not found at {locations.jobs_file}")
    try:
        jobs = parse_job_descriptions(found[0])
    except ValueError as error:
        raise ValueError(
            f"the jobs file {locations.jobs_file} is not usable, so nothing was ingested: {error}"
        ) from error
    return {"etag": found[1], "categories": sorted(jobs)}


def untrained_corpus(ledger: dict, storage: ObjectStore, locations: Locations) -> bool:
    """Whether the ledger's parsed corpus differs from the one the last finished night trained on."""
    current = ledger_fingerprint(ledger, ledger.get("jobs_file_etag"))
    if current is None:
        return False
    found = storage.get_with_etag(trained_state_uri(locations))
    return found is None or json.loads(found[0]).get("fingerprint") != current


def has_work(manifest_uri: str, storage: ObjectStore) -> bool:
    """Whether the run should go on past ingest; says why in the log either way."""
    manifest = storage.get_json(manifest_uri)
    log.info(
        "ingest: files %s; jobs file changed: %s; corpus not yet trained on: %s; forced: %s",
        manifest["counts"],
        manifest["jobs_file"]["changed"],
        manifest.get("untrained_corpus"),
        manifest["force_retrain"],
    )
    if not manifest["has_work"]:
        log.info("ingest: nothing new tonight: training is skipped (trigger with force_retrain to retrain anyway)")
    return manifest["has_work"]
