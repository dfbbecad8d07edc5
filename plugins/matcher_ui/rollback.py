"""The Matcher page's "roll back to this version": the matcher_rollback DAG, started as the person who confirmed."""

from __future__ import annotations

import requests
from fastapi import Request
from fastapi.responses import HTMLResponse

ROLLBACK_DAG_ID = "matcher_rollback"


def airflow_root(request: Request) -> str:
    """Airflow's own address as this request reached it: the Matcher app is mounted at ``<root>/matcher``."""
    root = str(request.base_url).rstrip("/")
    return root[: -len("/matcher")] if root.endswith("/matcher") else root


def user_token(request: Request) -> str | None:
    """The caller's JWT: the bearer header of an API client, or the UI's session cookie."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:]
    return request.cookies.get("_token")


def trigger_rollback(request: Request, version: str) -> HTMLResponse:
    from include.matcher.pages.dashboard import message_page
    from include.matcher.pages.versions import version_named
    from matcher_ui.app import _context

    storage, locations = _context()
    try:
        found = version_named(storage, locations, version)
    except LookupError as problem:
        return HTMLResponse(message_page("Not found", str(problem), "refuse"), status_code=404)
    if found.entry is None:
        return HTMLResponse(
            message_page("Cannot roll back", f"{version} was never promoted: only a registry version can.", "refuse"),
            status_code=400,
        )
    root, token = airflow_root(request), user_token(request)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.post(
        f"{root}/api/v2/dags/{ROLLBACK_DAG_ID}/dagRuns",
        json={"logical_date": None, "conf": {"version": version}},
        headers=headers,
        timeout=30,
    )
    if not response.ok:
        detail = response.json().get("detail", response.text) if response.content else response.reason
        return HTMLResponse(
            message_page("Rollback not started", f"Airflow refused to start {ROLLBACK_DAG_ID}: {detail}", "refuse"),
            status_code=response.status_code,
        )
    run = response.json()
    paused = requests.get(f"{root}/api/v2/dags/{ROLLBACK_DAG_ID}", headers=headers, timeout=30).json().get("is_paused")
    return HTMLResponse(
        render_started(run["dag_run_id"], version, paused=bool(paused)),
        status_code=201,
    )


def render_started(run_id: str, version: str, paused: bool) -> str:
    from include.matcher.foundations.templating import render_template

    return render_template(
        "rollback_started.html",
        title=f"Rollback to {version} started",
        run_id=run_id,
        version=version,
        dag=ROLLBACK_DAG_ID,
        paused=paused,
    )
