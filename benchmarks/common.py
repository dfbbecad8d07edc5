"""What the benchmark scripts share: the shared data's place, the commit stamp, a throwaway S3, the results file."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def benchmark_parser(doc: str, resumes: bool = True, jobs_file: bool = False) -> argparse.ArgumentParser:
    """The flags every benchmark shares: where the shared data is and where results go."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    if resumes:
        parser.add_argument("--resumes", type=Path, default=SHARED / "resumes")
    if jobs_file:
        parser.add_argument("--jobs-file", type=Path, default=SHARED / "job_descriptions.json")
    parser.add_argument("--results", type=Path, default=RESULTS)
    return parser


def commit() -> str:
    """The short HEAD, marked when the working tree differs from it (results files aside)."""
    head = (
        subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        or "unknown"
    )
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    # Benchmarks run one after another append to RESULTS.md: that is not a change to what they measure.
    dirty = [line for line in status.splitlines() if not line.endswith("RESULTS.md")]
    return f"{head} (+ uncommitted changes)" if dirty else head


def record(lines: list[str], results: Path) -> None:
    """Print the table and append it to the results file."""
    table = "\n".join(lines) + "\n"
    print(table)
    with open(results, "a") as handle:
        handle.write("\n" + table)


def shared_data_missing(path: Path) -> bool:
    if path.exists():
        return False
    print(f"no shared data at {path}: nothing to benchmark", file=sys.stderr)
    return True


@contextmanager
def throwaway_s3(folder: Path):
    """A SeaweedFS on a free loopback port, its AWS_* variables set; yields fresh-bucket Locations factory."""
    from include.devtools import embedded_s3
    from include.matcher.foundations.settings import Locations
    from include.matcher.foundations.storage import Storage

    server = embedded_s3.start(folder, s3_port=embedded_s3.free_port(), base_port=None)
    os.environ.update(server.environment())

    def fresh_locations():
        storage = Storage()
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        storage.ensure_bucket(bucket)
        return storage, Locations.in_bucket(bucket)

    try:
        yield server, fresh_locations
    finally:
        embedded_s3.stop(folder)
