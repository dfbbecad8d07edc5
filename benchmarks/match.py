"""Top-k matching over a stored snapshot: load time, memory, latency and recall per corpus size.

    .venv/bin/python benchmarks/match.py [--sizes 10000,100000,1000000] [--queries 200]

For each size, in one run: synthetic CV vectors shaped like real ones (the base model's embeddings
of the generated demo CVs, plus Gaussian noise, renormalised) are written as a snapshot to a
throwaway SeaweedFS exactly as the refresh writes one (parquet parts, manifest, ``current.json``);
with the ANN index the refresh builds beyond ``EXACT_SEARCH_MAX_ROWS`` (``index_build_s``); then
``SnapshotReader`` loads it (``load_s``, resident memory ``rss_gb``) and answers single queries
(``p50_ms``, ``p99_ms``) and a batch (queries/s), with recall@10 against numpy's exact top 10.
Anchors in the same run: bare numpy exact search and FAISS ``IndexFlatIP``.
Targets (issue 12): p50 <= 5 ms at 100k and <= 20 ms at 1M, recall@10 >= 0.95, load <= 30 s and
memory <= 2 GB at 1M. Ends with one JSON line of the figures per size.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, commit, record, throwaway_s3  # noqa: E402

CHUNK = 50_000  # vectors per parquet part, as embed shards would write them


def real_like_vectors(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` unit vectors around real CV embeddings (demo CVs through the base model, plus noise)."""
    import random

    from include.devtools.demo_data import PROFILES, cv_text
    from include.matcher.foundations.models import load_model

    texts = [cv_text(category, random.Random(seed)) for seed in range(40) for category in PROFILES]
    seeds = load_model("all-MiniLM-L6-v2", device="cpu").encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    vectors = seeds[rng.integers(0, len(seeds), count)] + rng.normal(scale=0.04, size=(count, seeds.shape[1]))
    vectors = vectors.astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def publish_synthetic(storage, locations, vectors: np.ndarray, categories: list[str]) -> float:
    """Write ``vectors`` as the refresh would: parts, jobs, index, manifest, then the pointer;
    the seconds the index took to build (0 below the exact-search limit)."""
    from include.matcher.foundations import layout
    from include.matcher.stages.embeddings import build_cv_index, to_parquet

    snapshot = layout.Snapshot.of(locations.embeddings, "v-bench", locations.run_uri("bench") + "/corpus.jsonl")
    count = -(-len(vectors) // CHUNK)
    parts = []
    for index in range(count):
        rows = range(index * CHUNK, min(len(vectors), (index + 1) * CHUNK))
        records = [{"id": f"cv-{i}", "source": "cv", "category": categories[i], "text_hash": None} for i in rows]
        uri = snapshot.cv_part(index, count)
        storage.put_bytes(uri, to_parquet(records, vectors[rows.start : rows.stop], "v-bench"))
        parts.append({"uri": uri, "rows": len(records)})
    jobs = [{"id": "job#0", "source": "job_description", "category": "X"}]
    storage.put_bytes(snapshot.jobs, to_parquet(jobs, vectors[:1], "v-bench"))
    for part in parts:  # what embed_shard writes beside each part
        storage.put_json(layout.Snapshot.part_stats(part["uri"]), part)
    cv_index = build_cv_index(snapshot, parts, storage)
    manifest = {
        "version": "v-bench",
        "parts": {"cvs": parts, "jobs": [{"uri": snapshot.jobs, "rows": 1}]},
        "cv_index": cv_index,
    }
    storage.put_json(snapshot.manifest, manifest)
    pointer = {"version": "v-bench", "uri": snapshot.uri, "manifest": snapshot.manifest}
    storage.put_json(layout.current_embeddings(locations.embeddings), pointer)
    return 0.0 if cv_index is None else cv_index["build_seconds"]


def manifest_kind(storage, locations) -> str:
    from include.matcher.foundations.pointers import read_current

    return storage.get_json(read_current(storage, locations.embeddings)["manifest"])["cv_index"]["kind"]


def rss_gb() -> float:
    with open("/proc/self/status") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kilobytes / 2**20


def latencies_ms(search, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> int:
    parser = benchmark_parser(__doc__, resumes=False)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    import faiss

    from include.matcher.serving.search import SnapshotReader

    figures, lines = {}, []
    with tempfile.TemporaryDirectory() as folder, throwaway_s3(Path(folder)) as (_, fresh_locations):
        for size in sizes:
            storage, locations = fresh_locations()
            vectors = real_like_vectors(size, rng)
            categories = [f"C{i % 24}" for i in range(size)]
            queries = real_like_vectors(args.queries, rng)
            index_build_s = publish_synthetic(storage, locations, vectors, categories)
            rss_before = rss_gb()
            started = time.perf_counter()
            index = SnapshotReader(storage, locations.embeddings).index()
            load_s = time.perf_counter() - started
            memory = rss_gb() - rss_before
            matrix = vectors

            def exact(query, matrix=matrix):
                return np.argpartition(-(matrix @ query), 10)[:10]

            p50, p99 = latencies_ms(lambda q, index=index: index.top(index.cvs, q, 10), queries)
            bare50, _ = latencies_ms(exact, queries)
            truth = [set(exact(q).tolist()) for q in queries]
            found = [{int(hit.id[3:]) for hit in index.top(index.cvs, q, 10)} for q in queries]
            recall = float(np.mean([len(t & f) / 10 for t, f in zip(truth, found, strict=True)]))
            started = time.perf_counter()
            if index.cvs.ann is None:
                np.argpartition(-(queries @ matrix.T), 10, axis=1)
            else:
                index.cvs.ann.search_many(queries, 10)
            batch_qps = len(queries) / (time.perf_counter() - started)
            flat = faiss.IndexFlatIP(matrix.shape[1])
            flat.add(matrix)
            flat50, _ = latencies_ms(lambda q, flat=flat: flat.search(q[None, :], 10), queries)
            del flat
            figures[str(size)] = {
                "search": "exact" if index.cvs.ann is None else manifest_kind(storage, locations),
                "index_build_s": round(index_build_s, 1),
                "p50_ms": round(p50, 2),
                "p99_ms": round(p99, 2),
                "recall_at_10": round(recall, 3),
                "load_s": round(load_s, 2),
                "rss_gb": round(memory, 3),
                "batch_qps": round(batch_qps, 1),
                "numpy_exact_p50_ms": round(bare50, 2),
                "faiss_flat_p50_ms": None if flat50 is None else round(flat50, 2),
            }
            print(size, figures[str(size)], file=sys.stderr, flush=True)
            del index, matrix, vectors
            storage.delete_prefix(locations.embeddings)

    lines = [
        f"### match: {datetime.date.today()} commit {commit()}, search over the stored snapshot as readers "
        f"do it, {args.queries} queries, {os.cpu_count()} cores",
        "",
        "| CVs | search | index build s | load s | memory GB | p50 ms | p99 ms | batch queries/s | recall@10 "
        "| bare numpy p50 ms | FAISS flat p50 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, f in figures.items():
        lines.append(
            f"| {int(size):,} | {f['search']} | {f['index_build_s']} | {f['load_s']} | {f['rss_gb']} | {f['p50_ms']} "
            f"| {f['p99_ms']} | {f['batch_qps']} | {f['recall_at_10']} | {f['numpy_exact_p50_ms']} "
            f"| {f['faiss_flat_p50_ms']} |"
        )
    lines.append(
        f"\nPeak resident memory of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB."
    )
    record(lines, args.results)
    print(json.dumps({"benchmark": "match", "sizes": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
