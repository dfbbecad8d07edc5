"""The ingestion ledger and the corpus: what each raw file became, the corpus the later stages read,
and what a finished night trained on.

``<work>/state/ledger.json`` maps each raw key to its outcome (ETag, size, category, status, and for
a parsed file its text's URI and fingerprint; the prefix it was listed under). Only the parse stage
commits it, by compare-and-swap. A corpus snapshot (``runs/<run>/corpus.jsonl``) is the ledger's
parsed CVs at one moment; ``state/last_trained.json`` holds the fingerprint of the corpus the last
finished night trained on and judged, so a night knows whether work is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from datetime import UTC, datetime

from include.matcher.foundations import layout
from include.matcher.foundations.records import Count, Record
from include.matcher.foundations.settings import Locations, deployment_setting
from include.matcher.foundations.storage import ObjectStore, PreconditionFailed

log = logging.getLogger(__name__)


class LedgerEntry(Record):
    """What one raw file became (its parse outcome), the run that parsed it and the prefix it was listed under."""

    key: str
    etag: str
    size: Count
    modified: str | None = None
    category: str
    content_hash: str | None = None
    status: str  # parsed | rejected
    parser: str | None = None
    text_uri: str | None = None
    text_hash: str | None = None
    chars: Count | None = None
    kind: str | None = None
    extractor: str | None = None
    reason: str | None = None
    detail: str | None = None
    run: str | None = None
    raw_prefix: str | None = None


class Tombstone(Record):
    """An erased raw object, kept by its keyed hash (:func:`tombstone`): ingest and commit skip it."""

    at: str


class ErasureInProgress(Record):
    """What a re-run of an unfinished erasure needs, by the CV key's keyed hash (no key, no text)."""

    text_uris: list[str]
    content_hash: str | None = None
    at: str


class Ledger(Record):
    """``<work>/state/ledger.json``: every raw file's outcome by key, the jobs file seen, the erasures.

    Its writers (the parse stage's commit, the erasure's compare-and-swaps) edit its JSON in a
    transaction and store it through :meth:`Record.written`; :func:`read_ledger` reads it through
    :meth:`Record.load`, so both sides go through this class."""

    record_name = "ledger"

    objects: dict[str, LedgerEntry]
    jobs_file_etag: str | None = None
    erased: dict[str, Tombstone] | None = None
    erasing: dict[str, ErasureInProgress] | None = None


def erasure_secret(storage: ObjectStore, locations: Locations) -> bytes:
    """The key of the tombstones' keyed hash: ``MATCHER_ERASURE_KEY``, else one made once per work area."""
    configured = deployment_setting("MATCHER_ERASURE_KEY")
    if configured:
        return configured.encode()
    uri = layout.erasure_key(locations.work)
    found = storage.get_with_etag(uri)
    if found is None:
        with contextlib.suppress(PreconditionFailed):  # made by a concurrent erasure or night: use theirs
            storage.put_json(uri, {"key": secrets.token_hex(32)}, if_none_match=True)
        found = storage.get_with_etag(uri)
    return json.loads(found[0])["key"].encode()


def existing_erasure_secret(storage: ObjectStore, locations: Locations) -> bytes | None:
    """The erasure key if one exists (configured or made by an earlier erasure or search), else None:
    what a dry run reads, since it must change nothing."""
    configured = deployment_setting("MATCHER_ERASURE_KEY")
    if configured:
        return configured.encode()
    found = storage.get_with_etag(layout.erasure_key(locations.work))
    return json.loads(found[0])["key"].encode() if found else None


def tombstone(secret: bytes, key: str, etag: str, modified: str = "") -> str:
    """The keyed hash that marks one raw object (key, ETag and, where known, the second it was
    written) as erased. The time tells a re-upload of the same bytes (a candidate applying again: new
    data) from the erased object left in place (``keep_raw``); tombstones made without it match any
    object with those bytes under that key."""
    version = f"{key}\0{etag.strip(chr(34))}" + (f"\0{modified[:19]}" if modified else "")
    return hmac.new(secret, version.encode(), hashlib.sha256).hexdigest()


def key_hash(secret: bytes, key: str) -> str:
    """A candidate's key as logs name it: linkable by whoever holds the key and the secret, no one else."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:32]


def is_erased(ledger: dict, secret: bytes, key: str, etag: str, modified: str = "") -> bool:
    """Whether this raw object (key, ETag, when it was written) was erased: ingest and commit skip it."""
    erased = ledger.get("erased", {})
    return tombstone(secret, key, etag) in erased or bool(modified and tombstone(secret, key, etag, modified) in erased)


def read_ledger(storage: ObjectStore, locations: Locations) -> tuple[dict, str | None]:
    """The ledger and its ETag (None before the first run)."""
    found = storage.get_with_etag(layout.ledger(locations.work))
    if found is None:
        return {"objects": {}, "jobs_file_etag": None}, None
    return Ledger.load(found[0]).to_json(), found[1]


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
    found = storage.get_with_etag(layout.ledger(locations.work))
    if found is None:
        return True
    now = {(row["key"], row["text_hash"]) for row in corpus_rows(Ledger.load(found[0]).to_json())}
    return {(row["key"], row["text_hash"]) for row in rows} == now


def within_prefix(key: str, entry: dict, raw_prefix: str, base: str) -> bool:
    """Whether a ledger entry belongs to the raw prefix being listed: only those can be found removed.

    Entries record the prefix they were listed under; older entries without one belong to a prefix
    whose ``<CATEGORY>/<file>`` layout their key fits.
    """
    if "raw_prefix" in entry:
        return entry["raw_prefix"].rstrip("/") == raw_prefix.rstrip("/")
    return key.startswith(base) and len(key[len(base) :].split("/")) == 2


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
    storage.put_json(layout.last_trained(locations.work), state)
    log.info("ingest state: corpus of %s recorded as trained on (%s)", run_uri, outcome)


def untrained_corpus(ledger: dict, storage: ObjectStore, locations: Locations) -> bool:
    """Whether the ledger's parsed corpus differs from the one the last finished night trained on."""
    current = ledger_fingerprint(ledger, ledger.get("jobs_file_etag"))
    if current is None:
        return False
    found = storage.get_with_etag(layout.last_trained(locations.work))
    return found is None or json.loads(found[0]).get("fingerprint") != current


def commit_to_ledger(
    manifest: dict, outcomes: list[dict], run_uri: str, locations: Locations, storage: ObjectStore
) -> dict:
    """Record each outcome (and removals, and the jobs file seen) with a compare-and-swap write."""
    ledger, etag = read_ledger(storage, locations)
    objects = ledger["objects"]
    secret = erasure_secret(storage, locations) if ledger.get("erased") else b""
    for outcome in outcomes:
        if secret and is_erased(ledger, secret, outcome["key"], outcome["etag"], outcome.get("modified", "")):
            log.info("ledger: a CV erased while this night parsed it is left out, its text cache entry deleted")
            shared = {e.get("text_uri") for e in objects.values()}
            if outcome.get("text_uri") and outcome["text_uri"] not in shared:
                storage.delete(outcome["text_uri"])
            continue
        objects[outcome["key"]] = {**without_cache(outcome), "run": run_uri, "raw_prefix": manifest["raw_prefix"]}
    for key in manifest["removed"]:
        objects.pop(key, None)
    ledger["jobs_file_etag"] = manifest["jobs_file"]["etag"]
    written = Ledger.written(ledger).to_json()
    if etag is None:
        storage.put_json(layout.ledger(locations.work), written, if_none_match=True)
    else:
        storage.put_json(layout.ledger(locations.work), written, if_match=etag)
    return written


def without_cache(outcome: dict) -> dict:
    return {k: v for k, v in outcome.items() if k != "cache"}


def write_corpus_snapshot(ledger: dict, corpus_uri: str, storage: ObjectStore) -> list[dict]:
    """Every parsed CV the ledger knows, one row each, written to ``corpus_uri``."""
    corpus = corpus_rows(ledger)
    storage.put_jsonl(corpus_uri, corpus)
    return corpus


def load_corpus_texts(corpus_uri: str, storage: ObjectStore) -> list[dict]:
    """The corpus snapshot with each row's text attached, cut to what a model ever reads of it
    (:data:`~include.matcher.foundations.encoding.MOST_WORDS_READ` words)."""
    from include.matcher.foundations.encoding import MOST_WORDS_READ, window_prefix

    rows = storage.get_jsonl(corpus_uri)
    texts = storage.get_many([row["text_uri"] for row in rows])
    return [
        {**row, "text": window_prefix(json.loads(blob)["text"], MOST_WORDS_READ)}
        for row, blob in zip(rows, texts, strict=True)
    ]


def several_categories(cvs: list[dict], group_of: dict[str, str] | None = None) -> dict[str, list[str]]:
    """CVs whose text (or near-duplicate group) is filed under more than one category: key -> those categories."""
    group_of = group_of or {cv["key"]: cv["text_hash"] for cv in cvs}
    categories: dict[str, set[str]] = {}
    for cv in cvs:
        categories.setdefault(group_of[cv["key"]], set()).add(cv["category"])
    return {
        cv["key"]: sorted(categories[group_of[cv["key"]]]) for cv in cvs if len(categories[group_of[cv["key"]]]) > 1
    }
