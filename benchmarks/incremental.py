"""What a quiet night costs: ingest + parse + refresh with 1% new CVs vs a full night.

    .venv/bin/python benchmarks/incremental.py [--limit 300] [--results benchmarks/RESULTS.md]

Against a throwaway SeaweedFS, in one run: night 1 ingests, parses and embeds ``limit`` resumes
(everything new); then 1% more files arrive and night 2 runs the same three stages with the same
production model, so the ledger skips known files, the text cache answers unchanged content and
unchanged CVs keep their vectors. Target (issue 5): night 2 <= 10% of night 1.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing, throwaway_s3  # noqa: E402


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from include.matcher.foundations.models import base_model_path
    from include.matcher.foundations.uris import join_uri
    from include.matcher.stages.embeddings import refresh_embeddings
    from include.matcher.stages.ingest import ingest
    from include.matcher.stages.parse import parse

    every = sorted(args.resumes.glob("*/*.pdf"))
    new_count = max(1, args.limit // 100)
    files = every[: args.limit + new_count]
    first, late = files[: args.limit], files[args.limit :]
    work = Path(tempfile.mkdtemp(prefix="matcher-incremental-bench-"))
    os.environ["MATCHER_MODEL_CACHE"] = str(work / "models")
    timings = {}
    with throwaway_s3(work / "s3") as (_, fresh_locations):
        storage, locations = fresh_locations()
        storage.put_json(locations.jobs_file, {path.parent.name: f"{path.parent.name} job" for path in files})
        version_uri = join_uri(locations.registry, "models", "v1")
        storage.upload_dir(base_model_path(), version_uri)
        storage.put_json(join_uri(version_uri, "entry.json"), {"version": "v1"})

        def night(name: str, arriving: list[Path]) -> None:
            for path in arriving:
                storage.put_bytes(join_uri(locations.raw_cvs, f"{path.parent.name}/{path.name}"), path.read_bytes())
            run = join_uri(locations.work, "runs", name)
            stages = {}
            started = time.perf_counter()
            manifest = ingest(run, locations, storage)
            stages["ingest"] = time.perf_counter() - started
            started = time.perf_counter()
            corpus = parse(manifest, run, locations, storage)
            stages["parse"] = time.perf_counter() - started
            started = time.perf_counter()
            refresh_embeddings(version_uri, corpus, locations, storage)
            stages["refresh"] = time.perf_counter() - started
            timings[name] = stages

        night("full", first)
        night("one-percent", late)
    shutil.rmtree(work, ignore_errors=True)

    full, small = (sum(timings[name].values()) for name in ("full", "one-percent"))
    lines = [
        f"### incremental: {datetime.date.today()} commit {commit()}, {len(first)} resumes then {len(late)} more "
        f"({len(late) / len(first):.0%}), {os.cpu_count()} cores",
        "",
        "| night | ingest s | parse s | refresh s | total s | vs full night |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, stages in timings.items():
        total = sum(stages.values())
        lines.append(
            f"| {name} | {stages['ingest']:.1f} | {stages['parse']:.1f} | {stages['refresh']:.1f} | {total:.1f} | "
            f"{total / full:.1%} |"
        )
    lines += [
        "",
        f"Target: a 1%-new night <= 10% of a full night: {'met' if small <= 0.10 * full else 'NOT met'} "
        f"({small / full:.1%}).",
    ]
    record(lines, args.results)
    print(json.dumps({"benchmark": "incremental", "one_percent_vs_full": round(small / full, 4), "timings": timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
