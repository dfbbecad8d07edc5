"""What the search log costs a search: ``VectorMatcher.top_candidates`` p50 with the log on and off.

    .venv/bin/python benchmarks/search_log.py [--queries 200] [--cvs 2000]

A throwaway SeaweedFS, the base model in production, ``--cvs`` generated demo CVs embedded as the
refresh embeds them; then the same queries, interleaved, with the search log recording (queued, written
in batches by its background thread) and with it replaced by a no-op. Appends its table to RESULTS.md
and ends with one JSON line.
"""

from __future__ import annotations

import datetime
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, commit, record, throwaway_s3  # noqa: E402


class Silent:
    def record(self, **_) -> None:
        return None


def main() -> int:
    parser = benchmark_parser(__doc__, resumes=False)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--cvs", type=int, default=2000)
    args = parser.parse_args()

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from include.devtools.demo_data import JOB_DESCRIPTIONS, PROFILES, cv_text
    from include.matcher.foundations import layout
    from include.matcher.foundations.models import base_model_path
    from include.matcher.foundations.uris import join_uri
    from include.matcher.serving import usage_log
    from include.matcher.serving.matcher import VectorMatcher
    from include.matcher.stages.embeddings import refresh_embeddings
    from include.matcher.stages.ingest import ingest
    from include.matcher.stages.parse import parse

    with tempfile.TemporaryDirectory() as folder, throwaway_s3(Path(folder)) as (_, fresh_locations):
        storage, locations = fresh_locations()
        rng = random.Random(0)
        storage.put_json(locations.jobs_file, JOB_DESCRIPTIONS)
        categories = sorted(PROFILES)
        for i in range(args.cvs):
            category = categories[i % len(categories)]
            storage.put_bytes(join_uri(locations.raw_cvs, category, f"cv{i}.txt"), cv_text(category, rng).encode())
        run = locations.run_uri("bench")
        corpus = parse(ingest(run, locations, storage), run, locations, storage)
        version = layout.version(locations.registry, "v-base")
        storage.upload_dir(base_model_path(), version.uri)
        entry = {"version": "v-base", "uri": version.uri, "metrics": {}, "promoted_at": "2026-12-01T00:00:00"}
        storage.put_json(version.entry, entry)
        storage.put_json(layout.production_pointer(locations.registry), entry)
        refresh_embeddings(version.uri, corpus, locations, storage)

        matcher = VectorMatcher.at(locations, storage, device="cpu")
        real = usage_log.search_log
        queries = [f"{rng.choice(list(JOB_DESCRIPTIONS.values()))} {i}" for i in range(args.queries)]
        timings = {"on": [], "off": []}
        matcher.top_candidates(queries[0], k=10)  # warm: model and snapshot loaded, log thread started
        for query in queries:
            for mode in ("on", "off"):
                usage_log.search_log = real if mode == "on" else (lambda *_: Silent())
                started = time.perf_counter()
                matcher.top_candidates(query, k=10, user="bench")
                timings[mode].append((time.perf_counter() - started) * 1000)
        usage_log.search_log = real
        written = real(storage, locations).flush()
        logged = len(usage_log.read_search_log(storage, locations))

    p50 = {mode: statistics.median(values) for mode, values in timings.items()}
    lines = [
        f"### search log: {datetime.date.today()} commit {commit()}",
        "",
        f"{args.cvs} CVs in the snapshot, {args.queries} queries, each with the log on and off, interleaved.",
        "",
        "| search log | p50 ms | p90 ms |",
        "| --- | --- | --- |",
        *(
            f"| {mode} | {p50[mode]:.2f} | {sorted(values)[int(0.9 * len(values))]:.2f} |"
            for mode, values in timings.items()
        ),
        "",
        f"{logged} records on S3 after the run (the last {written} written at the final flush).",
    ]
    record(lines, args.results)
    print(
        json.dumps({"benchmark": "search_log", "p50_ms": p50, "overhead_ms": p50["on"] - p50["off"], "records": logged})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
