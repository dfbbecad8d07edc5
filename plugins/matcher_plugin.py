"""Adds a "Matcher" page to the Airflow UI: model versions, production, gate decisions, reports.

The page is served by a FastAPI app mounted at /matcher on the API server; the HTML comes from
include.matcher.pages.dashboard, which reads the registry and the run reports on S3.

Airflow does not authenticate a plugin's app (a mounted app inherits none of the API server's
dependencies), so this one does it itself: every route requires a user whom the configured auth
manager (SimpleAuthManager, FabAuthManager, ...) lets see plugins, from the same JWT (bearer header
or the UI's cookie) as the rest of the API server. A browser without a session is sent to the
login page; anything else gets 401. FastAPI's open /docs and /openapi.json are switched off.
Every page is rendered here from JSON and escaped, and served with a Content-Security-Policy that
forbids script, so nothing written to the work bucket can run in the Airflow origin.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from include.matcher.foundations.settings import RETRAINING_DAG_ID

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)

log = logging.getLogger(__name__)


def may_read_the_matcher_dag(user: GetUserDep) -> None:
    """Authenticated (401/403 otherwise, by ``get_user``) and allowed to read the pipeline's DAG."""
    from airflow.api_fastapi.app import get_auth_manager

    if not get_auth_manager().is_authorized_dag(method="GET", user=user, details=DagDetails(id=RETRAINING_DAG_ID)):
        raise HTTPException(status_code=403, detail=f"not allowed to read the {RETRAINING_DAG_ID} DAG")


app = FastAPI(
    title="Matcher",
    description="CV-to-job matcher: model versions and gate decisions",
    dependencies=[Depends(may_read_the_matcher_dag)],
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@app.middleware("http")
async def security_headers(request: Request, call_next):
    response = await call_next(request)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@app.exception_handler(HTTPException)
async def login_or_error(request: Request, error: HTTPException):
    """A browser that is not logged in goes to Airflow's login page and back; API callers get the status."""
    if error.status_code == 401 and "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(
            get_auth_manager().get_url_login(next_url=quote(str(request.url), safe=":/?=&")), status_code=303
        )
    return await http_exception_handler(request, error)


def _context():
    from include.airflow_support import s3_storage
    from include.matcher.foundations.settings import Locations

    return s3_storage(), Locations.from_env()


_matchers: dict[str, object] = {}


def production_matches(query: str, storage, k: int = 10):
    """Production's top stored candidates for ``query``; the model is loaded once per production version."""
    from include.matcher.foundations.pointers import read_production
    from include.matcher.foundations.settings import Locations
    from include.matcher.serving.matcher import VectorMatcher

    pointer = read_production(storage, Locations.from_env().registry)
    if pointer is None:
        raise LookupError("no model is in production yet")
    if pointer["version"] not in _matchers:
        _matchers.clear()
        _matchers[pointer["version"]] = VectorMatcher(model_name="production", storage=storage)
    return _matchers[pointer["version"]].top_candidates(query, k=k)


_side_by_side = None


def challenger_comparison(query: str, storage, locations, k: int = 10) -> str:
    """The side-by-side table of production and the latest candidate, when that candidate is not production."""
    global _side_by_side
    from include.matcher.foundations.pointers import read_production
    from include.matcher.pages.dashboard import run_reports, side_by_side_table, side_by_side_unavailable
    from include.matcher.serving.comparison import SideBySide, latest_challenger

    production = read_production(storage, locations.registry)
    challenger = latest_challenger(run_reports(storage, locations)[0], production and production["version"])
    if challenger is None:
        return ""
    if _side_by_side is None:
        _side_by_side = SideBySide(storage)
    try:
        ranked = _side_by_side.rank(challenger, query, k)
    except Exception as error:  # the view is optional: a deleted or damaged vectors file must not take the page
        log.warning("side-by-side view unavailable for %s: %s", challenger.run, error)
        return side_by_side_unavailable(challenger)
    return side_by_side_table(challenger, ranked)


@app.get("/", response_class=HTMLResponse)
def matcher_page(q: str | None = None) -> str:
    from include.matcher.foundations.models import NotAModel
    from include.matcher.pages.dashboard import render, search_box
    from include.matcher.serving.search import NoSnapshot, SnapshotMismatch

    storage, locations = _context()
    matches, error, comparison = None, None, ""
    if q and q.strip():
        try:
            matches = production_matches(q[:20_000], storage)
        except (LookupError, NoSnapshot, SnapshotMismatch, NotAModel, OSError) as problem:
            error = str(problem)
        comparison = challenger_comparison(q[:20_000], storage, locations)
    return render(storage, locations, search=search_box(q, matches, error, comparison))


@app.get("/report")
def validation_report(run: str) -> JSONResponse:
    from include.matcher.pages.dashboard import report

    storage, locations = _context()
    try:
        return JSONResponse(report(storage, locations, run))
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


class MatcherPlugin(AirflowPlugin):
    name = "matcher"
    fastapi_apps = [{"app": app, "url_prefix": "/matcher", "name": "Matcher"}]
    # url_route: the UI shows the page inside Airflow (at /plugin/matcher), in the same tab.
    external_views = [
        {"name": "Matcher", "href": "/matcher/", "destination": "nav", "category": "browse", "url_route": "matcher"}
    ]
