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

import logging
from datetime import UTC, datetime

from include.matcher.foundations import layout
from include.matcher.foundations.context import RunContext
from include.matcher.foundations.documents import SUPPORTED_EXTENSIONS, parser_of, recorded_parser
from include.matcher.foundations.jobs import parse_job_descriptions
from include.matcher.foundations.pointers import read_production
from include.matcher.foundations.settings import Locations, ParseLimits, parse_limits_from_env
from include.matcher.foundations.storage import ObjectStore
from include.matcher.foundations.text import category_name
from include.matcher.foundations.uris import S3Uri
from include.matcher.stages.corpus import erasure_secret, is_erased, read_ledger, untrained_corpus, within_prefix

log = logging.getLogger(__name__)


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


def ingest(
    run_uri: str, locations: Locations, storage: ObjectStore, *, force: bool = False, limits: ParseLimits | None = None
) -> str:
    """List the raw prefix, diff it with the ledger and write ``<run>/manifest.json``.

    Returns the manifest's URI. ``force`` marks the run as wanting a retrain even without new files.
    A file whose text another PDF extractor made than ``limits`` names (``MATCHER_PDF_EXTRACTOR``)
    is listed again (``reparse``), so one corpus never mixes two extractors' texts.
    A run's manifest is written once: a re-run of the same run returns it unchanged.
    """
    uri = layout.Run(run_uri).manifest
    if storage.exists(uri):
        log.info("ingest: this run's manifest already exists; reusing %r", uri)
        return uri
    limits = limits or parse_limits_from_env()
    jobs = read_jobs_file(locations, storage)
    ledger, _ = read_ledger(storage, locations)
    known = ledger["objects"]
    raw = S3Uri.parse(locations.raw_cvs)
    base = f"{raw.key}/" if raw.key else ""

    secret = erasure_secret(storage, locations) if ledger.get("erased") else b""
    items, skipped, seen, erased = [], [], set(), 0
    for info in storage.list(locations.raw_cvs):
        relative = info.key[len(base) :]
        category, why = classify_key(relative)
        if why:
            skipped.append({"key": info.key, "reason": why})
            continue
        if secret and is_erased(ledger, secret, info.key, info.etag, info.modified):
            erased += 1  # erased, and unchanged since: the source system has not deleted it yet
            continue
        seen.add(info.key)
        previous = known.get(info.key)
        unchanged = previous and previous["etag"] == info.etag and previous["size"] == info.size
        if unchanged and recorded_parser(previous, info.key) == parser_of(info.key, limits):
            continue
        items.append(
            {
                "key": info.key,
                "uri": info.uri,
                "etag": info.etag,
                "size": info.size,
                "modified": info.modified,
                "category": category,
                "change": "reparse" if unchanged else "changed" if previous else "new",
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
        "production_at_start": (production := read_production(storage, locations.registry)) and production.to_json(),
        "counts": {
            "new": sum(i["change"] == "new" for i in items),
            "changed": sum(i["change"] == "changed" for i in items),
            "reparse": sum(i["change"] == "reparse" for i in items),
            "skipped": len(skipped),
            "removed": len(removed),
            "already_ingested": len(seen) - len(items),
            "erased": erased,
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


def find_new_files(context: RunContext) -> str:
    """Task ``ingest.find_new_files``: this run's manifest of new and changed files (:func:`ingest`)."""
    config, storage = context.config, context.storage
    return ingest(context.run_uri, context.locations, storage, force=config.data.force_retrain, limits=config.limits)


def check_for_new_data(manifest_uri: str, context: RunContext) -> bool:
    """Task ``ingest.check_for_new_data``: whether the run goes on past ingest (:func:`has_work`)."""
    return has_work(manifest_uri, context.storage)
