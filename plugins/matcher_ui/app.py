"""The Matcher page's FastAPI app: its routes, each behind :mod:`matcher_ui.auth`.

FastAPI's open /docs and /openapi.json are switched off. Links on the pages are relative, so the
page works wherever the API server mounts it.
"""

from __future__ import annotations

from typing import Annotated

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, Form, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse

from matcher_ui.auth import login_or_error, may_read_the_matcher_dag, same_origin, security_headers
from matcher_ui.live import challenger_comparison, production_matches

# A query longer than any CV is cut: the model reads 256 tokens of it anyway.
MAX_QUERY_CHARS = 20_000

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


def _context():
    from include.airflow_support import s3_storage
    from include.matcher.foundations.settings import Locations

    return s3_storage(), Locations.from_env()


@app.get("/", response_class=HTMLResponse)
def matcher_page() -> str:
    """The page. A search is a POST (:func:`matcher_search`): a ``?q=`` here is not searched, so no
    query travels in a URL, where access logs and browser history would keep it."""
    from include.matcher.pages.dashboard import render, search_box

    storage, locations = _context()
    return render(storage, locations, search=search_box(None, None, None))


@app.post("/", response_class=HTMLResponse, dependencies=[Depends(same_origin)])
def matcher_search(user: GetUserDep, q: Annotated[str, Form(max_length=MAX_QUERY_CHARS * 4)] = "") -> str:
    """Production's top candidates for the posted job description, and the side-by-side view; each
    search (both views) is one record in the search log, which keeps a hash of the query, never it."""
    from include.matcher.foundations.models import NotAModel
    from include.matcher.pages.dashboard import render, search_box
    from include.matcher.serving.search import NoSnapshot, SnapshotMismatch

    storage, locations = _context()
    matches, error, comparison = None, None, ""
    if q.strip():
        query = q[:MAX_QUERY_CHARS]
        try:
            matches = production_matches(query, storage, locations, user=user.get_name())
        except (LookupError, NoSnapshot, SnapshotMismatch, NotAModel, OSError) as problem:
            error = str(problem)
        comparison = challenger_comparison(query, storage, locations, user=user.get_name())
    return render(storage, locations, search=search_box(q, matches, error, comparison))


@app.get("/report")
def validation_report(run: str) -> JSONResponse:
    from include.matcher.pages.dashboard import report

    storage, locations = _context()
    try:
        return JSONResponse(report(storage, locations, run).to_json())
    except Exception as error:  # a missing or malformed run name is the caller's problem
        raise HTTPException(status_code=404, detail=f"no validation report for run {run!r}") from error


@app.get("/report.html", response_class=HTMLResponse)
def validation_report_page(run: str) -> HTMLResponse:
    from include.matcher.pages.dashboard import report_html, unknown_report_page

    storage, locations = _context()
    try:
        return HTMLResponse(report_html(storage, locations, run))
    except Exception:  # a missing, malformed or unreadable report: a page that says so
        return HTMLResponse(unknown_report_page(run), status_code=404)
