"""The Matcher page as a person meets it: page load, first search (the model loads as the page opens)
and a later search, measured in Chromium inside Airflow, through the UI journey test.

    .venv/bin/python benchmarks/ui.py [--runs 1] [--results benchmarks/RESULTS.md]

Runs ``tests/e2e/test_browser.py`` (``airflow standalone``, a real night trained and approved through
the UI, a throwaway SeaweedFS) and reads the timings it wrote to ``test-artifacts/browser/timings.json``.
Appends the table to RESULTS.md and ends with one JSON line.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, benchmark_parser, commit, record  # noqa: E402

TIMINGS = ROOT / "test-artifacts" / "browser" / "timings.json"


def main() -> int:
    parser = benchmark_parser(__doc__, resumes=False)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    measured = []
    for _ in range(args.runs):
        TIMINGS.unlink(missing_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_browser.py"],
            cwd=ROOT,
            env={**os.environ, "MATCHER_REQUIRE_APPROVAL": "false", "PYTHONPATH": str(ROOT)},
        )
        if result.returncode != 0 or not TIMINGS.exists():
            print("the browser journey failed: no timings", file=sys.stderr)
            return 1
        measured.append(json.loads(TIMINGS.read_text()))
    names = list(measured[0])
    lines = [
        f"## UI timings ({datetime.date.today()}, commit {commit()}, {os.cpu_count()} cores, headless Chromium "
        "1440x900, inside Airflow's frame)",
        "",
        "| measure | " + " | ".join(f"run {i + 1}" for i in range(len(measured))) + " |",
        "| --- |" + " --- |" * len(measured),
    ]
    lines += [f"| {name} | " + " | ".join(f"{run[name]:.2f}" for run in measured) + " |" for name in names]
    record(lines, args.results)
    print(json.dumps({"benchmark": "ui", "runs": measured}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
