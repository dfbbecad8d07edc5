"""Stage 7, refresh embeddings: re-embed every candidate and job offer with the promoted model.

Output under the embeddings URI::

    <version>/cvs.parquet, <version>/jobs.parquet   columns: id, source, category, vector, model_version
    <version>/_manifest.json                        written after all parts
    current.json                                    pointer, flipped (compare-and-swap) last

Readers follow ``current.json``, so they never see a half-written version or two models mixed.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timezone

from include.matcher.documents import SUPPORTED_EXTENSIONS, Rejected, extract_text
from include.matcher.jobs import load_job_descriptions
from include.matcher.registry import swap_pointer
from include.matcher.settings import Locations
from include.matcher.storage import S3Uri, Storage, join_uri

log = logging.getLogger(__name__)


def current_uri(embeddings_uri: str) -> str:
    return join_uri(embeddings_uri, "current.json")


def job_offer_records(locations: Locations, storage: Storage) -> tuple[list[dict], list[dict]]:
    """Job descriptions from the jobs file plus parsed job-offer documents; and offer rejects."""
    jobs = load_job_descriptions(locations.jobs_file, storage)
    records = [
        {"id": f"{category}#{index}", "source": "job_description", "category": category, "text": text}
        for category, texts in sorted(jobs.items())
        for index, text in enumerate(texts)
    ]
    rejects = []
    bucket = S3Uri.parse(locations.job_offers).bucket
    for info in storage.list(locations.job_offers):
        if not info.key.lower().endswith(SUPPORTED_EXTENSIONS):
            rejects.append({"key": info.key, "reason": "unsupported_type"})
            continue
        try:
            parsed = extract_text(storage.get_bytes(f"s3://{bucket}/{info.key}"), info.key)
        except Rejected as rejected:
            rejects.append({"key": info.key, "reason": rejected.reason, "detail": rejected.detail})
            continue
        records.append({"id": info.key, "source": "job_offer", "category": None, "text": parsed.text})
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
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dimension)
            if len(records)
            else pa.array([], pa.list_(pa.float32())),
            "model_version": pa.array([version] * len(records), pa.string()),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def refresh_embeddings(version_uri: str, corpus_uri: str, locations: Locations, storage: Storage, batch_size: int = 32) -> str:
    """Embed the corpus and the job offers with the model at ``version_uri``; flip ``current.json``."""
    from include.matcher.models import load_model
    from include.matcher.parse import load_corpus_texts

    entry = storage.get_json(join_uri(version_uri, "entry.json"))
    version = entry["version"]
    model = load_model(version_uri, storage)
    target = join_uri(locations.embeddings, version)

    cvs = [{"id": cv["key"], "source": "cv", "category": cv["category"], "text": cv["text"]} for cv in load_corpus_texts(corpus_uri, storage)]
    offers, offer_rejects = job_offer_records(locations, storage)
    parts = {}
    for name, records in (("cvs", cvs), ("jobs", offers)):
        vectors = model.encode([r["text"] for r in records], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        part_uri = join_uri(target, f"{name}.parquet")
        storage.put_bytes(part_uri, to_parquet(records, vectors, version))
        parts[name] = {"uri": part_uri, "rows": len(records)}

    manifest = {
        "version": version,
        "model": version_uri,
        "corpus": corpus_uri,
        "parts": parts,
        "dimension": model.get_sentence_embedding_dimension(),
        "job_offer_rejects": offer_rejects,
        "written_at": datetime.now(timezone.utc).isoformat(),
    }
    storage.put_json(join_uri(target, "_manifest.json"), manifest)
    pointer = {"version": version, "uri": target, "manifest": join_uri(target, "_manifest.json"), "updated_at": manifest["written_at"]}
    found = storage.get_with_etag(current_uri(locations.embeddings))
    swap_pointer(storage, current_uri(locations.embeddings), pointer, json.loads(found[0]) if found else None)
    log.info("refresh_embeddings: %d CVs, %d job texts -> %s", parts["cvs"]["rows"], parts["jobs"]["rows"], target)
    return target


def read_current(storage: Storage, embeddings_uri: str) -> dict | None:
    found = storage.get_with_etag(current_uri(embeddings_uri))
    return None if found is None else json.loads(found[0])
