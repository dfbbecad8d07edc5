"""Airflow's overhead: the wall time of a whole demo DAG run vs the sum of its tasks' own work.

    .venv/bin/python benchmarks/orchestration.py [--results benchmarks/RESULTS.md]

Runs ``matcher_retraining`` once with ``dag.test()`` (the in-process executor ``airflow dags test``
uses) on generated demo data in a throwaway SeaweedFS and Airflow home. Each task records the seconds
its own function ran (``runs/<run>/timings/``); the difference to the run's wall time is what Airflow
spends scheduling, starting tasks, rendering templates and passing XComs. Target (issue 5): <= 15%.
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

from benchmarks.common import ROOT, benchmark_parser, commit, record, throwaway_s3  # noqa: E402


def main() -> int:
    parser = benchmark_parser(__doc__, resumes=False)
    parser.add_argument("--cvs-per-category", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="matcher-orchestration-bench-"))
    os.environ.update(
        AIRFLOW_HOME=str(work / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        MATCHER_MODEL_CACHE=str(work / "models"),
    )
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from include.devtools.demo_data import generate
    from include.matcher.foundations.settings import Locations
    from include.matcher.pages.summary import task_timings

    with throwaway_s3(work / "s3") as (server, fresh_locations):
        storage, locations = fresh_locations()
        generate(work / "demo", cvs_per_category=args.cvs_per_category)
        storage.upload_dir(work / "demo" / "cvs", locations.raw_cvs)
        storage.upload_dir(work / "demo" / "job-offers", locations.job_offers)
        storage.put_bytes(locations.jobs_file, (work / "demo" / "job_descriptions.json").read_bytes())
        os.environ.update({var: getattr(locations, name) for name, var in Locations.ENV.items()})
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
            {
                "conn_type": "aws",
                "login": server.access_key,
                "password": server.secret_key,
                "extra": {"endpoint_url": server.endpoint, "region_name": "us-east-1"},
            }
        )
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(ROOT / "dags")).dags["matcher_retraining"]
        started = time.perf_counter()
        run = dag.test(run_conf={"epochs": 2, "learning_rate": 5e-5})
        wall = time.perf_counter() - started
        timings = task_timings(locations.run_uri(run.run_id), storage)
        states = sorted({str(ti.state) for ti in run.get_task_instances()})

    work_seconds = sum(timings.values())
    overhead = (wall - work_seconds) / wall
    lines = [
        f"### orchestration: {datetime.date.today()} commit {commit()}, demo data ({args.cvs_per_category} CVs per "
        f"category), dag.test(), task states {states}",
        "",
        "| task | seconds of work |",
        "| --- | --- |",
    ]
    lines += [f"| {task} | {seconds:.1f} |" for task, seconds in timings.items()]
    lines += [
        f"| **sum of task work** | {work_seconds:.1f} |",
        f"| **DAG run wall time** | {wall:.1f} |",
        "",
        f"Airflow overhead: {wall - work_seconds:.1f} s = {overhead:.1%} of the run (target <= 15%: "
        f"{'met' if overhead <= 0.15 else 'NOT met'}).",
    ]
    record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "orchestration",
                "wall_s": round(wall, 1),
                "work_s": round(work_seconds, 1),
                "overhead": round(overhead, 4),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
