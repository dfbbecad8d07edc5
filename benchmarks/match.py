"""Top-k matching over a stored snapshot: load time, memory, latency and recall per corpus size.

    .venv/bin/python benchmarks/match.py [--sizes 10000,100000,1000000] [--queries 200]

For each size, in one run: synthetic CV vectors shaped like real ones (the base model's embeddings
of the generated demo CVs, plus Gaussian noise, renormalised) are written as a snapshot to a
throwaway SeaweedFS exactly as the refresh writes one (parquet parts, manifest, ``current.json``);
then ``SnapshotReader`` loads it (``load_s``, resident memory ``rss_gb``) and answers single queries
(``p50_ms``, ``p99_ms``) and a batch (queries/s), with recall@10 against numpy's exact top 10 (the
index searched today is exact: 1.0 by construction; an ANN index would be judged by it). Anchors
in the same run: bare numpy exact search and, where ``faiss-cpu`` is installed, FAISS ``IndexFlatIP``.
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
    from include.matcher.models import load_model

    texts = [cv_text(category, random.Random(seed)) for seed in range(40) for category in PROFILES]
    seeds = load_model("all-MiniLM-L6-v2", device="cpu").encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    vectors = seeds[rng.integers(0, len(seeds), count)] + rng.normal(scale=0.04, size=(count, seeds.shape[1]))
    vectors = vectors.astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def publish_synthetic(storage, locations, vectors: np.ndarray, categories: list[str]) -> None:
    """Write ``vectors`` as the refresh would: parts, jobs, manifest, then the pointer."""
    from include.matcher import layout
    from include.matcher.embeddings import to_parquet

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
    manifest = {"version": "v-bench", "parts": {"cvs": parts, "jobs": [{"uri": snapshot.jobs, "rows": 1}]}}
    storage.put_json(snapshot.manifest, manifest)
    pointer = {"version": "v-bench", "uri": snapshot.uri, "manifest": snapshot.manifest}
    storage.put_json(layout.current_embeddings(locations.embeddings), pointer)


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
    try:
        import faiss
    except ImportError:
        faiss = None

    from include.matcher.search import SnapshotReader

    figures, lines = {}, []
    with tempfile.TemporaryDirectory() as folder, throwaway_s3(Path(folder)) as (_, fresh_locations):
        for size in sizes:
            storage, locations = fresh_locations()
            vectors = real_like_vectors(size, rng)
            categories = [f"C{i % 24}" for i in range(size)]
            queries = real_like_vectors(args.queries, rng)
            publish_synthetic(storage, locations, vectors, categories)
            del vectors
            rss_before = rss_gb()
            started = time.perf_counter()
            index = SnapshotReader(storage, locations.embeddings).index()
            load_s = time.perf_counter() - started
            memory = rss_gb() - rss_before
            matrix = index.cvs.matrix

            def exact(query, matrix=matrix):
                return np.argpartition(-(matrix @ query), 10)[:10]

            p50, p99 = latencies_ms(lambda q, index=index: index.top(index.cvs, q, 10), queries)
            bare50, _ = latencies_ms(exact, queries)
            truth = [set(exact(q).tolist()) for q in queries]
            found = [{int(hit.id[3:]) for hit in index.top(index.cvs, q, 10)} for q in queries]
            recall = float(np.mean([len(t & f) / 10 for t, f in zip(truth, found, strict=True)]))
            started = time.perf_counter()
            np.argpartition(-(queries @ matrix.T), 10, axis=1)
            batch_qps = len(queries) / (time.perf_counter() - started)
            flat50 = None
            if faiss is not None:
                flat = faiss.IndexFlatIP(matrix.shape[1])
                flat.add(matrix)
                flat50, _ = latencies_ms(lambda q, flat=flat: flat.search(q[None, :], 10), queries)
                del flat
            figures[str(size)] = {
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
            del index, matrix
            storage.delete_prefix(locations.embeddings)

    lines = [
        f"### match: {datetime.date.today()} commit {commit()}, exact search over the stored snapshot, "
        f"{args.queries} queries, {os.cpu_count()} cores",
        "",
        "| CVs | load s | memory GB | p50 ms | p99 ms | batch queries/s | recall@10 | bare numpy p50 ms "
        "| FAISS flat p50 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, f in figures.items():
        flat = "-" if f["faiss_flat_p50_ms"] is None else f["faiss_flat_p50_ms"]
        lines.append(
            f"| {int(size):,} | {f['load_s']} | {f['rss_gb']} | {f['p50_ms']} | {f['p99_ms']} | {f['batch_qps']} | "
            f"{f['recall_at_10']} | {f['numpy_exact_p50_ms']} | {flat} |"
        )
    lines.append(
        f"\nPeak resident memory of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB."
    )
    record(lines, args.results)
    print(json.dumps({"benchmark": "match", "sizes": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
