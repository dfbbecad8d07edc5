"""Adds a "Matcher" page to the Airflow UI: model versions, production, gate decisions, reports, search.

The page is the FastAPI app in ``matcher_ui/app.py``, mounted at /matcher on the API server.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from matcher_ui.app import app


class MatcherPlugin(AirflowPlugin):
    name = "matcher"
    fastapi_apps = [{"app": app, "url_prefix": "/matcher", "name": "Matcher"}]
    # url_route: the UI shows the page inside Airflow (at /plugin/matcher), in the same tab.
    external_views = [
        {"name": "Matcher", "href": "/matcher/", "destination": "nav", "category": "browse", "url_route": "matcher"},
        # A tab on every Dag Run page: the night's validation report (other DAGs' runs say they have none).
        {
            "name": "Validation report",
            "href": "/matcher/run?dag_id={DAG_ID}&run_id={RUN_ID}",
            "destination": "dag_run",
            "url_route": "validation_report",
        },
    ]
