"""Adds a "Matcher" page to the Airflow UI: model versions, production, gate decisions, reports.

The page is served by a FastAPI app mounted at /matcher on the API server; the HTML comes from
include.matcher.dashboard, which reads the registry and the run reports on S3.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse

app = FastAPI(title="Matcher", description="CV-to-job matcher: model versions and gate decisions")


def _context():
    from include.airflow_support import s3_storage
    from include.matcher.settings import Locations

    return s3_storage(), Locations.from_env()


@app.get("/", response_class=HTMLResponse)
def matcher_page() -> str:
    from include.matcher.dashboard import render

    storage, locations = _context()
    return render(storage, locations)


@app.get("/report")
def validation_report(run: str) -> JSONResponse:
    from include.matcher.dashboard import report

    storage, locations = _context()
    try:
        return JSONResponse(report(storage, locations, run))
    except Exception as error:  # a missing or malformed run name is the caller's problem
        raise HTTPException(status_code=404, detail=f"no validation report for run {run!r}") from error


@app.get("/report.html", response_class=HTMLResponse)
def validation_report_page(run: str) -> str:
    from include.matcher.dashboard import report_html

    storage, locations = _context()
    try:
        return report_html(storage, locations, run)
    except Exception as error:  # a missing or malformed run name is the caller's problem
        raise HTTPException(status_code=404, detail=f"no validation report for run {run!r}") from error


class MatcherPlugin(AirflowPlugin):
    name = "matcher"
    fastapi_apps = [{"app": app, "url_prefix": "/matcher", "name": "Matcher"}]
    external_views = [{"name": "Matcher", "href": "/matcher/", "destination": "nav", "category": "browse"}]
