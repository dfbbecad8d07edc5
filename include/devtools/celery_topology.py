"""The production topology of docker-compose.yaml, run natively on one machine: ``make up-celery``.

Redis (Celery's broker) and PostgreSQL (Airflow's metadata database and Celery's result backend)
from Debian's packages, the embedded SeaweedFS, and Airflow 3.3 with the CeleryExecutor: api-server,
scheduler, dag-processor, triggerer and two Celery workers, one on the ``default`` queue and one on
the ``gpu`` queue, where ``MATCHER_GPU_QUEUE`` / ``MATCHER_GPU_POOL`` route ``fine_tune``. Everything
binds to 127.0.0.1 and lives under ``.local/celery/`` (PostgreSQL's data where its user can reach
it: :func:`postgres_home`); every process is started with a pid file and
``down`` stops exactly those pids.

    python -m include.devtools.celery_topology up | down | status | env | clean

The queue names, the pool and the routing variables are :data:`GPU_ROUTING`, :data:`QUEUES` and
:data:`POOLS`; ``tests/deploy/test_compose.py`` checks that docker-compose.yaml and
docker-compose.gpu.yaml say the same.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from include.devtools import embedded_s3
from include.matcher.foundations.settings import deployment_setting

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / ".local" / "celery"
PIDS, LOGS, S3_DIR = HOME / "pids", HOME / "logs", HOME / "s3"
BIN = Path(sys.executable).parent

GPU_ROUTING = {"MATCHER_GPU_QUEUE": "gpu", "MATCHER_GPU_POOL": "gpu"}
QUEUES = {"worker-default": "default", "worker-gpu": "gpu"}
POOLS = {"gpu": 1}  # one fine-tune at a time per GPU
WORKER_CONCURRENCY = {"worker-default": 2, "worker-gpu": 1}

PORTS = {
    "redis": int(deployment_setting("MATCHER_CELERY_REDIS_PORT")),
    "postgres": int(deployment_setting("MATCHER_CELERY_POSTGRES_PORT")),
    "api": int(deployment_setting("MATCHER_CELERY_API_PORT")),
    "s3": int(deployment_setting("MATCHER_CELERY_S3_PORT")),
}
APT_PACKAGES = ("redis-server", "postgresql")


class MissingPackage(RuntimeError):
    pass


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def ensure_packages() -> None:
    """Install Debian's redis-server and postgresql when missing (as root), else say what to run."""
    if shutil.which("redis-server") and postgres_bin():
        return
    command = ["apt-get", "install", "-y", "-q", *APT_PACKAGES]
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise MissingPackage(f"redis-server and postgresql are needed: sudo {' '.join(command)}")
    if subprocess.run(command, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(command, check=True, capture_output=True)


def database_url() -> str:
    return f"postgresql+psycopg2://airflow:airflow@127.0.0.1:{PORTS['postgres']}/airflow"


def airflow_env(s3_env: dict[str, str]) -> dict[str, str]:
    """The environment of every Airflow process: compose's x-airflow-common, on loopback ports."""
    env = {
        **os.environ,
        **s3_env,
        **GPU_ROUTING,
        "PYTHONPATH": str(ROOT),
        "AIRFLOW_HOME": str(HOME / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{PORTS['api']}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url(),
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{PORTS['redis']}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database_url(),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(PORTS["api"]),
        "AIRFLOW__API_AUTH__JWT_SECRET": "matcher-celery-topology-local-secret-0123456789abcdef",
        "AIRFLOW__API__SECRET_KEY": "matcher-celery-topology-local-secret",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TQDM_DISABLE": "1",
        "MATCHER_SCHEDULE": "none",
    }
    env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {
            "conn_type": "aws",
            "login": s3_env["AWS_ACCESS_KEY_ID"],
            "password": s3_env["AWS_SECRET_ACCESS_KEY"],
            "extra": {"endpoint_url": s3_env["AWS_ENDPOINT_URL_S3"], "region_name": "us-east-1"},
        }
    )
    return env


def start(name: str, command: list[str], env: dict | None = None, user: str | None = None) -> int:
    """Start ``command`` in its own session, logging to logs/<name>.log; its pid in pids/<name>.pid."""
    PIDS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    if user:
        command = ["runuser", "-u", user, "--", *command]
    with open(LOGS / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )
    (PIDS / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def running(name: str) -> int | None:
    """The pid started as ``name`` if that process is alive (a killed child not yet reaped is not)."""
    path = PIDS / f"{name}.pid"
    if not path.exists():
        return None
    pid = int(path.read_text())
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child and has exited
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if state in ("Z", "X") else pid


def stop(name: str, grace: float = 20.0) -> None:
    """SIGTERM the process group started as ``name``, SIGKILL what is left after ``grace`` seconds."""
    pid = running(name)
    if pid is not None:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while running(name) and time.monotonic() < deadline:
            time.sleep(0.3)
        if running(name):
            os.killpg(pid, signal.SIGKILL)
    (PIDS / f"{name}.pid").unlink(missing_ok=True)


def wait_for(check, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{what} did not come up in {seconds:.0f} s (logs in {LOGS})")


def postgres_home() -> Path:
    """Where PostgreSQL keeps its data and sockets.

    As root the server runs as the ``postgres`` user, who may not be able to enter the checkout (a
    ``mktemp -d`` folder or /root are 0700): its folder is then under /var/tmp, named after the
    checkout so two checkouts keep two databases. Otherwise it runs as the invoking user, under
    ``.local/celery/``. ``MATCHER_CELERY_POSTGRES_DIR`` overrides both.
    """
    if deployment_setting("MATCHER_CELERY_POSTGRES_DIR"):
        return Path(deployment_setting("MATCHER_CELERY_POSTGRES_DIR"))
    if os.geteuid() == 0:
        checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
        return Path("/var/tmp") / f"matcher-postgres-{checkout}"
    return HOME / "postgres-home"


def postgres_user() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def start_postgres() -> None:
    bin_dir, home, user = postgres_bin(), postgres_home(), postgres_user()
    data, sockets = home / "data", home / "sockets"
    for folder in (home, data, sockets):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if user:
            shutil.chown(folder, user, user)
    as_user = ["runuser", "-u", user, "--"] if user else []
    if not (data / "PG_VERSION").exists():
        initdb = subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
            capture_output=True,
            text=True,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed in {data}: {initdb.stderr.strip() or initdb.stdout.strip()}")
    start(
        "postgres",
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(PORTS["postgres"]),
            "-k",
            str(sockets),
        ],
        user=user,
    )
    psql = [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(PORTS["postgres"]), "-U", "postgres", "-tAc"]
    wait_for(lambda: subprocess.run([*psql, "select 1"], capture_output=True).returncode == 0, "postgres")
    if (
        subprocess.run(
            [*psql, "select 1 from pg_roles where rolname='airflow'"], capture_output=True, text=True
        ).stdout.strip()
        != "1"
    ):
        subprocess.run([*psql, "create role airflow login password 'airflow'"], check=True, capture_output=True)
        subprocess.run([*psql, "create database airflow owner airflow"], check=True, capture_output=True)


def up() -> dict:
    """Start what is not running yet; a start that fails half-way stops what this call started."""
    ensure_packages()
    HOME.mkdir(parents=True, exist_ok=True)
    started: list[str] = []
    try:
        return _up(started)
    except BaseException:
        for name in reversed(started):
            if name == "s3":
                embedded_s3.stop(S3_DIR)
            else:
                stop(name)
        raise


def _up(started: list[str]) -> dict:
    if not running("redis"):
        started.append("redis")
        start(
            "redis",
            ["redis-server", "--bind", "127.0.0.1", "--port", str(PORTS["redis"]), "--save", "", "--appendonly", "no"],
        )
    if not running("postgres"):
        started.append("postgres")
        start_postgres()
    if not embedded_s3.running(S3_DIR):
        started.append("s3")
        embedded_s3.start(S3_DIR, s3_port=PORTS["s3"], base_port=None)
    s3_env = s3_environment()
    env = airflow_env(s3_env)
    airflow = str(BIN / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    for pool, slots in POOLS.items():
        subprocess.run(
            [airflow, "pools", "set", pool, str(slots), "matcher GPU pool"], env=env, check=True, capture_output=True
        )
    for name, command in {
        "api-server": [airflow, "api-server"],
        "scheduler": [airflow, "scheduler"],
        "dag-processor": [airflow, "dag-processor"],
        "triggerer": [airflow, "triggerer"],
    }.items():
        if not running(name):
            started.append(name)
            start(name, command, env)
    for name, queue in QUEUES.items():
        if not running(name):
            worker_env = {
                **env,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "include.airflow_support.worker_hostname",
                "MATCHER_WORKER_NAME": name,
            }
            started.append(name)
            start(
                name,
                [
                    airflow,
                    "celery",
                    "worker",
                    "--queues",
                    queue,
                    "--concurrency",
                    str(WORKER_CONCURRENCY[name]),
                    "--celery-hostname",
                    f"{name}@%h",
                    # Its log server would listen on every interface (Airflow has no host setting for
                    # it); the API server reads the task logs from this machine's disk instead.
                    "--skip-serve-logs",
                ],
                worker_env,
            )
    api = f"http://127.0.0.1:{PORTS['api']}"
    wait_for(lambda: urllib.request.urlopen(f"{api}/api/v2/monitor/health", timeout=5).status == 200, "api-server")
    return {"api": api, "user": "admin", "password": admin_password(), "s3": s3_env["AWS_ENDPOINT_URL_S3"]}


def s3_environment() -> dict[str, str]:
    access, secret = embedded_s3.load_or_create_keys(S3_DIR)
    return {
        "AWS_ACCESS_KEY_ID": access,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{PORTS['s3']}",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def admin_password() -> str | None:
    path = HOME / "airflow" / "simple_auth_manager_passwords.json.generated"
    return json.loads(path.read_text()).get("admin") if path.exists() else None


SERVICES = (
    "worker-gpu",
    "worker-default",
    "triggerer",
    "dag-processor",
    "scheduler",
    "api-server",
    "postgres",
    "redis",
)


def down() -> None:
    for name in SERVICES:
        stop(name)
    embedded_s3.stop(S3_DIR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("up", "down", "status", "env", "clean"))
    command = parser.parse_args(argv).command
    try:
        if command == "up":
            print(json.dumps(up(), indent=2))
        elif command == "down":
            down()
        elif command == "clean":  # down, and PostgreSQL's data too (it may live outside the checkout)
            down()
            shutil.rmtree(postgres_home(), ignore_errors=True)
        elif command == "status":
            print(json.dumps({name: running(name) for name in SERVICES}, indent=2))
        else:
            for key, value in sorted(airflow_env(s3_environment()).items()):
                if key.startswith(("AIRFLOW", "MATCHER", "AWS")):
                    print(f"export {key}='{value}'")
    except (MissingPackage, TimeoutError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
