"""The compose files, checked without a Docker engine: valid against the Compose Specification's
schema (``compose_spec.json``, from compose-spec, Apache-2.0) and in agreement with the code."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "compose_spec.json").read_text())
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.mark.parametrize("name", ["docker-compose.yaml", "docker-compose.gpu.yaml"])
def test_valid_against_the_compose_specification(name):
    jsonschema.validate(load(name), SCHEMA)


def test_official_shape_with_seaweedfs():
    services = load("docker-compose.yaml")["services"]
    assert AIRFLOW_SERVICES | {"postgres", "redis", "seaweedfs"} <= set(services)
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in env
        assert services[name]["build"] == "."


def test_agrees_with_the_code():
    services = load("docker-compose.yaml")["services"]
    worker = services["airflow-worker"]
    env = worker["environment"]
    from include.matcher.foundations.settings import VARIABLES, ShardConfig

    # the connection the DAG reads is the one the environment defines
    assert VARIABLES["MATCHER_AWS_CONN_ID"].default == env["MATCHER_AWS_CONN_ID"] == "aws_default"
    connection = json.loads(
        env["AIRFLOW_CONN_AWS_DEFAULT"]
        .replace("${MATCHER_S3_ACCESS_KEY:?set it in .env}", "k")
        .replace("${MATCHER_S3_SECRET_KEY:?set it in .env}", "s")
    )
    assert connection["extra"]["endpoint_url"] == env["AWS_ENDPOINT_URL_S3"] == "http://seaweedfs:8333"
    assert "8333" in " ".join(services["seaweedfs"]["command"]) and "127.0.0.1" not in " ".join(
        services["seaweedfs"]["command"]
    )
    # include/ is mounted beside dags/ and plugins/, and importable
    mounts = {volume.rsplit(":", 1)[1] for volume in worker["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/include", "/opt/airflow/plugins"} <= mounts
    for volume in worker["volumes"]:
        local = volume.rsplit(":", 1)[0].replace("${AIRFLOW_PROJ_DIR:-.}/", "")
        assert local in {"logs", "config"} or (ROOT / local).is_dir(), local
    assert env["PYTHONPATH"] == "/opt/airflow"
    # every MATCHER_* setting the stack passes is a declared deployment setting (the code reads no other)
    assert {key for key in env if key.startswith("MATCHER_")} <= set(VARIABLES)

    assert env["MATCHER_PARSE_SHARD_SIZE"] == f"${{MATCHER_PARSE_SHARD_SIZE:-{ShardConfig().parse_files}}}"
    assert env["MATCHER_EMBED_SHARD_SIZE"] == f"${{MATCHER_EMBED_SHARD_SIZE:-{ShardConfig().embed_texts}}}"
    # the buckets are created by the project's CLI, and the gpu pool exists for the override
    init = "\n".join(services["airflow-init"]["command"])
    assert "python -m include.matcher bootstrap" in init and "airflow pools set gpu" in init


def test_gpu_override_routes_fine_tune_to_a_gpu_worker():
    override = load("docker-compose.gpu.yaml")["services"]
    worker = override["airflow-worker-gpu"]
    assert worker["extends"] == {"file": "docker-compose.yaml", "service": "airflow-worker"}
    queue = re.search(r"--queues (\S+)", worker["command"])[1]
    assert worker["environment"]["MATCHER_GPU_QUEUE"] == queue == "gpu"
    for service in ("airflow-dag-processor", "airflow-scheduler"):
        assert override[service]["environment"]["MATCHER_GPU_QUEUE"] == queue
    pool = worker["environment"]["MATCHER_GPU_POOL"]
    assert f"airflow pools set {pool} " in "\n".join(load("docker-compose.yaml")["services"]["airflow-init"]["command"])
    device = worker["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_gpu_routing_reaches_the_fine_tune_task():
    """With the override's variables, the parsed DAG puts fine_tune on the gpu queue and pool.

    Parsed in a fresh interpreter, as a dag-processor would: the routing is read when the DAG file
    is imported, so an import earlier in this test session would hide it.
    """
    code = (
        "import sys; from airflow.dag_processing.dagbag import DagBag;"
        "dag = DagBag(dag_folder=sys.argv[1]).dags['matcher_retraining'];"
        "fine_tune, parse = dag.get_task('train.fine_tune'), dag.get_task('parse.parse_shard');"
        "print(fine_tune.queue, fine_tune.pool, parse.queue)"
    )
    env = {**os.environ, "MATCHER_GPU_QUEUE": "gpu", "MATCHER_GPU_POOL": "gpu"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dags" / "matcher_retraining.py")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    fine_tune_queue, fine_tune_pool, parse_queue = result.stdout.splitlines()[-1].split()
    assert (fine_tune_queue, fine_tune_pool) == ("gpu", "gpu")
    assert parse_queue != "gpu"


def test_dockerfile_extends_the_pinned_official_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"apache-airflow==([\d.]+)", (ROOT / "requirements.txt").read_text())[1]
    assert re.search(rf"^FROM apache/airflow:{re.escape(pinned)}-python3\.11$", dockerfile, re.MULTILINE)
    assert "requirements.txt" in dockerfile and "_PIP_ADDITIONAL_REQUIREMENTS" not in dockerfile


def test_the_native_celery_topology_has_compose_s_queues_pools_and_settings():
    """`make up-celery` (include/devtools/celery_topology.py) and the compose files describe one topology."""
    from include.devtools import celery_topology

    compose, gpu = load("docker-compose.yaml"), load("docker-compose.gpu.yaml")
    services = {**compose["services"], **{k: v for k, v in gpu["services"].items() if "command" in v}}
    compose_queues = {
        re.search(r"--queues (\S+)", service["command"])[1]
        for service in services.values()
        if isinstance(service.get("command"), str) and service["command"].startswith("celery worker")
    }
    assert set(celery_topology.QUEUES.values()) == compose_queues == {"default", "gpu"}
    assert gpu["services"]["airflow-worker-gpu"]["command"].endswith(
        f"--concurrency {celery_topology.WORKER_CONCURRENCY['worker-gpu']}"
    )
    for key, value in celery_topology.GPU_ROUTING.items():
        assert gpu["x-gpu-routing"][key] == value
    init = "\n".join(compose["services"]["airflow-init"]["command"])
    for pool, slots in celery_topology.POOLS.items():
        assert f"airflow pools set {pool} {slots} " in init
    common = compose["x-airflow-common"]["environment"]
    native = celery_topology.airflow_env(
        {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1"}
    )
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
    ):
        assert str(common[key]).lower() == native[key].lower(), key
    for key in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__BROKER_URL",
    ):
        assert common[key].split("://")[0] == native[key].split("://")[0], key  # same drivers, other hosts
    assert native["AIRFLOW__API__HOST"] == "127.0.0.1" and "127.0.0.1" in native["AIRFLOW__CELERY__BROKER_URL"]
