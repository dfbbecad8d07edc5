"""The DAG on the production topology: CeleryExecutor, Redis, PostgreSQL, a default-queue and a
gpu-queue worker, all started natively by ``include.devtools.celery_topology`` and driven through
Airflow's REST API, as a person's trigger from the UI would be."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

DAG = "matcher_retraining"


class Api:
    """Airflow's REST API with a token from /auth/token (the login every UI user goes through)."""

    def __init__(self, base: str, user: str, password: str):
        self.base = base
        request = urllib.request.Request(
            f"{base}/auth/token",
            data=json.dumps({"username": user, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        self.token = json.loads(urllib.request.urlopen(request, timeout=30).read())["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.base}/api/v2{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        return json.loads(urllib.request.urlopen(request, timeout=60).read() or b"{}")

    def wait_for_run(self, run_id: str, seconds: float = 1200) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            run = self.call("GET", f"/dags/{DAG}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(5)
        raise TimeoutError(f"run {run_id} still {run['state']} after {seconds:.0f} s")

    def task_instances(self, run_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]


def matcher_cli(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "include.matcher", *args], cwd=PROJECT_ROOT, env=env, check=True)


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    from include.devtools import celery_topology

    try:
        celery_topology.ensure_packages()
    except celery_topology.MissingPackage as missing:
        pytest.skip(str(missing))
    info = celery_topology.up()
    env = {**os.environ, **celery_topology.s3_environment(), "PYTHONPATH": str(PROJECT_ROOT)}
    demo = tmp_path_factory.mktemp("demo")
    matcher_cli(env, "demo-data", "--target", str(demo), "--cvs-per-category", "8")
    matcher_cli(env, "bootstrap")
    matcher_cli(env, "upload", str(demo / "cvs"), "--to", "cvs")
    matcher_cli(env, "upload", str(demo / "job_descriptions.json"), "--to", "jobs-file")
    api = Api(info["api"], info["user"], info["password"])
    api.env = env  # for uploading more CVs
    deadline = time.monotonic() + 120
    while True:  # the dag-processor has to have parsed the DAG before it can be unpaused
        try:
            api.call("PATCH", f"/dags/{DAG}", {"is_paused": False})
            break
        except urllib.error.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(3)
    yield api
    celery_topology.down()


def test_a_manual_run_succeeds_with_fine_tune_on_the_gpu_queue_worker(topology):
    run = topology.call("POST", f"/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {"epochs": 1}})
    finished = topology.wait_for_run(run["dag_run_id"])
    instances = topology.task_instances(run["dag_run_id"])
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in instances}
    assert finished["state"] == "success", states
    by_task = {}
    for ti in instances:
        by_task.setdefault(ti["task_id"], []).append(ti)
    fine_tune = by_task["train.fine_tune"][0]
    assert fine_tune["queue"] == "gpu" and fine_tune["pool"] == "gpu"
    assert fine_tune["hostname"] == "worker-gpu"
    shards = by_task["parse.parse_shard"]
    assert shards and all(ti["queue"] == "default" and ti["hostname"] == "worker-default" for ti in shards)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first found first."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for task in os.listdir(f"/proc/{parent}/task") if os.path.exists(f"/proc/{parent}/task") else []:
            with open(f"/proc/{parent}/task/{task}/children") as children:
                for child in map(int, children.read().split()):
                    found.append(child)
                    queue.append(child)
    return found


def kill_worker(name: str) -> None:
    """SIGKILL a Celery worker and every process below it, as an OOM kill or a lost node would.

    Airflow's supervisor puts each task process in its own process group, so killing the worker's
    group alone would leave the task running on, orphaned (and finishing the work behind the retry's back).
    """
    import signal

    from include.devtools import celery_topology

    pid = celery_topology.running(name)
    assert pid, f"{name} is not running"
    for victim in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while celery_topology.running(name):
        time.sleep(0.2)


def test_workers_killed_mid_task_lose_nothing_and_the_fine_tune_resumes_from_its_checkpoint(topology):
    """One run, two kills: the default-queue worker while it parses, the gpu-queue worker once the
    fine-tune has a checkpoint on S3. Both tasks are retried on restarted workers; the run succeeds,
    every file is accounted for, and the fine-tune's retry resumes from the checkpoint."""
    import boto3

    from include.devtools import celery_topology
    from include.matcher import layout
    from include.matcher.settings import Locations
    from include.matcher.storage import CLIENT_CONFIG, Storage

    s3 = celery_topology.s3_environment()
    storage = Storage(
        boto3.client(
            "s3",
            endpoint_url=s3["AWS_ENDPOINT_URL_S3"],
            aws_access_key_id=s3["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=s3["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
            config=CLIENT_CONFIG,
        )
    )
    from include.devtools.demo_data import generate

    more = Path(tempfile.mkdtemp(prefix="matcher-more-cvs-"))
    generate(more, cvs_per_category=6, seed=11, broken=False)  # new CVs: tonight's parse has work
    matcher_cli(topology.env, "upload", str(more / "cvs"), "--to", "cvs")
    run = topology.call("POST", f"/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {"epochs": 2}})
    run_id = run["dag_run_id"]

    def state_of(task_id: str) -> str | None:
        found = [ti for ti in topology.task_instances(run_id) if ti["task_id"] == task_id]
        return found[0]["state"] if found else None

    deadline = time.monotonic() + 600
    while state_of("parse.parse_shard") != "running":
        assert time.monotonic() < deadline, "parse_shard never ran"
        time.sleep(0.5)
    kill_worker("worker-default")
    celery_topology.up()  # restarts what is not running: the killed worker

    latest = layout.latest_checkpoint(layout.Run(Locations.from_env().run_uri(run_id)).checkpoints)
    while not storage.exists(latest):
        assert time.monotonic() < deadline + 1200, "the fine-tune never wrote a checkpoint"
        assert state_of("train.fine_tune") not in ("success", "failed", "upstream_failed"), (
            "no checkpoint to kill after"
        )
        time.sleep(1)
    kill_worker("worker-gpu")
    celery_topology.up()

    finished = topology.wait_for_run(run_id, seconds=2400)
    instances = {ti["task_id"]: ti for ti in topology.task_instances(run_id) if ti["map_index"] in (-1, 0)}
    assert finished["state"] == "success", {k: v["state"] for k, v in instances.items()}
    assert instances["parse.parse_shard"]["try_number"] >= 2 and instances["train.fine_tune"]["try_number"] >= 2
    summary = storage.get_json(layout.Run(Locations.from_env().run_uri(run_id)).parse_summary)
    manifest = storage.get_json(layout.Run(Locations.from_env().run_uri(run_id)).manifest)
    assert summary["parsed"] + summary["rejected"] == len(manifest["items"])  # every file in exactly one place
    logs = celery_topology.HOME / "airflow" / "logs" / f"dag_id={DAG}" / f"run_id={run_id}" / "task_id=train.fine_tune"
    retried = "\n".join(
        path.read_text() for path in logs.glob("attempt=*.log") if not path.name.startswith("attempt=1")
    )
    assert "fine_tune: resuming from step" in retried
