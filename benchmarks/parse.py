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

import datetime
import io
import json
import os
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing, throwaway_s3  # noqa: E402


def bare_parse(data: bytes) -> int:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return sum(len(page.extract_text() or "") for page in pdf.pages)


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--limit", type=int, default=200)
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0
    from include.matcher.foundations.settings import ParseLimits
    from include.matcher.foundations.uris import join_uri
    from include.matcher.stages.ingest import ingest
    from include.matcher.stages.parse import parse

    files = sorted(args.resumes.glob("*/*.pdf"))[:: max(1, len(sorted(args.resumes.glob("*/*.pdf"))) // args.limit)][
        : args.limit
    ]
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

    with throwaway_s3(Path(tempfile.mkdtemp(prefix="matcher-parse-bench-"))) as (_, fresh_locations):
        for workers in (1, cores):
            storage, locations = fresh_locations()  # a fresh bucket: nothing comes from the text cache
            storage.put_json(locations.jobs_file, {"X": "x"})
            for key, data in blobs:
                storage.put_bytes(join_uri(locations.raw_cvs, key), data)
            run = join_uri(locations.work, "runs", f"w{workers}")
            started = time.perf_counter()
            parse(ingest(run, locations, storage), run, locations, storage, ParseLimits(workers=workers))
            seconds = time.perf_counter() - started
            rows.append((f"ingest + parse stage, {workers} worker(s)", seconds, bare_one))

    lines = [
        f"### parse: {datetime.date.today()} commit {commit()}, {len(blobs)} PDF resumes, {cores} cores",
        "",
        "| path | seconds | files/s | vs bare loop on 1 process |",
        "| --- | --- | --- | --- |",
    ]
    for name, seconds, reference in rows:
        lines.append(f"| {name} | {seconds:.1f} | {len(blobs) / seconds:.2f} | {reference / seconds:.2f}x |")
    record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "parse",
                "files": len(blobs),
                "vs_bare_one_process": {name: round(reference / seconds, 3) for name, seconds, reference in rows},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
