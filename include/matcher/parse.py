"""Stage 2, parse: turn this run's manifest into text, cached by content hash.

Each manifest entry ends in exactly one of ``parsed.jsonl`` or ``rejects.jsonl``. Text is cached at
``<work>/texts/<sha256>.json`` so a file seen on an earlier night (under any key) is never parsed
again. The stage then commits the outcomes to the ingestion ledger and writes the corpus snapshot
``<run>/corpus.jsonl``: every parsed CV currently in the raw bucket, the input of the later stages.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from include.matcher.documents import REJECT_REASONS, Rejected, extract_text
from include.matcher.ingest import ledger_uri, read_ledger
from include.matcher.settings import Locations, ParseLimits
from include.matcher.storage import Storage, join_uri
from include.matcher.text import text_fingerprint

log = logging.getLogger(__name__)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_cache_uri(locations: Locations, digest: str) -> str:
    return join_uri(locations.work, "texts", f"{digest}.json")


def parse_one(item: dict, storage: Storage, locations: Locations, limits: ParseLimits) -> dict:
    """Parse (or fetch from cache) one manifest entry; returns its outcome record."""
    data = storage.get_bytes(item["uri"])
    digest = content_hash(data)
    record = {"key": item["key"], "etag": item["etag"], "size": item["size"], "category": item["category"], "content_hash": digest}
    cache_uri = text_cache_uri(locations, digest)
    cached = storage.get_with_etag(cache_uri)
    if cached is not None:
        entry = json.loads(cached[0])
        record["cache"] = "hit"
    else:
        try:
            parsed = extract_text(data, item["key"], limits)
            entry = {"status": "parsed", "text": parsed.text, "kind": parsed.kind, "text_hash": text_fingerprint(parsed.text)}
        except Rejected as rejected:
            entry = {"status": "rejected", "reason": rejected.reason, "detail": rejected.detail}
        storage.put_json(cache_uri, entry)
        record["cache"] = "miss"
    record["status"] = entry["status"]
    if entry["status"] == "parsed":
        record.update(text_uri=cache_uri, text_hash=entry["text_hash"], chars=len(entry["text"]), kind=entry["kind"])
    else:
        record.update(reason=entry["reason"], detail=entry["detail"])
    return record


def parse(manifest_uri: str, run_uri: str, locations: Locations, storage: Storage, limits: ParseLimits | None = None) -> str:
    """Parse the manifest's files, commit them to the ledger and return the corpus snapshot URI."""
    limits = limits or ParseLimits()
    manifest = storage.get_json(manifest_uri)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda item: parse_one(item, storage, locations, limits), manifest["items"]))

    parsed = [o for o in outcomes if o["status"] == "parsed"]
    rejects = [o for o in outcomes if o["status"] == "rejected"]
    assert len(parsed) + len(rejects) == len(manifest["items"])  # every file ends in exactly one place
    parsed_uri = join_uri(run_uri, "parse", "parsed.jsonl")
    rejects_uri = join_uri(run_uri, "parse", "rejects.jsonl")
    storage.put_jsonl(parsed_uri, parsed)
    storage.put_jsonl(rejects_uri, rejects)

    ledger = commit_to_ledger(manifest, outcomes, run_uri, locations, storage)
    corpus = [
        {k: entry[k] for k in ("key", "category", "content_hash", "text_hash", "text_uri", "chars")}
        for key, entry in sorted(ledger["objects"].items())
        if entry["status"] == "parsed"
    ]
    corpus_uri = join_uri(run_uri, "corpus.jsonl")
    storage.put_jsonl(corpus_uri, corpus)

    summary = {
        "manifest": manifest_uri,
        "parsed": len(parsed),
        "rejected": len(rejects),
        "cache_hits": sum(o["cache"] == "hit" for o in outcomes),
        "rejects_by_reason": dict(Counter(o["reason"] for o in rejects)),
        "reject_reasons": {reason: REJECT_REASONS[reason] for reason in {o["reason"] for o in rejects}},
        "parsed_uri": parsed_uri,
        "rejects_uri": rejects_uri,
        "corpus_uri": corpus_uri,
        "corpus_size": len(corpus),
        "corpus_categories": dict(Counter(row["category"] for row in corpus)),
    }
    storage.put_json(join_uri(run_uri, "parse", "summary.json"), summary)
    log.info("parse: %d parsed, %d rejected %s; rejects at %s", len(parsed), len(rejects), summary["rejects_by_reason"], rejects_uri)
    for reject in rejects:
        log.warning("parse: rejected %s: %s (%s)", reject["key"], reject["reason"], reject["detail"][:200])
    log.info("parse: corpus of %d CVs at %s", len(corpus), corpus_uri)
    return corpus_uri


def commit_to_ledger(manifest: dict, outcomes: list[dict], run_uri: str, locations: Locations, storage: Storage) -> dict:
    """Record each outcome (and removals, and the jobs file seen) with a compare-and-swap write."""
    ledger, etag = read_ledger(storage, locations)
    objects = ledger["objects"]
    for outcome in outcomes:
        objects[outcome["key"]] = {**{k: v for k, v in outcome.items() if k != "cache"}, "run": run_uri}
    for key in manifest["removed"]:
        objects.pop(key, None)
    ledger["jobs_file_etag"] = manifest["jobs_file"]["etag"]
    if etag is None:
        storage.put_json(ledger_uri(locations), ledger, if_none_match=True)
    else:
        storage.put_json(ledger_uri(locations), ledger, if_match=etag)
    return ledger


def load_corpus_texts(corpus_uri: str, storage: Storage) -> list[dict]:
    """The corpus snapshot with each row's text attached."""
    rows = storage.get_jsonl(corpus_uri)
    texts = storage.get_many([row["text_uri"] for row in rows])
    return [{**row, "text": json.loads(blob)["text"]} for row, blob in zip(rows, texts)]
