"""Stage 7, refresh embeddings: embed every candidate and job offer with the production model.

Output under the embeddings URI, one snapshot folder per (model version, corpus snapshot, inputs)::

    <version>/<snapshot>/cvs/part-<i>-of-<n>.parquet   columns: id, source, category, text_hash, vector, model_version
    <version>/<snapshot>/jobs.parquet                  the job descriptions and job-offer documents
    <version>/<snapshot>/cvs.index.faiss (+ .parquet)  ANN index over the CV vectors, large corpora only
    <version>/<snapshot>/_manifest.json                written after all parts
    current.json                                       pointer, flipped (compare-and-swap) last

Readers follow ``current.json``, so they never see a half-written snapshot or two models mixed: a
publish writes a new folder (named by the corpus and a fingerprint of every input) and never the
one the pointer names. Only the corpus as it is now (the ledger's) is published: re-running an
old night's refresh would otherwise serve CVs deleted since.

Three steps, so Airflow can spread the CVs over workers: :func:`plan_refresh` cuts the corpus into
shards, :func:`embed_part` embeds one (a mapped task each), :func:`publish_embeddings` embeds the
job texts, writes the manifest and flips the pointer. A night's cost follows what changed: when the
model is the one already embedded, a CV whose text is unchanged keeps its vector, and a night where
nothing changed at all plans no shard and publishes nothing. :func:`refresh_embeddings` chains the
three in one process (CLI, rollback, tests).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from include.matcher.foundations import layout
from include.matcher.foundations.context import RunContext
from include.matcher.foundations.documents import REJECT_REASONS, SUPPORTED_EXTENSIONS, Rejected
from include.matcher.foundations.encoding import cv_pooling
from include.matcher.foundations.errors import Conflict
from include.matcher.foundations.jobs import load_job_descriptions
from include.matcher.foundations.pointers import promoted_entry, read_current, read_production, swap_pointer
from include.matcher.foundations.settings import Locations, ParseLimits, parse_limits_from_env, shard_config_from_env
from include.matcher.foundations.storage import ObjectStore
from include.matcher.stages.corpus import is_current_corpus

log = logging.getLogger(__name__)

# Sentence-transformers sorts each encode() call's texts by length before batching, so a batch
# holds texts of similar length and pads little. Its default of 32 measured as fast as 64 or 16 on
# 2 cores (CVs fill the reading window; threads already split each batch's matmuls).
BATCH_SIZE = 32


class StaleCorpus(Conflict, RuntimeError):
    """A corpus snapshot that is no longer the corpus as it is now: publishing it would serve CVs removed since."""


def encoder_id() -> str:
    """How CV vectors are made besides the model: the CV pooling, the runtime (torch in its precision,
    or ONNX) and the redaction's rules (a vector read another way is not reused)."""
    from include.matcher.foundations.models import PRECISION_IDS, encode_precision
    from include.matcher.foundations.onnx_backend import embed_backend
    from include.matcher.foundations.redaction import RULES_VERSION, redacting

    reading = f"redacted-{RULES_VERSION}" if redacting() else "whole"
    backend = embed_backend()
    runtime = f"torch-{PRECISION_IDS[encode_precision()]}" if backend == "torch" else backend
    return f"{cv_pooling()}/{runtime}/{reading}"


def job_offer_records(
    locations: Locations, storage: ObjectStore, limits: ParseLimits | None = None
) -> tuple[list[dict], list[dict]]:
    """Job descriptions from the jobs file plus parsed job-offer documents; and offer rejects.

    Offer documents are as untrusted as CVs: they are parsed in the same isolated pool, with the
    same time and memory limits, and what cannot be parsed is a reject with its reason.
    """
    from include.matcher.foundations.isolation import Document, IsolatedParser

    limits = limits or parse_limits_from_env()
    jobs = load_job_descriptions(locations.jobs_file, storage)
    records = [
        {"id": f"{category}#{index}", "source": "job_description", "category": category, "text": text}
        for category, texts in sorted(jobs.items())
        for index, text in enumerate(texts)
    ]
    rejects, offers = [], []
    for info in storage.list(locations.job_offers):
        if info.key.lower().endswith(SUPPORTED_EXTENSIONS):
            offers.append(info)
        else:
            rejects.append(
                {"key": info.key, "reason": "unsupported_type", "detail": REJECT_REASONS["unsupported_type"]}
            )
    if offers:
        blobs = storage.get_many([info.uri for info in offers])
        with IsolatedParser(limits=limits) as pool:
            parsed = dict(
                pool.map(Document(info.key, data, info.key) for info, data in zip(offers, blobs, strict=True))
            )
        for key in (info.key for info in offers):
            result = parsed[key]
            if isinstance(result, Rejected):
                rejects.append({"key": key, "reason": result.reason, "detail": result.detail})
            else:
                records.append({"id": key, "source": "job_offer", "category": None, "text": result.text})
    for reject in rejects:
        log.warning("refresh_embeddings: job offer %r rejected: %s", reject["key"], reject["reason"])
    return records, rejects


def to_parquet(records: list[dict], vectors, version: str) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dimension = int(vectors.shape[1]) if len(records) else 0
    table = pa.table(
        {
            "id": pa.array([r["id"] for r in records], pa.string()),
            "source": pa.array([r["source"] for r in records], pa.string()),
            "category": pa.array([r.get("category") for r in records], pa.string()),
            "text_hash": pa.array([r.get("text_hash") for r in records], pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dimension)
            if len(records)
            else pa.array([], pa.list_(pa.float32())),
            "model_version": pa.array([version] * len(records), pa.string()),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def read_parquet(uri: str, storage: ObjectStore, columns: list[str] | None = None):
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(storage.get_bytes(uri)), columns=columns)


def inputs_fingerprint(corpus_rows: list[dict], locations: Locations, storage: ObjectStore) -> str:
    """What the embeddings depend on besides the model: every CV text and the job texts' sources."""
    digest = hashlib.sha256()
    for row in sorted(corpus_rows, key=lambda row: row["key"]):
        digest.update(f"{row['key']}\0{row['text_hash']}\n".encode())
    jobs = storage.head(locations.jobs_file)
    digest.update(f"jobs\0{jobs.etag if jobs else '-'}\n".encode())
    digest.update(f"encoder\0{encoder_id()}\n".encode())  # vectors made another way are not these
    for info in storage.list(locations.job_offers):
        digest.update(f"offer\0{info.key}\0{info.etag}\n".encode())
    return digest.hexdigest()


def plan_refresh(
    version_uri: str, corpus_uri: str, locations: Locations, storage: ObjectStore, shard_size: int | None = None
) -> list[str]:
    """Cut the corpus into shards of CVs to embed with the model at ``version_uri``; their URIs.

    Returns no shard when ``current.json`` already holds this model's embeddings of the same inputs:
    nothing to do, and nothing will be published (so no asset event claims a change).
    """
    shard_size = shard_size or shard_config_from_env().embed_texts
    version = promoted_entry(storage, version_uri).version
    rows = storage.get_jsonl(corpus_uri)
    if not is_current_corpus(rows, storage, locations):
        log.warning(
            "refresh_embeddings: %s is not the corpus as it is now (the ledger has moved on since: CVs were added, "
            "changed or removed); nothing is published from it, the next night publishes the current corpus",
            corpus_uri,
        )
        return []
    fingerprint = inputs_fingerprint(rows, locations, storage)
    current = read_current(storage, locations.embeddings)
    previous = storage.get_json(current["manifest"]) if current else None
    if previous and previous["version"] == version and previous.get("inputs_fingerprint") == fingerprint:
        log.info(
            "refresh_embeddings: %s already holds model %s's embeddings of these inputs; nothing to do",
            current["uri"],
            version,
        )
        return []
    # Vectors can be reused only from embeddings made by this very model, encoding CVs the same way.
    same_encoder = (
        previous and previous["version"] == version and previous.get("encoder", "truncate/torch") == encoder_id()
    )
    reuse_from = current["manifest"] if same_encoder else None
    snapshot = layout.Snapshot.of(locations.embeddings, version, corpus_uri, fingerprint)
    if current and snapshot.uri == current["uri"]:  # the live folder is never written into
        snapshot = layout.Snapshot(f"{snapshot.uri}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}")
    target = snapshot.uri
    count = max(1, -(-len(rows) // shard_size))
    uris = []
    for index in range(count):
        chunk = rows[index * shard_size : (index + 1) * shard_size]
        first = index * shard_size
        uri = snapshot.shard(index, count)
        storage.put_json(
            uri,
            {
                "name": f"shard {index + 1}/{count}: CVs {first + 1}-{first + len(chunk)}"
                if chunk
                else f"shard {index + 1}/{count}: empty",
                "version_uri": version_uri,
                "version": version,
                "corpus_uri": corpus_uri,
                "part_uri": snapshot.cv_part(index, count),
                "reuse_from": reuse_from,
                "rows": [{k: row[k] for k in ("key", "category", "text_hash", "text_uri")} for row in chunk],
            },
        )
        uris.append(uri)
    log.info(
        "refresh_embeddings: %d CVs in %d shards -> %s (reusing vectors from %s)",
        len(rows),
        count,
        target,
        reuse_from or "nothing",
    )
    return uris


def reusable_vectors(manifest_uri: str | None, wanted: dict[str, str], storage: ObjectStore) -> dict[str, list[float]]:
    """Vectors from an earlier snapshot of the same model for the ids whose text hash is unchanged."""
    if not manifest_uri or not wanted:
        return {}
    found = {}
    for part in storage.get_json(manifest_uri)["parts"]["cvs"]:
        table = read_parquet(part["uri"], storage)
        if "text_hash" not in table.column_names:
            continue
        for row_id, text_hash, vector in zip(
            table.column("id").to_pylist(),
            table.column("text_hash").to_pylist(),
            table.column("vector").to_pylist(),
            strict=False,
        ):
            if wanted.get(row_id) == text_hash:
                found[row_id] = vector
    return found


def embed_part(shard_uri: str, storage: ObjectStore, batch_size: int = BATCH_SIZE) -> str:
    """Embed one shard's CVs (reusing unchanged ones' vectors); write its parquet part; the part's URI."""
    import numpy as np

    started = time.perf_counter()
    shard = storage.get_json(shard_uri)
    rows = shard["rows"]
    reused = reusable_vectors(shard["reuse_from"], {row["key"]: row["text_hash"] for row in rows}, storage)
    todo = [row for row in rows if row["key"] not in reused]
    vectors: dict[str, np.ndarray] = {key: np.asarray(vector, dtype=np.float32) for key, vector in reused.items()}
    if todo:
        from include.matcher.foundations.encoding import encode_cvs
        from include.matcher.foundations.onnx_backend import load_encoder

        # The texts download while the model loads: both are waits on S3 before encoding can start.
        with ThreadPoolExecutor(max_workers=1) as background:
            blobs = background.submit(storage.get_many, [row["text_uri"] for row in todo])
            model = load_encoder(shard["version_uri"], storage)
            texts = [json.loads(blob)["text"] for blob in blobs.result()]
        encoding_started = time.perf_counter()
        encoded = encode_cvs(model, texts, batch_size=batch_size)  # the pipeline's one CV encoding (MATCHER_CV_POOLING)
        encode_seconds = time.perf_counter() - encoding_started
        vectors.update(zip((row["key"] for row in todo), encoded, strict=True))
    else:
        encode_seconds = 0.0
    records = [
        {"id": row["key"], "source": "cv", "category": row["category"], "text_hash": row["text_hash"]} for row in rows
    ]
    matrix = np.stack([vectors[row["key"]] for row in rows]) if rows else np.zeros((0, 0), dtype=np.float32)
    storage.put_bytes(shard["part_uri"], to_parquet(records, matrix, shard["version"]))
    stats = {
        "uri": shard["part_uri"],
        "rows": len(rows),
        "embedded": len(todo),
        "reused": len(reused),
        "seconds": round(time.perf_counter() - started, 2),
        "encode_seconds": round(encode_seconds, 2),
    }
    storage.put_json(layout.Snapshot.part_stats(shard["part_uri"]), stats)
    log.info(
        "refresh_embeddings: %s: %d embedded, %d reused in %.1f s (%.1f s encoding)",
        shard["name"],
        len(todo),
        len(reused),
        stats["seconds"],
        encode_seconds,
    )
    return shard["part_uri"]


def publish_embeddings(
    version_uri: str,
    corpus_uri: str,
    part_uris: list[str],
    locations: Locations,
    storage: ObjectStore,
    batch_size: int = BATCH_SIZE,
) -> str:
    """Embed the job texts, write the snapshot's manifest and flip ``current.json`` to it."""
    from include.matcher.foundations.onnx_backend import load_encoder

    version = promoted_entry(storage, version_uri).version
    snapshot = layout.Snapshot.of_part(sorted(part_uris)[0])
    target = snapshot.uri
    rows = storage.get_jsonl(corpus_uri)
    cv_parts = [storage.get_json(layout.Snapshot.part_stats(uri)) for uri in sorted(part_uris)]
    if sum(part["rows"] for part in cv_parts) != len(rows):
        # An erasure while the shards were embedded: it rewrote the corpus (and any part it found);
        # a part written after it can still hold the CV. The parts are brought to the corpus as it is.
        cv_parts = parts_of_corpus(cv_parts, {row["key"] for row in rows}, storage)
    if sum(part["rows"] for part in cv_parts) != len(rows):
        raise RuntimeError(f"embedding parts hold {sum(part['rows'] for part in cv_parts)} CVs, the corpus {len(rows)}")

    offers, offer_rejects = job_offer_records(locations, storage)
    model = load_encoder(version_uri, storage)
    vectors = model.encode(
        [r["text"] for r in offers],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    jobs_uri = snapshot.jobs
    storage.put_bytes(jobs_uri, to_parquet(offers, vectors, version))
    cv_index = build_cv_index(snapshot, cv_parts, storage)

    manifest = {
        "version": version,
        "model": version_uri,
        "corpus": corpus_uri,
        "inputs_fingerprint": inputs_fingerprint(rows, locations, storage),
        "parts": {"cvs": cv_parts, "jobs": [{"uri": jobs_uri, "rows": len(offers)}]},
        "counts": {
            "cvs": len(rows),
            "cvs_embedded": sum(part["embedded"] for part in cv_parts),
            "cvs_reused": sum(part["reused"] for part in cv_parts),
            "job_texts": len(offers),
        },
        "dimension": int(vectors.shape[1]) if len(offers) else None,
        "cv_pooling": cv_pooling(),
        "encoder": encoder_id(),
        "job_offer_rejects": offer_rejects,
        "cv_index": cv_index,
        "written_at": datetime.now(UTC).isoformat(),
    }
    storage.put_json(snapshot.manifest, manifest)
    # plan_refresh checked the corpus; the ledger may have moved since (an erasure, say): checked again
    # last, just before the flip, so search keeps the snapshot it has.
    if not is_current_corpus(rows, storage, locations):
        raise StaleCorpus(
            f"{corpus_uri} is no longer the corpus as it is now (the ledger moved on while it was embedded): not "
            "published; the next night publishes the current corpus"
        )
    pointer = {"version": version, "uri": target, "manifest": snapshot.manifest, "updated_at": manifest["written_at"]}
    found = storage.get_with_etag(layout.current_embeddings(locations.embeddings))
    swap_pointer(
        storage, layout.current_embeddings(locations.embeddings), pointer, json.loads(found[0]) if found else None
    )
    log.info("refresh_embeddings: %s -> %s", manifest["counts"], target)
    return target


def parts_of_corpus(cv_parts: list[dict], keys: set[str], storage: ObjectStore) -> list[dict]:
    """The parts without any CV the corpus no longer holds (erased while they were embedded), each
    rewritten where it held one; their stats as they are now."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    kept = []
    for part in cv_parts:
        table = read_parquet(part["uri"], storage)
        wanted = pc.is_in(table.column("id"), value_set=pa.array(sorted(keys), pa.string()))
        if pc.all(wanted).as_py() is False:
            buffer = io.BytesIO()
            pq.write_table(table.filter(wanted), buffer)
            storage.put_bytes(part["uri"], buffer.getvalue())
            log.info("refresh_embeddings: %s lost the CVs erased while it was embedded", part["uri"])
        part = {**part, "rows": pc.sum(wanted).as_py() or 0}
        storage.put_json(layout.Snapshot.part_stats(part["uri"]), part)
        kept.append(part)
    return kept


def build_cv_index(snapshot: layout.Snapshot, cv_parts: list[dict], storage: ObjectStore) -> dict | None:
    """Build and store the ANN index over the snapshot's CV vectors when the corpus needs one.

    Runs before the manifest and the pointer are written, so a reader that finds the pointer
    finds the index whole. None (no index: readers search exactly) for a corpus small enough.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from include.matcher.foundations import vector_index

    rows = sum(part["rows"] for part in cv_parts)
    if not vector_index.needs_index(rows):
        return None
    started = time.monotonic()
    table = pa.concat_tables([read_parquet(part["uri"], storage) for part in cv_parts])
    matrix = np.asarray(table.column("vector").combine_chunks().flatten(), dtype=np.float32).reshape(rows, -1)
    storage.put_bytes(snapshot.cv_index, vector_index.build(matrix))
    del matrix
    buffer = io.BytesIO()
    pq.write_table(table.select(["id", "category", "source"]), buffer)
    storage.put_bytes(snapshot.cv_index_rows, buffer.getvalue())
    seconds = round(time.monotonic() - started, 1)
    log.info("refresh_embeddings: %s index over %d CVs built in %.1f s", vector_index.index_kind(rows), rows, seconds)
    return {
        "uri": snapshot.cv_index,
        "rows_uri": snapshot.cv_index_rows,
        "kind": vector_index.index_kind(rows),
        "rows": rows,
        "build_seconds": seconds,
    }


def plan_production_refresh(
    corpus_uri: str, locations: Locations, storage: ObjectStore, shard_size: int | None = None, publish: bool = True
) -> list[str]:
    """:func:`plan_refresh` with the model in production; no shard before the first promotion, nor
    for a run that may not publish (``publish`` False: a trial run on another raw prefix)."""
    if not publish:
        log.info(
            "refresh_embeddings: this run's raw_prefix is not the deployment's: the production embeddings are left "
            "as they are (set publish_from_other_prefix to publish from it)"
        )
        return []
    production = read_production(storage, locations.registry)
    if production is None:
        log.info("refresh_embeddings: no model in production yet: nothing to embed with")
        return []
    return plan_refresh(production.uri, corpus_uri, locations, storage, shard_size)


def publish_shards(shard_uris: list[str], part_uris: list[str], locations: Locations, storage: ObjectStore) -> dict:
    """:func:`publish_embeddings` for the shards :func:`plan_refresh` planned; what was published
    (uri, version, counts: the DAG's asset event)."""
    shard = storage.get_json(sorted(shard_uris)[0])
    target = publish_embeddings(shard["version_uri"], shard["corpus_uri"], list(part_uris), locations, storage)
    manifest = storage.get_json(layout.Snapshot(target).manifest)
    return {"uri": target, "version": manifest["version"], "counts": manifest["counts"]}


def plan_embedding_shards(corpus_uri: str, context: RunContext) -> list[str]:
    """Task ``refresh_embeddings.plan_embedding_shards``: shards of CVs to embed with the production model,
    none when nothing changed or when the run may not publish (:func:`plan_production_refresh`)."""
    return plan_production_refresh(
        corpus_uri,
        context.locations,
        context.storage,
        context.config.shards.embed_texts,
        publish=context.config.publishes_embeddings,
    )


def embed_shard(shard_uri: str, context: RunContext) -> str:
    """Task ``refresh_embeddings.embed_shard``: one shard's CVs embedded into its parquet part (:func:`embed_part`)."""
    return embed_part(shard_uri, context.storage)


def publish(shard_uris: list[str], part_uris: list[str], context: RunContext) -> dict:
    """Task ``refresh_embeddings.publish``: the job texts embedded, the manifest written, ``current.json``
    flipped (:func:`publish_shards`); what was published."""
    return publish_shards(shard_uris, part_uris, context.locations, context.storage)


def refresh_embeddings(
    version_uri: str, corpus_uri: str, locations: Locations, storage: ObjectStore, shard_size: int | None = None
) -> str:
    """The whole stage in one process; the URI of the embeddings ``current.json`` points at."""
    shard_uris = plan_refresh(version_uri, corpus_uri, locations, storage, shard_size)
    if not shard_uris:
        current = read_current(storage, locations.embeddings)
        if current is None:
            raise StaleCorpus(f"{corpus_uri} is not the current corpus and nothing is published yet")
        return current["uri"]
    part_uris = [embed_part(uri, storage) for uri in shard_uris]
    return publish_embeddings(version_uri, corpus_uri, part_uris, locations, storage)
