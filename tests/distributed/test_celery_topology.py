"""The DAG on the production topology: CeleryExecutor, Redis, PostgreSQL, a default-queue and a
gpu-queue worker, all started natively by ``include.devtools.celery_topology`` and driven through
Airflow's REST API, as a person's trigger from the UI would be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

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
