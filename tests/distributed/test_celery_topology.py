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


def checkout_copy(parent: Path) -> Path:
    """The project's files (tracked and untracked, not ignored) copied into ``parent``/checkout."""
    import shutil

    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    target = parent / "checkout"
    for name in filter(None, listed):
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


# Ports of their own, so these run beside a topology already up (the module's fixture, make up-celery).
OTHER_PORTS = {
    "MATCHER_CELERY_REDIS_PORT": "6491",
    "MATCHER_CELERY_POSTGRES_PORT": "5541",
    "MATCHER_CELERY_API_PORT": "8191",
    "MATCHER_CELERY_S3_PORT": "8441",
}


def topology_command(checkout: Path, command: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include.devtools.celery_topology", command],
        cwd=checkout,
        env={**os.environ, **OTHER_PORTS, "PYTHONPATH": str(checkout), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def listening(port: str) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", int(port))) == 0


def test_the_topology_starts_from_a_checkout_only_its_owner_may_enter(tmp_path):
    """``initdb`` runs as the postgres user, who once could not enter a 0700 checkout (mktemp -d, /root)."""
    private = Path(tempfile.mkdtemp(prefix="matcher-private-"))
    try:
        private.chmod(0o700)
        checkout = checkout_copy(private)
        started = topology_command(checkout, "up")
        assert started.returncode == 0, started.stderr[-3000:]
        info = json.loads(started.stdout)
        assert urllib.request.urlopen(f"{info['api']}/api/v2/monitor/health", timeout=10).status == 200
        if os.geteuid() == 0:  # the postgres user's data lives where that user can reach it
            assert not any((checkout / ".local" / "celery").glob("**/PG_VERSION"))
    finally:
        topology_command(checkout, "clean")
        import shutil

        shutil.rmtree(private, ignore_errors=True)
    assert not any(listening(port) for port in OTHER_PORTS.values())


def test_a_start_that_fails_half_way_stops_what_it_started(tmp_path):
    """After a failed initdb, redis-server was once left running with no one to stop it."""
    checkout = checkout_copy(tmp_path)
    broken = tmp_path / "postgres"
    (broken / "data").mkdir(parents=True)
    (broken / "data" / "not-a-database").write_text("initdb refuses a folder that is not empty")
    if os.geteuid() == 0:
        import shutil

        for folder in (broken, broken / "data"):
            shutil.chown(folder, "postgres", "postgres")
    failed = topology_command(checkout, "up", MATCHER_CELERY_POSTGRES_DIR=str(broken))
    assert failed.returncode == 2 and "initdb failed" in failed.stderr, failed.stderr[-2000:]
    assert not listening(OTHER_PORTS["MATCHER_CELERY_REDIS_PORT"])
    assert not (checkout / ".local" / "celery" / "pids" / "redis.pid").exists()


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
    try:  # what up() started stops by pid whether the setup, the tests or neither fail
        env = {**os.environ, **celery_topology.s3_environment(), "PYTHONPATH": str(PROJECT_ROOT)}
        demo = tmp_path_factory.mktemp("demo")
        matcher_cli(env, "demo-data", "--target", str(demo), "--cvs-per-category", "8")
        matcher_cli(env, "bootstrap")
        # The checks of the registry need a production model whatever the 1-epoch runs learn: arranged.
        from include.matcher.foundations.settings import Locations
        from tests.helpers import put_a_model_every_candidate_beats_in_production

        put_a_model_every_candidate_beats_in_production(
            topology_storage(), Locations.from_env(), tmp_path_factory.mktemp("zeroed")
        )
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
    finally:
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


def kill_service(name: str) -> None:
    """SIGKILL a topology process and every process below it, as an OOM kill or a lost node would.

    Airflow's supervisor puts each task process in its own process group, so killing a worker's
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


def topology_storage():
    """The topology's S3, as the pipeline's own Storage."""
    import boto3

    from include.devtools import celery_topology
    from include.matcher.foundations.storage import CLIENT_CONFIG, Storage

    s3 = celery_topology.s3_environment()
    return Storage(
        boto3.client(
            "s3",
            endpoint_url=s3["AWS_ENDPOINT_URL_S3"],
            aws_access_key_id=s3["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=s3["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
            config=CLIENT_CONFIG,
        )
    )


def upload_new_cvs(api: Api, seed: int) -> None:
    """New demo CVs on the raw prefix, so the next run has parsing and training to do."""
    from include.devtools.demo_data import generate

    more = Path(tempfile.mkdtemp(prefix="matcher-more-cvs-"))
    generate(more, cvs_per_category=6, seed=seed, broken=False)
    matcher_cli(api.env, "upload", str(more / "cvs"), "--to", "cvs")


def state_of(api: Api, run_id: str, task_id: str) -> str | None:
    found = [ti for ti in api.task_instances(run_id) if ti["task_id"] == task_id]
    return found[0]["state"] if found else None


def test_workers_killed_mid_task_lose_nothing_and_the_fine_tune_resumes_from_its_checkpoint(topology):
    """One run, two kills: the default-queue worker while it parses, the gpu-queue worker once the
    fine-tune has a checkpoint on S3. Both tasks are retried on restarted workers; the run succeeds,
    every file is accounted for, and the fine-tune's retry resumes from the checkpoint."""
    from include.devtools import celery_topology
    from include.matcher.foundations import layout
    from include.matcher.foundations.settings import Locations

    storage = topology_storage()
    upload_new_cvs(topology, seed=11)
    run = topology.call("POST", f"/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {"epochs": 2}})
    run_id = run["dag_run_id"]

    deadline = time.monotonic() + 600
    while state_of(topology, run_id, "parse.parse_shard") != "running":
        assert time.monotonic() < deadline, "parse_shard never ran"
        time.sleep(0.5)
    kill_service("worker-default")
    celery_topology.up()  # restarts what is not running: the killed worker

    latest = layout.latest_checkpoint(layout.Run(Locations.from_env().run_uri(run_id)).checkpoints)
    while not storage.exists(latest):
        assert time.monotonic() < deadline + 1200, "the fine-tune never wrote a checkpoint"
        assert state_of(topology, run_id, "train.fine_tune") not in ("success", "failed", "upstream_failed"), (
            "no checkpoint to kill after"
        )
        time.sleep(1)
    kill_service("worker-gpu")
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


def test_a_scheduler_killed_mid_run_is_restarted_and_the_run_completes(topology):
    """The scheduler dies (SIGKILL, as a lost node) while ``fine_tune`` runs on the gpu worker; the task
    goes on reporting to the API server, and the restarted scheduler takes the run to the end."""
    from include.devtools import celery_topology

    upload_new_cvs(topology, seed=12)
    run_id = topology.call("POST", f"/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {"epochs": 1}})["dag_run_id"]
    deadline = time.monotonic() + 900
    while state_of(topology, run_id, "train.fine_tune") != "running":
        assert time.monotonic() < deadline, "fine_tune never ran"
        time.sleep(1)
    killed = celery_topology.running("scheduler")
    kill_service("scheduler")
    time.sleep(10)  # the run is without a scheduler for a while
    celery_topology.up()
    assert celery_topology.running("scheduler") not in (None, killed)

    finished = topology.wait_for_run(run_id)
    instances = topology.task_instances(run_id)
    assert finished["state"] == "success", {(ti["task_id"], ti["map_index"]): ti["state"] for ti in instances}
    fine_tune = next(ti for ti in instances if ti["task_id"] == "train.fine_tune")
    assert fine_tune["try_number"] == 1  # the training went on through the restart: nothing redone


def test_two_runs_triggered_at_once_run_one_after_the_other_and_leave_the_registry_consistent(topology):
    """``max_active_runs=1``: the second run waits queued until the first has finished, and both
    write through the same production and embeddings pointers without a lost or dangling update."""
    from include.matcher.foundations import layout, pointers
    from include.matcher.foundations.settings import Locations
    from include.matcher.stages import registry

    upload_new_cvs(topology, seed=13)
    first = topology.call("POST", f"/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {"epochs": 1}})
    # force_retrain: the second run trains, judges and publishes too, rather than stopping at ingest
    second = topology.call(
        "POST", f"/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {"epochs": 1, "force_retrain": True}}
    )
    seen_queued_behind = False
    deadline = time.monotonic() + 2400
    while True:
        runs = [topology.call("GET", f"/dags/{DAG}/dagRuns/{r['dag_run_id']}") for r in (first, second)]
        states = [r["state"] for r in runs]
        assert states.count("running") <= 1, states
        seen_queued_behind |= sorted(states) == ["queued", "running"]
        if all(state in ("success", "failed") for state in states):
            break
        assert time.monotonic() < deadline, f"runs still {states}"
        time.sleep(3)
    assert states == ["success", "success"]
    assert seen_queued_behind
    earlier, later = sorted(runs, key=lambda run: run["start_date"])
    assert later["start_date"] >= earlier["end_date"]

    storage, locations = topology_storage(), Locations.from_env()
    production = pointers.read_production(storage, locations.registry)
    versions = {entry.version: entry for entry in registry.list_versions(storage, locations.registry)}
    assert production.version in versions
    model = layout.Model(production.uri)
    assert storage.exists(model.entry) and any(
        info.uri.endswith("model.safetensors") for info in storage.list(production.uri)
    )
    embeddings = storage.get_json(layout.current_embeddings(locations.embeddings))
    assert embeddings["version"] == production.version  # the vectors served are the production model's
    assert storage.get_json(embeddings["manifest"])["version"] == production.version
    for entry in versions.values():  # every version's lineage points at versions that exist
        assert entry.previous is None or entry.previous in versions
