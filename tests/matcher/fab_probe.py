"""Run by test_plugin_auth in a fresh interpreter configured for FabAuthManager (the auth manager is
chosen once per process): logs in through FAB's real token endpoint and probes the Matcher routes.
Prints one JSON line of status codes."""

import json
import sys

from airflow.api_fastapi.app import create_app
from fastapi.testclient import TestClient

password = sys.argv[1]
client = TestClient(create_app(), follow_redirects=False)
statuses = {"anonymous": {}, "viewer": {}}
for route in ("/matcher/", "/matcher/report?run=night-24", "/matcher/report.html?run=night-24"):
    statuses["anonymous"][route] = client.get(route).status_code
statuses["browser_redirect"] = client.get("/matcher/", headers={"Accept": "text/html"}).headers.get("location", "")
login = client.post("/auth/token", json={"username": "viewer", "password": password})
token = login.json().get("access_token") if login.status_code in (200, 201) else None
statuses["login"] = login.status_code
for route in ("/matcher/", "/matcher/report?run=night-24", "/matcher/report.html?run=night-24"):
    response = client.get(route, headers={"Authorization": f"Bearer {token}"})
    statuses["viewer"][route] = response.status_code
statuses["page_shows_night"] = (
    "v-night-24" in client.get("/matcher/", headers={"Authorization": f"Bearer {token}"}).text
)
print("PROBE " + json.dumps(statuses), flush=True)  # a marked line: background threads may log after it
