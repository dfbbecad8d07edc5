"""A person approves each promotion, for real: ``airflow standalone``, its REST API, two nights.

Each night's gate passes by arrangement (production is a model every candidate beats). With
``require_approval`` the run waits in ``awaiting_input`` at ``approve`` (Airflow's ApprovalOperator)
until someone answers through the API: a rejection skips ``promote`` (the refresh still runs) and
leaves production as it was; marking ``approve`` successful by hand records no decision, so ``promote``
refuses; an approval promotes. Who decided and how is kept in the night's report.
"""

from __future__ import annotations

import time

import requests

from include.matcher.foundations.pointers import read_production
from include.matcher.stages.validation_report import read_report
from tests.helpers import ARRANGED_PROMOTION, BEATEN_VERSION

DAG = "matcher_retraining"
CONF = {"epochs": 1, "learning_rate": 5e-5, **ARRANGED_PROMOTION, "require_approval": True}


def task_state(server, run_id: str, task_id: str) -> str | None:
    return task(server, run_id, task_id)["state"]


def wait_for_state(server, run_id: str, task_id: str, wanted: str, timeout_s: float = 1200) -> None:
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        state = task_state(server, run_id, task_id)
        if state == wanted:
            return
        if state in ("failed", "upstream_failed", "skipped"):
            break
        time.sleep(3)
    raise AssertionError(f"{task_id} of {run_id} is {state!r}, not {wanted!r}; server log: {server.log_path}")


def night_awaiting_approval(server, **conf) -> str:
    run = server.api("POST", f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {**CONF, **conf}}).json()
    wait_for_state(server, run["dag_run_id"], "approve", "awaiting_input")
    return run["dag_run_id"]


def answer(server, run_id: str, option: str) -> dict:
    path = f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
    request = server.api("GET", path).json()
    response = server.api("PATCH", path, json={"chosen_options": [option], "params_input": {}}).json()
    return {"request": request, "response": response}


def answered_run(server, run_id: str, option: str, timeout_s: float = 900) -> tuple[dict, dict]:
    """Answer the approval, then wait for the run to end: (the first exchange, the finished run).

    Answered within about a second of the pause, Airflow 3.3's LocalExecutor can still be reporting
    the first workload when the resumed one starts; it kills the resumed one, and the task's retry
    asks again. A person would answer the new request; so does this, the same way (each try's
    decision is recorded; no promotion without one)."""
    exchange = answer(server, run_id, option)
    answered_try = task(server, run_id, "approve")["try_number"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = server.api("GET", f"/dags/{DAG}/dagRuns/{run_id}").json()
        if run["state"] in ("success", "failed"):
            return exchange, run
        approve = task(server, run_id, "approve")
        if approve["state"] == "awaiting_input" and approve["try_number"] > answered_try:
            answer(server, run_id, option)
            answered_try = approve["try_number"]
        time.sleep(3)
    raise TimeoutError(f"run {run_id} did not finish in {timeout_s:.0f} s; server log: {server.log_path}")


def task(server, run_id: str, task_id: str) -> dict:
    return server.api("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}").json()


def report_of(server, storage, run_id: str):
    run_uri = server.locations.run_uri(run_id)
    return read_report(storage.get_bytes(f"{run_uri}/candidate/validation_report.json"))


def test_a_rejected_promotion_keeps_production_and_an_approved_one_promotes(airflow_server):
    from include.matcher.foundations.storage import Storage

    server, storage = airflow_server, Storage()
    server.api("PATCH", f"/dags/{DAG}", json={"is_paused": False})

    rejected = night_awaiting_approval(server)
    assert task_state(server, rejected, "promote") in (None, "none", "scheduled")  # waiting, not promoted yet
    # Only the deployment's reviewers (MATCHER_REVIEWERS=admin) may answer: Airflow refuses an operator.
    path = f"/dags/{DAG}/dagRuns/{rejected}/taskInstances/approve/-1/hitlDetails"
    refused = requests.patch(
        f"{server.url}/api/v2{path}",
        json={"chosen_options": ["Approve"], "params_input": {}},
        headers={"Authorization": f"Bearer {server.token_of('operator')}"},
        timeout=60,
    )
    assert refused.status_code == 403, refused.text
    assert task_state(server, rejected, "approve") == "awaiting_input"
    waiting = report_of(server, storage, rejected)
    assert waiting.approval is None and waiting.approval_request.reviewers == ["admin"]
    assert waiting.approval_request.deadline > waiting.approval_request.requested_at
    exchange, finished = answered_run(server, rejected, "Reject")
    body = exchange["request"]["body"]
    assert "The gate passed candidate" in body and "bias audit: lowest impact ratio" in body
    assert "| black_female |" in body and "/matcher/report.html?run=" in body
    assert "Who may answer: `admin`." in body and "With no answer by **" in body
    assert exchange["request"]["assigned_users"] == [{"id": "admin", "name": "admin"}]
    assert exchange["request"]["options"] == ["Approve", "Reject"]
    assert finished["state"] == "success"
    assert task_state(server, rejected, "promote") == "skipped"
    assert task_state(server, rejected, "refresh_embeddings.publish") == "success"  # the refresh still runs
    assert read_production(storage, server.locations.registry).version == BEATEN_VERSION
    kept = report_of(server, storage, rejected).approval
    assert kept.state == "rejected" and kept.by == server.username

    # "Mark as success" on the waiting approve task records no decision: promote refuses, at once.
    forced = night_awaiting_approval(server, force_retrain=True)
    server.api("PATCH", f"/dags/{DAG}/dagRuns/{forced}/taskInstances/approve", json={"new_state": "success"})
    assert server.wait_for_run(DAG, forced, timeout_s=900)["state"] == "failed"
    assert task_state(server, forced, "approve") == "success" and task_state(server, forced, "promote") == "failed"
    assert read_production(storage, server.locations.registry).version == BEATEN_VERSION
    assert report_of(server, storage, forced).approval is None

    approved = night_awaiting_approval(server, force_retrain=True)
    assert answered_run(server, approved, "Approve")[1]["state"] == "success"
    assert task_state(server, approved, "promote") == "success"
    report = report_of(server, storage, approved)
    assert read_production(storage, server.locations.registry).version == report.version
    assert report.approval.state == "approved" and report.approval.by == server.username
    card = storage.get_bytes(f"{server.locations.run_uri(approved)}/candidate/README.md").decode()
    assert f"Promotion approved by {server.username}" in card
