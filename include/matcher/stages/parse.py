"""Stage 2, parse: turn this run's manifest into text, cached by content hash.

Files are parsed in isolated worker processes (:mod:`include.matcher.foundations.isolation`) with a timeout and
a memory cap. Each manifest entry ends in exactly one of ``parsed.jsonl`` or ``rejects.jsonl``. Text is cached at
``<work>/texts/<sha256>.json`` so a file seen on an earlier night (under any key) is never parsed
again. The stage then commits the outcomes to the ingestion ledger and writes the corpus snapshot
``<run>/corpus.jsonl``: every parsed CV currently in the raw bucket, the input of the later stages.

It runs in three steps so Airflow can spread it over workers: :func:`plan_parse_shards` splits the
manifest, :func:`parse_shard` parses one shard (a mapped task each), :func:`collect_parsed` merges
the outcomes and commits them. :func:`parse` chains the three in one process.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from include.matcher.foundations import layout
from include.matcher.foundations.context import RunContext
from include.matcher.foundations.documents import REJECT_REASONS, Rejected, accept_text, parser_of, recorded_parser
from include.matcher.foundations.isolation import Document, IsolatedParser
from include.matcher.foundations.settings import (
    Locations,
    ParseLimits,
    PipelineConfig,
    parse_limits_from_env,
    shard_config_from_env,
)
from include.matcher.foundations.storage import MissingObject, ObjectStore
from include.matcher.foundations.text import text_fingerprint
from include.matcher.stages.corpus import (
    commit_to_ledger,
    corpus_fingerprint,
    several_categories,
    without_cache,
    write_corpus_snapshot,
)

log = logging.getLogger(__name__)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Outcomes that depend on the machine rather than the file are not cached: a retry may succeed.
UNCACHED_REASONS = {"timeout", "memory"}
CHUNK = 64


def _outcome(item: dict, digest: str, entry: dict, cache_uri: str, cache: str) -> dict:
    record = {
        "key": item["key"],
        "etag": item["etag"],
        "size": item["size"],
        "modified": item.get("modified", ""),
        "category": item["category"],
        "content_hash": digest,
        "status": entry["status"],
        "cache": cache,
    }
    if entry.get("parser"):
        record["parser"] = entry["parser"]
    if entry["status"] == "parsed":
        record.update(text_uri=cache_uri, text_hash=entry["text_hash"], chars=len(entry["text"]), kind=entry["kind"])
        if entry.get("extractor"):  # the name only: versions and why a fallback stay with the text
            record["extractor"] = entry["extractor"]
    else:
        record.update(reason=entry["reason"], detail=entry["detail"])
    return record


def _vanished(item: dict) -> dict:
    return {
        **{k: item[k] for k in ("key", "etag", "size", "category")},
        "content_hash": None,
        "status": "rejected",
        "reason": "vanished",
        "detail": f"no object at {item['uri']} any more (deleted since ingest listed it)",
        "cache": "none",
    }


def _cached(entry: dict | None, limits: ParseLimits, filename: str) -> dict | None:
    """A cache entry as today's rules judge it: one made by another extractor than today's
    (``MATCHER_PDF_EXTRACTOR``) or that today's normalising would store differently is re-parsed
    (None); a stored text now over a limit is a reject."""
    if entry is None or recorded_parser(entry, filename) != parser_of(filename, limits):
        return None
    if entry["status"] != "parsed":
        return entry
    try:
        accepted = accept_text(entry["text"], limits)
    except Rejected as rejected:
        return {"status": "rejected", "reason": rejected.reason, "detail": rejected.detail}
    return entry if accepted == entry["text"] else None


def _parse_chunk(
    items: list[dict], pool: IsolatedParser, storage: ObjectStore, locations: Locations, limits: ParseLimits
) -> list[dict]:
    """Fetch a chunk (threads), answer what the cache knows, parse the rest in the isolated pool.

    A file deleted since ingest listed it is an outcome too (``vanished``): the night goes on.
    """

    def fetch(item: dict):
        try:
            data = storage.get_bytes(item["uri"])
        except MissingObject:
            return item, None, None, None
        digest = content_hash(data)
        cached = storage.get_with_etag(layout.text_cache(locations.work, digest))
        return item, data, digest, _cached(json.loads(cached[0]) if cached else None, limits, item["key"])

    with ThreadPoolExecutor(max_workers=8) as threads:
        fetched = list(threads.map(fetch, items))
    outcomes = [_vanished(item) for item, data, _, _ in fetched if data is None]
    fetched = [row for row in fetched if row[1] is not None]
    outcomes += [
        _outcome(item, digest, entry, layout.text_cache(locations.work, digest), "hit")
        for item, _, digest, entry in fetched
        if entry
    ]
    misses = {item["key"]: (item, digest) for item, _, digest, entry in fetched if entry is None}
    jobs = [Document(item["key"], data, item["key"]) for item, data, _, entry in fetched if entry is None]
    for key, result in pool.map(jobs):
        item, digest = misses[key]
        if isinstance(result, Rejected):
            entry = {"status": "rejected", "reason": result.reason, "detail": result.detail}
        else:
            entry = {
                "status": "parsed",
                "text": result.text,
                "kind": result.kind,
                "text_hash": text_fingerprint(result.text),
                "extractor": result.extractor,
                "extractor_version": result.version,
            }
            if result.fallback:
                entry["fallback"] = result.fallback
        if parser := parser_of(item["key"], limits):
            entry["parser"] = parser
        cache_uri = layout.text_cache(locations.work, digest)
        if entry.get("reason") not in UNCACHED_REASONS:
            storage.put_json(cache_uri, entry)
        outcomes.append(_outcome(item, digest, entry, cache_uri, "miss"))
    return outcomes


def plan_parse_shards(manifest_uri: str, run_uri: str, storage: ObjectStore, shard_size: int) -> list[str]:
    """Split the manifest's files into shards of ``shard_size``; return the shard URIs (at least one).

    Each shard is ``<run>/parse/shards/<i>-of-<n>/items.json``. A night with nothing to parse still
    gets one empty shard, so the downstream merge runs (a removed file or a new jobs file is work too).
    """
    items = storage.get_json(manifest_uri)["items"]
    count = max(1, -(-len(items) // shard_size))
    uris = []
    for index in range(count):
        chunk = items[index * shard_size : (index + 1) * shard_size]
        uri = layout.Run(run_uri).parse_shard(index, count).items
        first = index * shard_size
        name = (
            f"shard {index + 1}/{count}: files {first + 1}-{first + len(chunk)}"
            if chunk
            else f"shard {index + 1}/{count}: empty"
        )
        storage.put_json(uri, {"index": index, "count": count, "name": name, "items": chunk})
        uris.append(uri)
    return uris


def shard_name(shard_uri: str, storage: ObjectStore) -> str:
    """The readable name of a shard (what the Airflow UI shows for its mapped task)."""
    return storage.get_json(shard_uri)["name"]


def plan_shards(manifest_uri: str, context: RunContext) -> list[str]:
    """Task ``parse.plan_shards``: the manifest cut into shards of ``MATCHER_PARSE_SHARD_SIZE`` files."""
    return plan_parse_shards(manifest_uri, context.run_uri, context.storage, context.config.shards.parse_files)


def parse_shard(shard_uri: str, context: RunContext, pool: IsolatedParser | None = None) -> str:
    """Task ``parse.parse_shard``: parse one shard's files; write and return ``<shard>/outcomes.jsonl``
    (one outcome per file). ``pool``: a parser pool to share (one per process: :func:`parse`)."""
    locations, storage, limits = context.locations, context.storage, context.config.limits
    items = storage.get_json(shard_uri)["items"]
    outcomes: list[dict] = []
    own_pool = pool is None  # workers start lazily: an all-cached shard starts none
    pool = pool or IsolatedParser(limits=limits)
    try:
        for start in range(0, len(items), CHUNK):
            outcomes.extend(_parse_chunk(items[start : start + CHUNK], pool, storage, locations, limits))
    finally:
        if own_pool:
            pool.close()
    folder = layout.ParseShard.of(shard_uri)
    outcomes_uri = folder.outcomes
    # Whether the cache answered is this attempt's business (stats only): a retry writes the same outcomes.
    storage.put_jsonl(outcomes_uri, sorted((without_cache(o) for o in outcomes), key=lambda outcome: outcome["key"]))
    storage.put_json(folder.stats, {"files": len(outcomes), "cache_hits": sum(o["cache"] == "hit" for o in outcomes)})
    log.info(
        "parse: %s: %d files, %d cache hits",
        shard_uri.rsplit("/", 2)[-2],
        len(outcomes),
        sum(o["cache"] == "hit" for o in outcomes),
    )
    return outcomes_uri


def collect_parsed(
    manifest_uri: str, outcome_uris: list[str], run_uri: str, locations: Locations, storage: ObjectStore
) -> str:
    """Merge the shards' outcomes, commit them to the ledger and return the corpus snapshot URI."""
    manifest = storage.get_json(manifest_uri)
    outcomes = sorted((o for uri in outcome_uris for o in storage.get_jsonl(uri)), key=lambda outcome: outcome["key"])
    expected = sorted(item["key"] for item in manifest["items"])
    if [o["key"] for o in outcomes] != expected:  # every file ends in exactly one place, or the run stops
        missing = set(expected) - {o["key"] for o in outcomes}
        raise RuntimeError(
            f"parse shards do not cover the manifest: {len(missing)} files missing, {len(outcomes)} outcomes for "
            f"{len(expected)} files"
        )

    parsed = [o for o in outcomes if o["status"] == "parsed"]
    rejects = [o for o in outcomes if o["status"] == "rejected"]
    run = layout.Run(run_uri)
    parsed_uri, rejects_uri = run.parsed, run.rejects
    storage.put_jsonl(parsed_uri, parsed)
    storage.put_jsonl(rejects_uri, rejects)

    ledger = commit_to_ledger(manifest, outcomes, run_uri, locations, storage)
    corpus_uri = run.corpus
    corpus = write_corpus_snapshot(ledger, corpus_uri, storage)

    summary = {
        "manifest": manifest_uri,
        "shards": len(outcome_uris),
        "parsed": len(parsed),
        "rejected": len(rejects),
        "cache_hits": sum(storage.get_json(layout.ParseShard.of(uri).stats)["cache_hits"] for uri in outcome_uris),
        "rejects_by_reason": dict(Counter(o["reason"] for o in rejects)),
        "parsed_by_extractor": dict(Counter(o.get("extractor", "unrecorded") for o in parsed)),
        "reject_reasons": {reason: REJECT_REASONS[reason] for reason in {o["reason"] for o in rejects}},
        "parsed_uri": parsed_uri,
        "rejects_uri": rejects_uri,
        "corpus_uri": corpus_uri,
        "corpus_size": len(corpus),
        "corpus_fingerprint": corpus_fingerprint(corpus, manifest["jobs_file"]["etag"]),
        "corpus_categories": dict(Counter(row["category"] for row in corpus)),
        "same_text_in_several_categories": several_categories(corpus),
    }
    storage.put_json(run.parse_summary, summary)
    log.info(
        "parse: %d parsed, %d rejected %s; rejects at %r",
        len(parsed),
        len(rejects),
        summary["rejects_by_reason"],
        rejects_uri,
    )
    for reject in rejects:
        log.warning("parse: rejected %r: %s (%r)", reject["key"], reject["reason"], reject["detail"][:200])
    log.info("parse: corpus of %d CVs at %r", len(corpus), corpus_uri)
    if summary["same_text_in_several_categories"]:
        log.warning(
            "parse: %d CVs have the same text as a CV filed under another category (see summary.json)",
            len(summary["same_text_in_several_categories"]),
        )
    return corpus_uri


def collect(manifest_uri: str, outcome_uris: list[str], context: RunContext) -> str:
    """Task ``parse.collect``: merge the shards' outcomes, commit the ledger, write the corpus snapshot."""
    return collect_parsed(manifest_uri, outcome_uris, context.run_uri, context.locations, context.storage)


def parse(
    manifest_uri: str,
    run_uri: str,
    locations: Locations,
    storage: ObjectStore,
    limits: ParseLimits | None = None,
    shard_size: int | None = None,
) -> str:
    """The whole stage in one process (CLI, tests): plan shards, parse each, merge; the corpus URI.

    The DAG runs the same three steps as separate tasks, the middle one mapped over the shards.
    """
    limits = limits or parse_limits_from_env()
    context = RunContext(run_uri, PipelineConfig(locations=locations, limits=limits), storage)
    shard_uris = plan_parse_shards(manifest_uri, run_uri, storage, shard_size or shard_config_from_env().parse_files)
    with IsolatedParser(limits=limits) as pool:
        outcome_uris = [parse_shard(uri, context, pool) for uri in shard_uris]
    return collect(manifest_uri, outcome_uris, context)
