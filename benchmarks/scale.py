"""How ingest, parse and refresh grow with the corpus: N CVs replicated from the shared resumes.

    .venv/bin/python benchmarks/scale.py --sizes 2000,20000 [--results benchmarks/RESULTS.md]

Each replica is a shared resume with a comment appended after its ``%%EOF`` (readers ignore it), so
every file has new bytes (no text-cache hit) while its text stays real. For each size, against a
throwaway SeaweedFS: upload, then ingest, parse and refresh each in its own process (``python -m
include.matcher`` stage commands, as an Airflow worker would run them), timing each and reading its
peak resident memory. Targets (issue 5): time grows linearly; no stage above 4 GB on CPU.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, benchmark_parser, commit, record, shared_data_missing, throwaway_s3  # noqa: E402

# Runs one command and reports the largest RSS among its processes: a fresh parent per stage, so
# each stage's peak is its own (RUSAGE_CHILDREN only ever grows within one process).
PEAK_WRAPPER = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[2:]).returncode;"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss));"
    "sys.exit(code)"
)


def run_stage(args: list[str]) -> tuple[str, float, float]:
    """(last stdout line, seconds, peak RSS in GB of its largest process) of one CLI stage in a child process."""
    with tempfile.NamedTemporaryFile(suffix=".maxrss") as peak_file:
        started = time.perf_counter()
        command = [sys.executable, "-c", PEAK_WRAPPER, peak_file.name, sys.executable, "-m", "include.matcher", *args]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
        peak_kb = int(Path(peak_file.name).read_text() or 0)
    return done.stdout.strip().splitlines()[-1], seconds, peak_kb / 2**20


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--sizes", default="2000,20000")
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from include.matcher.foundations.models import base_model_path
    from include.matcher.foundations.uris import join_uri

    sources = sorted(args.resumes.glob("*/*.pdf"))
    rows = []
    with throwaway_s3(Path(tempfile.mkdtemp(prefix="matcher-scale-bench-")) / "s3") as (_, fresh_locations):
        for size in (int(value) for value in args.sizes.split(",")):
            storage, locations = fresh_locations()
            for name, var in locations.ENV.items():
                os.environ[var] = getattr(locations, name)
            storage.put_json(locations.jobs_file, {path.parent.name: f"{path.parent.name} job" for path in sources})
            for index in range(size):
                source = sources[index % len(sources)]
                body = source.read_bytes() + f"\n% replica {index}\n".encode()
                storage.put_bytes(join_uri(locations.raw_cvs, f"{source.parent.name}/r{index:06d}-{source.name}"), body)
            version_uri = join_uri(locations.registry, "models", "v1")
            storage.upload_dir(base_model_path(), version_uri)
            storage.put_json(join_uri(version_uri, "entry.json"), {"version": "v1"})
            manifest, ingest_s, ingest_gb = run_stage(["ingest", "--run-id", f"scale-{size}"])
            corpus, parse_s, parse_gb = run_stage(["parse", "--run-id", f"scale-{size}", "--manifest", manifest])
            _, refresh_s, refresh_gb = run_stage(
                ["refresh-embeddings", "--version-uri", version_uri, "--corpus", corpus]
            )
            rows.append((size, ingest_s, parse_s, refresh_s, ingest_gb, parse_gb, refresh_gb))
            print(rows[-1], flush=True)

    base = rows[0]
    lines = [
        f"### scale: {datetime.date.today()} commit {commit()}, {os.cpu_count()} cores",
        "",
        "| CVs | ingest s | parse s | refresh s | total s | s per 1,000 CVs | peak RSS GB: ingest / parse / refresh |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, ingest_s, parse_s, refresh_s, ingest_gb, parse_gb, refresh_gb in rows:
        total = ingest_s + parse_s + refresh_s
        lines.append(
            f"| {size} | {ingest_s:.0f} | {parse_s:.0f} | {refresh_s:.0f} | {total:.0f} | {1000 * total / size:.1f} "
            f"| {ingest_gb:.2f} / {parse_gb:.2f} / {refresh_gb:.2f} |"
        )
    if len(rows) > 1:
        growth = (sum(rows[-1][1:4]) / rows[-1][0]) / (sum(base[1:4]) / base[0])
        lines += ["", f"Cost per CV at {rows[-1][0]} vs {base[0]}: {growth:.2f}x (1.00x is linear)."]
    record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "scale",
                "sizes": {
                    str(size): {
                        "ingest_s": round(i, 1),
                        "parse_s": round(p, 1),
                        "refresh_s": round(r, 1),
                        "peak_gb": max(a, b, c),
                    }
                    for size, i, p, r, a, b, c in rows
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
