"""The embedded default as a user runs it: SeaweedFS plus ``airflow standalone`` on free loopback ports.

The server gets its own AIRFLOW_HOME (SQLite), this project's dags and plugins, and the ``aws_default``
connection through the environment, exactly as ``make up`` sets them; demo data is uploaded to a
fresh bucket first. :class:`AirflowServer` talks to it through the public REST API, with a JWT from
``/auth/token`` for the admin user whose password standalone generates.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.helpers import ARRANGED_PROMOTION, PROJECT_ROOT, aws_connection_json

STARTUP_TIMEOUT_S = 420
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"


@dataclass
class AirflowServer:
    url: str
    username: str
    password: str
    token: str
    locations: object
    log_path: Path
    home: Path

    def token_of(self, username: str) -> str:
        """A JWT for another of the server's users (their password is in the generated file)."""
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        response = requests.post(
            f"{self.url}/auth/token", json={"username": username, "password": passwords[username]}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        response = requests.request(
            method, f"{self.url}/api/v2{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=60, **kwargs
        )
        response.raise_for_status()
        return response

    def wait_for_run(self, dag_id: str, run_id: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(3)
        raise TimeoutError(f"{dag_id} run {run_id} did not finish in {timeout_s:.0f} s; server log: {self.log_path}")


def _wait(condition, timeout_s: float, what: str, log_path: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except (requests.RequestException, OSError, ValueError, KeyError):
            pass
        time.sleep(2)
    tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s; end of {log_path}:\n{tail}")


@pytest.fixture(scope="module")
def airflow_server(s3_server, demo_night_folder, tmp_path_factory):
    from include.devtools import embedded_s3
    from include.matcher.foundations.settings import Locations
    from tests.helpers import a_bucket_with_the_demo_night, remove_buckets

    # The page's checks need a promotion: arranged, not hoped of a tiny training run.
    locations, storage = a_bucket_with_the_demo_night("ui", demo_night_folder, tmp_path_factory.mktemp("zeroed"))

    home = tmp_path_factory.mktemp("airflow-standalone")
    port = embedded_s3.free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(PROJECT_ROOT),
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection_json(s3_server),
        **{var: getattr(locations, name) for name, var in Locations.ENV.items()},
        # Manual triggers only: unpausing a scheduled DAG would start the latest nightly run beside ours.
        "MATCHER_SCHEDULE": "none",
        # A deployment as `make up` runs it: a person approves each promotion; only `admin` may (the
        # `operator` account, allowed to act on DAGs, may not answer it). The trigger form's defaults
        # are this deployment's: a short training and a gate whose pass is arranged (production is a
        # model every candidate beats).
        "MATCHER_REQUIRE_APPROVAL": "true",
        "MATCHER_REVIEWERS": "admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,operator:op",
        "MATCHER_RUN_DEFAULTS": json.dumps({"epochs": 1, "learning_rate": 5e-5, **ARRANGED_PROMOTION}),
        "MATCHER_PARSE_SHARD_SIZE": "20",
        "MATCHER_EMBED_SHARD_SIZE": "20",
    }
    log_path = home / "standalone.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(
            lambda: requests.get(f"{url}/api/v2/monitor/health", timeout=5).ok,
            STARTUP_TIMEOUT_S,
            "API server",
            log_path,
        )
        passwords = home / "simple_auth_manager_passwords.json.generated"
        credentials = _wait(lambda: json.loads(passwords.read_text()), 60, "admin password", log_path)
        username, password = "admin", credentials["admin"]
        token = requests.post(
            f"{url}/auth/token", json={"username": username, "password": password}, timeout=30
        ).json()["access_token"]
        server = AirflowServer(url, username, password, token, locations, log_path, home)
        _wait(
            lambda: server.api("GET", "/dags/matcher_retraining").ok,
            STARTUP_TIMEOUT_S,
            "matcher_retraining DAG",
            log_path,
        )
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        remove_buckets(storage, locations)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make browser-deps installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1440,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
