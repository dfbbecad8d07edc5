"""The Matcher page's FastAPI app: its routes, each behind :mod:`matcher_ui.auth`.

FastAPI's open /docs and /openapi.json are switched off. Links on the pages are relative, so the
page works wherever the API server mounts it; links to Airflow's own views move Airflow's window
(``static/matcher.js``), as Airflow's iframe sandbox forbids a frame to navigate it.
"""

from __future__ import annotations

import time
from typing import Annotated

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from include.matcher.foundations.errors import MatcherError, StorageUnavailable
from matcher_ui.auth import login_or_error, may_read_the_matcher_dag, same_origin, security_headers
from matcher_ui.live import challenger_comparison, production_loaded, production_matches, version_comparison

# A query longer than any CV is cut: the model reads 256 tokens of it anyway.
MAX_QUERY_CHARS = 20_000
STATIC_FILES = {"matcher.js": "text/javascript", "matcher.css": "text/css"}

app = FastAPI(
    title="Matcher",
    description="CV-to-job matcher: model versions and gate decisions",
    dependencies=[Depends(may_read_the_matcher_dag)],
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)
app.middleware("http")(security_headers)
app.exception_handler(HTTPException)(login_or_error)


@app.exception_handler(StorageUnavailable)
async def storage_unavailable(request: Request, error: StorageUnavailable) -> HTMLResponse:
    """S3 failing past its retries is an outage, said so with a 503 (try again), never a "not found"."""
    from include.matcher.pages.dashboard import message_page

    return HTMLResponse(
        message_page("Storage unavailable", f"The registry and reports cannot be read right now: {error}", "refuse"),
        status_code=StorageUnavailable.status,
        headers={"Retry-After": "30"},
    )


def _context():
    from include.airflow_support import s3_storage
    from include.matcher.foundations.settings import Locations

    return s3_storage(), Locations.from_env()


@app.get("/", response_class=HTMLResponse)
def matcher_page() -> str:
    """The page. A search is a POST (:func:`matcher_search`): a ``?q=`` here is not searched, so no
    query travels in a URL, where access logs and browser history would keep it. Opening the page
    starts loading production's model, so the first search does not wait for it."""
    from include.matcher.pages.dashboard import render

    storage, locations = _context()
    return render(storage, locations, model_loaded=production_loaded(storage, locations))


@app.post("/", response_class=HTMLResponse, dependencies=[Depends(same_origin)])
def matcher_search(user: GetUserDep, q: Annotated[str, Form(max_length=MAX_QUERY_CHARS * 4)] = "") -> str:
    """Production's top candidates for the posted job description, and the side-by-side view; each
    search (both views) is one record in the search log, which keeps a hash of the query, never it."""
    from include.matcher.foundations.models import NotAModel
    from include.matcher.pages.dashboard import render
    from include.matcher.serving.search import NoSnapshot, SnapshotMismatch

    storage, locations = _context()
    matches, error, comparison, seconds = None, None, None, None
    if q.strip():
        query = q[:MAX_QUERY_CHARS]
        started = time.perf_counter()
        try:
            matches = production_matches(query, storage, locations, user=user.get_name())
        except (LookupError, NoSnapshot, SnapshotMismatch, NotAModel, OSError) as problem:
            error = str(problem)
        seconds = time.perf_counter() - started
        comparison = challenger_comparison(query, storage, locations, user=user.get_name())
    return render(storage, locations, query=q, matches=matches, error=error, comparison=comparison, seconds=seconds)


@app.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    from include.matcher.foundations.templating import STATIC

    if name not in STATIC_FILES:
        raise HTTPException(status_code=404, detail="no such file")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


@app.get("/report")
def validation_report(run: str) -> JSONResponse:
    from include.matcher.pages.dashboard import report

    storage, locations = _context()
    try:
        return JSONResponse(report(storage, locations, run).to_json())
    except StorageUnavailable:
        raise
    except Exception as error:  # a missing or malformed run name is the caller's problem
        raise HTTPException(status_code=404, detail=f"no validation report for run {run!r}") from error


@app.get("/report.html", response_class=HTMLResponse)
def validation_report_page(run: str) -> HTMLResponse:
    from include.matcher.pages.dashboard import report_html, unknown_report_page

    storage, locations = _context()
    try:
        return HTMLResponse(report_html(storage, locations, run))
    except StorageUnavailable:
        raise
    except Exception:  # a missing, malformed or unreadable report: a page that says so
        return HTMLResponse(unknown_report_page(run), status_code=404)


@app.get("/run", response_class=HTMLResponse)
def dag_run_tab(dag_id: str, run_id: str) -> HTMLResponse:
    """The "Validation report" tab of a Dag Run page in Airflow: that night's report."""
    from include.matcher.foundations.settings import RETRAINING_DAG_ID
    from include.matcher.pages.dashboard import message_page, report_html

    if dag_id != RETRAINING_DAG_ID:
        return HTMLResponse(
            message_page("No validation report", f"Only {RETRAINING_DAG_ID} runs validate a model; {dag_id} does not.")
        )
    storage, locations = _context()
    try:
        name = locations.run_uri(run_id).rstrip("/").rsplit("/", 1)[-1]
        return HTMLResponse(report_html(storage, locations, name))
    except StorageUnavailable:
        raise
    except Exception:
        return HTMLResponse(
            message_page(
                "No validation report yet",
                f"Run {run_id} has not reached validation (nothing new to train on, still running, or it failed "
                "before); its tasks' logs say why.",
            )
        )


def _page(render, *args) -> HTMLResponse:
    """A page, or one that says what was wrong: not found (a missing version, a card not written) is a
    404, input that cannot be used a 4xx of its kind (:mod:`~include.matcher.foundations.errors`); an
    S3 outage goes to :func:`storage_unavailable` (503)."""
    from include.matcher.pages.dashboard import message_page

    try:
        return HTMLResponse(render(*args))
    except StorageUnavailable:
        raise
    except MatcherError as problem:
        title = "Not found" if problem.status == 404 else "Cannot do that"
        return HTMLResponse(message_page(title, str(problem), "refuse"), status_code=problem.status)
    except (LookupError, ValueError) as problem:
        return HTMLResponse(message_page("Not found", str(problem), "refuse"), status_code=404)


@app.get("/version", response_class=HTMLResponse)
def version_page(v: str) -> HTMLResponse:
    from include.matcher.pages.versions import version_page as render

    return _page(render, *_context(), v)


@app.get("/card", response_class=HTMLResponse)
def model_card(v: str | None = None, run: str | None = None) -> HTMLResponse:
    from include.matcher.pages.versions import card_page

    storage, locations = _context()
    return _page(lambda: card_page(storage, locations, version=v, run=run if not v else None))


@app.get("/cv", response_class=HTMLResponse)
def cv_record(key: str) -> HTMLResponse:
    from include.matcher.pages.versions import cv_page

    return _page(cv_page, *_context(), key)


@app.get("/compare", response_class=HTMLResponse)
def compare(a: str | None = None, b: str | None = None) -> HTMLResponse:
    from include.matcher.pages.versions import compare_page

    storage, locations = _context()
    return _page(compare_page, storage, locations, version_comparison(storage), a, b)


@app.post("/compare", response_class=HTMLResponse, dependencies=[Depends(same_origin)])
def compare_rankings(
    user: GetUserDep,
    a: str | None = None,
    b: str | None = None,
    q: Annotated[str, Form(max_length=MAX_QUERY_CHARS * 4)] = "",
) -> HTMLResponse:
    from include.matcher.pages.versions import compare_page

    storage, locations = _context()
    query = q[:MAX_QUERY_CHARS] if q.strip() else None
    return _page(compare_page, storage, locations, version_comparison(storage), a, b, query, user.get_name())


@app.get("/rollback", response_class=HTMLResponse)
def rollback_confirmation(v: str) -> HTMLResponse:
    from include.matcher.pages.versions import rollback_page

    return _page(rollback_page, *_context(), v)


@app.post("/rollback", response_class=HTMLResponse, dependencies=[Depends(same_origin)])
def start_rollback(request: Request, v: Annotated[str, Form(max_length=200)]) -> HTMLResponse:
    """Starts the matcher_rollback DAG through Airflow's own REST API, as the person who confirmed
    (their token, their permissions): someone allowed to read but not to trigger gets Airflow's 403."""
    from matcher_ui.rollback import trigger_rollback

    return trigger_rollback(request, v)
