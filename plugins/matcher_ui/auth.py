"""Every route of the Matcher page behind Airflow's login, and served so that nothing on it can run.

Airflow does not authenticate a plugin's app (a mounted app inherits none of the API server's
dependencies), so this one does it itself: every route requires a user whom the configured auth
manager (SimpleAuthManager, FabAuthManager, ...) lets read the retraining DAG, from the same JWT
(bearer header or the UI's cookie) as the rest of the API server. A browser without a session is sent
to the login page; anything else gets 401. Every page is rendered from JSON and escaped, and served
with a Content-Security-Policy that allows no script but the page's own file, so nothing written to
the work bucket can run in the Airflow origin.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse

from include.matcher.foundations.settings import RETRAINING_DAG_ID

# Script only from the page's own files (the theme and Airflow's links, static/matcher.js): no inline
# script, so no text read from the bucket can run even if it reached the page unescaped.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)


def may_read_the_matcher_dag(user: GetUserDep) -> None:
    """Authenticated (401/403 otherwise, by ``get_user``) and allowed to read the pipeline's DAG."""
    from airflow.api_fastapi.app import get_auth_manager

    if not get_auth_manager().is_authorized_dag(method="GET", user=user, details=DagDetails(id=RETRAINING_DAG_ID)):
        raise HTTPException(status_code=403, detail=f"not allowed to read the {RETRAINING_DAG_ID} DAG")


def same_origin(request: Request) -> None:
    """A form post only from Airflow's own pages (cross-site request forgery): a browser names the
    page that sent it (``Origin``, else ``Sec-Fetch-Site``); one from another site is refused. A
    client that is no browser sends neither and authenticates with its bearer token."""
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("x-forwarded-host") or request.headers.get("host")
        if urlsplit(origin).netloc != host:
            raise HTTPException(status_code=403, detail="a search is posted from the Matcher page itself")
        return
    if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        raise HTTPException(status_code=403, detail="a search is posted from the Matcher page itself")


async def security_headers(request: Request, call_next):
    response = await call_next(request)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def login_or_error(request: Request, error: HTTPException):
    """A browser that is not logged in goes to Airflow's login page and back; API callers get the status."""
    if error.status_code == 401 and "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(
            get_auth_manager().get_url_login(next_url=quote(str(request.url), safe=":/?=&")), status_code=303
        )
    return await http_exception_handler(request, error)
