"""Parsing speed: the parse stage vs a bare pdfplumber loop, on one process and on all cores.

    .venv/bin/python benchmarks/parse.py [--limit 200] [--results benchmarks/RESULTS.md]

Same PDF files (the shared resumes) in one run:
- bare loop, 1 process: ``pdfplumber.open`` + ``page.extract_text()`` per file;
- bare loop, all cores: the same function in a ``multiprocessing.Pool``;
- the stage (``ingest`` + ``parse``: S3 reads, isolated workers with timeouts and memory caps, text
  cache writes, ledger commit) with ``MATCHER_PARSE_WORKERS=1`` and with one worker per core, each
  on a fresh bucket so nothing comes from the cache.
Targets (issue 5): stage >= 0.9x the bare loop on one process and >= 1.7x it on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import subprocess
import sys
import tempfile
import time
import uuid
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"


def bare_parse(data: bytes) -> int:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return sum(len(page.extract_text() or "") for page in pdf.pages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resumes", type=Path, default=SHARED / "resumes")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    if not args.resumes.is_dir():
        print(f"no resumes at {args.resumes}: nothing to benchmark", file=sys.stderr)
        return 0
    from include.matcher import embedded_s3
    from include.matcher.ingest import ingest
    from include.matcher.parse import parse
    from include.matcher.settings import Locations, ParseLimits
    from include.matcher.storage import Storage, join_uri

    files = sorted(args.resumes.glob("*/*.pdf"))[:: max(1, len(sorted(args.resumes.glob("*/*.pdf"))) // args.limit)][: args.limit]
    blobs = [(f"{path.parent.name}/{path.name}", path.read_bytes()) for path in files]
    cores = os.cpu_count() or 1
    rows = []

    started = time.perf_counter()
    for _, data in blobs:
        bare_parse(data)
    bare_one = time.perf_counter() - started
    rows.append(("bare pdfplumber loop, 1 process", bare_one, bare_one))
    started = time.perf_counter()
    with get_context("spawn").Pool(cores) as pool:
        pool.map(bare_parse, [data for _, data in blobs], chunksize=4)
    bare_all = time.perf_counter() - started
    rows.append((f"bare pdfplumber loop, Pool({cores})", bare_all, bare_one))

    work = Path(tempfile.mkdtemp(prefix="matcher-parse-bench-"))
    server = embedded_s3.start(work / "s3", s3_port=embedded_s3.free_port(), base_port=None)
    os.environ.update(server.environment())
    try:
        storage = Storage()
        for workers in (1, cores):
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            storage.ensure_bucket(bucket)
            locations = Locations(**{name: value.replace("s3://matcher/", f"s3://{bucket}/") for name, value in Locations().__dict__.items()})
            storage.put_json(locations.jobs_file, {"X": "x"})
            for key, data in blobs:
                storage.put_bytes(join_uri(locations.raw_cvs, key), data)
            run = join_uri(locations.work, "runs", f"w{workers}")
            started = time.perf_counter()
            parse(ingest(run, locations, storage), run, locations, storage, ParseLimits(workers=workers))
            seconds = time.perf_counter() - started
            rows.append((f"ingest + parse stage, {workers} worker(s)", seconds, bare_one if workers == 1 else bare_one))
    finally:
        embedded_s3.stop(work / "s3")

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = [f"### parse: {datetime.date.today()} commit {commit}, {len(blobs)} PDF resumes, {cores} cores", "",
             "| path | seconds | files/s | vs bare loop on 1 process |", "| --- | --- | --- | --- |"]  # fmt: skip
    for name, seconds, reference in rows:
        lines.append(f"| {name} | {seconds:.1f} | {len(blobs) / seconds:.2f} | {reference / seconds:.2f}x |")
    table = "\n".join(lines) + "\n"
    print(table)
    with open(args.results, "a") as handle:
        handle.write("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
