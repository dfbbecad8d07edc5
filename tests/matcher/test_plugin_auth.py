"""The Matcher page inside the real Airflow API server (``create_app()``): behind Airflow's login on
every route, rendered from JSON with no script but its own file, and robust to a damaged report."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from include.matcher.foundations.uris import join_uri
from tests.helpers import aws_connection_json
from tests.matcher.pages.test_dashboard import put_night

ROUTES = [
    "/matcher/",
    "/matcher/report?run=night-24",
    "/matcher/report.html?run=night-24",
    "/matcher/run?dag_id=matcher_retraining&run_id=manual__night-24",
    "/matcher/version?v=v-night-24",
    "/matcher/card?v=v-night-24",
    "/matcher/compare?a=base&b=v-night-24",
    "/matcher/cv?key=CHEF/a.pdf",
    "/matcher/rollback?v=v-night-24",
    "/matcher/static/matcher.js",
]
NOT_SERVED = ["/matcher/docs", "/matcher/openapi.json", "/matcher/redoc"]  # FastAPI's open docs: off


@pytest.fixture
def api_server(s3_server, airflow_db, locations, storage, monkeypatch):
    """The API server app with the Matcher plugin, S3 through the aws_default connection, one night on record."""
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection_json(s3_server))
    for name, var in locations.ENV.items():
        monkeypatch.setenv(var, getattr(locations, name))
    put_night(storage, locations, "night-24", 0.7, True)
    from airflow.api_fastapi.app import create_app, get_auth_manager

    app = create_app()
    return TestClient(app, follow_redirects=False), get_auth_manager()


def token_for(auth_manager, role: str = "viewer") -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username=f"{role}-user", role=role))


def test_every_plugin_route_refuses_anonymous_callers(api_server):
    client, _ = api_server
    assert client.get("/api/v2/dags").status_code == 401  # Airflow's own API, for comparison
    for route in ROUTES:
        response = client.get(route)
        assert response.status_code in (401, 403), (route, response.status_code, response.text[:200])
        assert "night-24" not in response.text
    for route in NOT_SERVED:
        assert client.get(route).status_code == 404, route
    browser = client.get("/matcher/", headers={"Accept": "text/html"})
    assert (
        browser.status_code == 303
        and "/login" in browser.headers["location"]
        and "next=" in browser.headers["location"]
    )


def test_a_forged_or_expired_token_is_refused(api_server):
    client, auth_manager = api_server
    assert client.get("/matcher/", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 403
    expired = auth_manager.generate_jwt(
        __import__("airflow.api_fastapi.auth.managers.simple.user", fromlist=["x"]).SimpleAuthManagerUser(
            username="v", role="viewer"
        ),
        expiration_time_in_seconds=-10,
    )
    assert client.get("/matcher/", headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_logged_in_the_page_and_reports_render_without_script(api_server, storage, locations):
    client, auth_manager = api_server
    headers = {"Authorization": f"Bearer {token_for(auth_manager)}"}
    page = client.get("/matcher/", headers=headers)
    assert page.status_code == 200 and "v-night-24" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "default-src 'none'" in policy and "unsafe-eval" not in policy
    assert page.text.count("<script") == 1 and '<script src="static/matcher.js"></script>' in page.text
    script = client.get("/matcher/static/matcher.js", headers=headers)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.get("/matcher/static/..%2Fapp.py", headers=headers).status_code == 404
    client.cookies.set("_token", token_for(auth_manager, "admin"))  # the UI's session cookie works as well
    assert client.get("/matcher/report", params={"run": "night-24"}).json()["version"] == "v-night-24"
    client.cookies.clear()
    assert client.get("/matcher/docs", headers=headers).status_code == 404  # no open API docs, logged in or not
    assert client.get("/matcher/report", params={"run": "../etc"}, headers=headers).status_code == 404
    assert client.get("/matcher/report.html", params={"run": "night-99"}, headers=headers).status_code == 404

    # A stored HTML report is never served: the page is rendered from the JSON, escaped.
    storage.put_bytes(
        join_uri(locations.work, "runs", "night-24", "candidate", "validation_report.html"),
        b"<script>alert(1)</script>",
    )
    evil = storage.get_json(join_uri(locations.work, "runs", "night-24", "candidate", "validation_report.json"))
    evil.update(
        held_out={"count": 1},
        decision={"promote": True, "reason": "<script>steal()</script>", "primary_metric": "mrr@10"},
    )
    evil["candidate_metrics"]["per_category"] = {}
    evil["production"] = {"name": "base", "version": None}
    storage.put_json(join_uri(locations.work, "runs", "night-24", "candidate", "validation_report.json"), evil)
    report = client.get("/matcher/report.html", params={"run": "night-24"}, headers=headers)
    assert report.status_code == 200 and "&lt;script&gt;steal()" in report.text
    assert report.text.count("<script") == 1 and '<script src="static/matcher.js">' in report.text
    assert report.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_malformed_report_shows_as_unreadable_not_a_500(api_server, storage, locations):
    client, auth_manager = api_server
    headers = {"Authorization": f"Bearer {token_for(auth_manager)}"}
    storage.put_bytes(join_uri(locations.work, "runs", "night-25", "candidate", "validation_report.json"), b"{not json")
    storage.put_json(
        join_uri(locations.work, "runs", "night-26", "candidate", "validation_report.json"), {"created_at": 5}
    )
    page = client.get("/matcher/", headers=headers)
    assert page.status_code == 200 and "v-night-24" in page.text
    assert "night-25</td><td>unreadable" in page.text and "night-26</td><td>unreadable" in page.text
    missing = client.get("/matcher/report.html", params={"run": "night-25"}, headers=headers)
    assert missing.status_code == 404 and "No readable validation report" in missing.text


def test_airflow_loads_the_folder_as_one_plugin_and_nothing_else_as_a_module():
    """Airflow's own loader, on plugins/: one plugin, from the entry file; the package's other files are
    imported as ``matcher_ui.*`` by it, never loaded as top-level modules (``auth``, ``app``) of their own."""
    import sys

    from airflow._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory

    from tests.helpers import PROJECT_ROOT

    before = set(sys.modules)
    plugins, errors = _load_plugins_from_plugin_directory(str(PROJECT_ROOT / "plugins"))
    assert errors == {}
    assert [type(plugin).__name__ for plugin in plugins] == ["MatcherPlugin"]
    assert plugins[0].source.path == "matcher_ui/matcher_plugin.py"
    assert plugins[0].external_views[0]["href"] == "/matcher/"
    assert plugins[0].fastapi_apps[0]["url_prefix"] == "/matcher"
    assert not {"app", "auth", "live", "__init__"} & (set(sys.modules) - before)


def test_under_fab_auth_manager_too(s3_server, locations, storage, tmp_path):
    """The compose deployment's FabAuthManager: anonymous refused, a FAB Viewer logged in through
    FAB's own /auth/token sees the page."""
    import json
    import os
    import subprocess
    import sys

    from tests.helpers import PROJECT_ROOT

    pytest.importorskip("airflow.providers.fab", reason="apache-airflow-providers-fab is in requirements.txt")
    put_night(storage, locations, "night-24", 0.7, True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection_json(s3_server),
        "PYTHONPATH": str(PROJECT_ROOT),
        **{var: getattr(locations, name) for name, var in locations.ENV.items()},
    }

    def airflow(*args):
        subprocess.run([sys.executable, "-m", "airflow", *args], check=True, capture_output=True, env=env, timeout=600)

    airflow("db", "migrate")
    airflow(
        "users",
        "create",
        "--username",
        "viewer",
        "--password",
        "viewer-pass-1",
        "--role",
        "Viewer",
        "--firstname",
        "V",
        "--lastname",
        "V",
        "--email",
        "v@example.org",
    )
    probe = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tests" / "matcher" / "fab_probe.py"), "viewer-pass-1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    statuses = json.loads(next(line for line in probe.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert set(statuses["anonymous"].values()) <= {401, 403}, statuses
    assert "login" in statuses["browser_redirect"], statuses
    assert (
        statuses["login"] in (200, 201) and set(statuses["viewer"].values()) == {200} and statuses["page_shows_night"]
    ), statuses


def test_the_page_finds_the_same_candidates_as_the_cli(api_server, storage, locations):
    from tests.matcher.serving.test_search import promote_base_model_and_refresh
    from tests.matcher.test_cli import run_cli

    client, auth_manager = api_server
    promote_base_model_and_refresh(storage, locations)
    query = "Airline pilot for short-haul jets."
    expected = [json.loads(line)["id"] for line in run_cli("match", "--text", query, "--top", "10", "--json")]
    page = client.post("/matcher/", data={"q": query}, headers={"Authorization": f"Bearer {token_for(auth_manager)}"})
    assert page.status_code == 200 and "Production (v-base)" in page.text
    positions = [page.text.find(f'">{key}</a></td>') for key in expected]
    assert len(expected) == 5 and -1 not in positions and positions == sorted(positions)  # all five, in the same order
    assert client.post("/matcher/", data={"q": query}).status_code == 401  # the search is behind the login too
    # Each result links the CV's record: what is stored about it, never its text.
    headers = {"Authorization": f"Bearer {token_for(auth_manager)}"}
    assert f'href="cv?key={quote(expected[0])}"' in page.text
    from include.matcher.foundations import layout
    from tests.matcher.serving.test_search import CVS

    category, text = CVS[expected[0]]
    entry = {
        **{"key": expected[0], "etag": '"e"', "status": "parsed", "category": category},
        **{"kind": "txt", "chars": len(text), "size": len(text)},
    }
    storage.put_json(layout.ledger(locations.work), {"objects": {expected[0]: entry}, "jobs_file_etag": None})
    record = client.get("/matcher/cv", params={"key": expected[0]}, headers=headers)
    assert record.status_code == 200 and f"<th>category</th><td>{category}</td>" in record.text
    assert text[:40] not in record.text and f"/{expected[0]}</td>" in record.text  # its file, never its text
    assert client.get("/matcher/cv", params={"key": "CHEF/nobody.pdf"}, headers=headers).status_code == 404
    # A job nothing fits is said to be a weak fit, not shown as a match.
    weak = client.post("/matcher/", data={"q": "zxqv"}, headers=headers).text
    assert "a weak fit" in weak


def test_every_search_from_the_page_and_the_cli_leaves_one_record_with_its_user_and_version(
    api_server, storage, locations
):
    from include.matcher.serving.usage_log import read_search_log, search_log
    from tests.matcher.serving.test_search import promote_base_model_and_refresh
    from tests.matcher.test_cli import run_cli

    client, auth_manager = api_server
    promote_base_model_and_refresh(storage, locations)
    headers = {"Authorization": f"Bearer {token_for(auth_manager)}"}
    queries = ["Airline pilot for short-haul jets.", "Line cook for a busy grill.", "Pastry chef."]
    for query in queries:
        assert client.post("/matcher/", data={"q": query}, headers=headers).status_code == 200
    for query in queries[:2]:
        run_cli("match", "--text", query, "--top", "3", "--user", "recruiter-cli")
    search_log(storage, locations).flush()  # the page's records are written off the request path
    records = read_search_log(storage, locations)
    assert sorted(r["user"] for r in records) == ["recruiter-cli"] * 2 + ["viewer-user"] * 3
    assert {r["model_version"] for r in records} == {"v-base"} and all(r["snapshot"] for r in records)
    page_record = next(r for r in records if r["user"] == "viewer-user")
    assert page_record["k"] == 10 and len(page_record["returned"]) == 5 and "candidate" in page_record["returned"][0]
    cli_record = next(r for r in records if r["user"] == "recruiter-cli")
    assert cli_record["k"] == 3 and len(cli_record["returned"]) == 3
    log_text = json.dumps(records)
    assert all(query not in log_text for query in queries) and "CHEF/" not in log_text  # hashes only


def test_the_page_ranks_held_out_cvs_with_production_and_the_newer_candidate_side_by_side(
    api_server, storage, locations, base_model, tmp_path
):
    """A validated candidate that is not production: the page ranks the night's held-out CVs with
    both models, each column exactly the ranking that model gives those CVs."""
    import re

    import numpy as np

    from include.matcher.foundations.evaluation import strip_title
    from include.matcher.foundations.models import load_model
    from include.matcher.foundations.settings import GateConfig
    from include.matcher.stages.validation import validate
    from tests.matcher.serving.test_search import promote_base_model_and_refresh
    from tests.matcher.stages.test_validation import HELD_OUT, night_with_candidate

    client, auth_manager = api_server
    promote_base_model_and_refresh(storage, locations)
    run, pairs, candidate = night_with_candidate(storage, locations, "night-25", base_model, tmp_path, "noisy")
    noisy = load_model(candidate, storage)
    validate(candidate, pairs, run, locations, GateConfig(), storage)

    query = "Pastry cook for a hotel restaurant: bread and desserts."
    page = client.post("/matcher/", data={"q": query}, headers={"Authorization": f"Bearer {token_for(auth_manager)}"})
    assert page.status_code == 200 and "side by side" in page.text, page.text[-3000:]
    table = page.text.split("side by side", 1)[1]
    rows = re.findall(r"<tr><td>\d+</td>((?:<td>[^<]*</td>){6})<td class=\"[a-z]*\">[a-z0-9 ]+</td></tr>", table)
    cells = [re.findall(r"<td>([^<]*)</td>", row) for row in rows]
    shown = {"production": [c[2] for c in cells], "candidate": [c[5] for c in cells]}

    texts = [strip_title(cv["text"]) for cv in HELD_OUT]
    for side, model in (("production", base_model), ("candidate", noisy)):
        scores = model.encode(texts, normalize_embeddings=True) @ model.encode(query, normalize_embeddings=True)
        assert shown[side] == [HELD_OUT[i]["key"] for i in np.argsort(-scores, kind="stable")], side
    assert [c[0] for c in cells] != [c[3] for c in cells]  # two models' scores, not one model shown twice
    assert len(cells) == len(HELD_OUT)
    assert "night-25" in table and "candidate " in table
    for vector_file in (join_uri(run, "validation", "held_out_vectors.parquet"),):
        assert b"Pastry section" not in storage.get_bytes(vector_file)  # keys and vectors, never CV text


def test_a_search_is_a_post_from_the_page_itself_and_no_url_carries_a_query(api_server, storage, locations):
    """A GET's query lands in the API server's access log and the browser's history (issue 27 case 15)."""
    from include.matcher.serving.usage_log import read_search_log, search_log
    from tests.matcher.serving.test_search import promote_base_model_and_refresh

    client, auth_manager = api_server
    promote_base_model_and_refresh(storage, locations)
    headers = {"Authorization": f"Bearer {token_for(auth_manager)}"}
    query = "Confidential requisition: airline pilot for short-haul jets."
    page = client.get("/matcher/", params={"q": query}, headers=headers)
    assert page.status_code == 200 and '<form method="post" action="./">' in page.text
    assert "Production (v-base)" not in page.text and query not in page.text  # a URL's query is not searched
    search_log(storage, locations).flush()
    assert read_search_log(storage, locations) == []
    from_elsewhere = {**headers, "Origin": "https://attacker.example"}
    assert client.post("/matcher/", data={"q": query}, headers=from_elsewhere).status_code == 403
    cross_site = {**headers, "Sec-Fetch-Site": "cross-site"}
    assert client.post("/matcher/", data={"q": query}, headers=cross_site).status_code == 403
    from_the_page = {**headers, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    searched = client.post("/matcher/", data={"q": query}, headers=from_the_page)
    assert searched.status_code == 200 and "Production (v-base)" in searched.text
    search_log(storage, locations).flush()
    assert len(read_search_log(storage, locations)) == 1 and query not in json.dumps(
        read_search_log(storage, locations)
    )


def test_the_side_by_side_view_logs_its_searches_and_stops_ranking_an_erased_cv_at_once(
    api_server, storage, locations, base_model, tmp_path
):
    """Its cache once served an erased CV for as long as the server ran, and its searches left no record."""
    from include.matcher.foundations.settings import GateConfig
    from include.matcher.serving.usage_log import read_search_log, search_log
    from include.matcher.stages.corpus import erasure_secret, key_hash
    from include.matcher.stages.erasure import erase
    from include.matcher.stages.validation import validate
    from tests.helpers import damaged_model
    from tests.matcher.serving.test_search import promote_base_model_and_refresh
    from tests.matcher.stages.test_validation import HELD_OUT, JOBS

    client, auth_manager = api_server
    promote_base_model_and_refresh(storage, locations)
    base = locations.raw_cvs.split("/", 3)[3]
    held_out = [{**cv, "key": f"{base}/{cv['key']}"} for cv in HELD_OUT]  # bucket keys, as ingest writes them
    run = join_uri(locations.work, "runs", "night-25")
    pairs = join_uri(run, "pairs")
    storage.put_jsonl(join_uri(pairs, "test.jsonl"), held_out)
    storage.put_jsonl(join_uri(pairs, "train_cvs.jsonl"), held_out)
    storage.put_json(join_uri(pairs, "jobs.json"), JOBS)
    storage.put_json(join_uri(pairs, "summary.json"), {"data_hash": "h"})
    damaged_model(base_model, tmp_path / "noisy", "noisy")
    storage.upload_dir(tmp_path / "noisy", join_uri(run, "candidate"))
    validate(join_uri(run, "candidate"), pairs, run, locations, GateConfig(audit_names_per_group=1), storage)

    headers = {"Authorization": f"Bearer {token_for(auth_manager)}"}
    query = "Pastry cook for a hotel restaurant: bread and desserts."
    erased = held_out[2]["key"]
    before = client.post("/matcher/", data={"q": query}, headers=headers).text.split("side by side", 1)[1]
    assert f"<td>{erased}</td>" in before
    erase([erased], [], locations, storage)
    after = client.post("/matcher/", data={"q": query}, headers=headers).text
    assert "side by side" in after and f"<td>{erased}</td>" not in after.split("side by side", 1)[1]
    search_log(storage, locations).flush()
    side_records = [r for r in read_search_log(storage, locations) if r["filters"].get("view") == "side by side"]
    assert len(side_records) == 4 and {r["user"] for r in side_records} == {"viewer-user"}  # two searches, two sides
    assert key_hash(erasure_secret(storage, locations), erased) not in json.dumps(read_search_log(storage, locations))


def test_crafted_reports_and_run_folders_never_give_a_500(api_server, storage, locations):
    """Whoever can write the work bucket can put any report there: each crafted one is listed as
    unreadable (its page a 404 that says so), the rest of the page renders, and a deleted vectors
    file leaves the search working."""
    client, auth_manager = api_server
    headers = {"Authorization": f"Bearer {token_for(auth_manager)}"}
    good = storage.get_json(join_uri(locations.work, "runs", "night-24", "candidate", "validation_report.json"))

    def put(run: str, body) -> None:
        blob = body if isinstance(body, bytes) else json.dumps(body).encode()
        storage.put_bytes(join_uri(locations.work, "runs", run, "candidate", "validation_report.json"), blob)

    crafted = {
        "evidence-list": {**good, "decision": {**good["decision"], "evidence": [1, 2]}},
        "evidence-no-high": {
            **good,
            "decision": {
                **good["decision"],
                "evidence": {
                    "confidence": 0.95,
                    "per_category": {},
                    "mrr@10": {"candidate": 0.7, "production": 0.5, "difference": 0.2, "low": 0.1},
                },
            },
        },
        "deep-nesting": b'{"created_at": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        "metric-as-text": {**good, "candidate_metrics": {"metrics": {"mrr@10": "high"}}},
    }
    for run, body in crafted.items():
        put(run, body)
    for folder in ("...", "ü"):
        storage.put_json(join_uri(locations.work, "runs", folder, "candidate", "validation_report.json"), good)
    # The newest report names held-out vectors that were deleted: the side-by-side view says so.
    put(
        "night-27",
        {
            **good,
            "created_at": "2026-11-27T02:00:00",
            "version": "v-night-27",
            "candidate": "s3://x/y",
            "held_out": {"count": 9, "vectors": join_uri(locations.work, "runs", "night-27", "gone.parquet")},
        },
    )

    page = client.get("/matcher/", headers=headers)
    assert page.status_code == 200 and "v-night-24" in page.text
    for run in [*crafted, "...", "ü"]:
        assert f"{run}</td><td>unreadable" in page.text, run
    for run in [*crafted, "...", "ü"]:
        for route in ("/matcher/report.html", "/matcher/report"):
            response = client.get(route, params={"run": run}, headers=headers)
            assert response.status_code == 404, (route, run, response.status_code)
    searched = client.post("/matcher/", data={"q": "Pastry cook"}, headers=headers)
    assert searched.status_code == 200 and "held-out vectors are missing or unreadable" in searched.text


def test_any_two_versions_compare_on_one_pool_with_the_interval_of_the_change_and_rank_moves(
    api_server, storage, locations, base_model, tmp_path
):
    """Production and a refused candidate (or any two versions): each metric with the gate's paired
    interval of the change, both bias audits, and both rankings of a pasted job, each exactly the
    ranking that model gives the pool, with each CV's move marked."""
    import re

    import numpy as np

    from include.matcher.foundations.evaluation import strip_title
    from include.matcher.foundations.models import load_model
    from include.matcher.foundations.settings import GateConfig, run_folder
    from include.matcher.serving.usage_log import read_search_log, search_log
    from include.matcher.stages.validation import validate
    from tests.matcher.serving.test_search import promote_base_model_and_refresh
    from tests.matcher.stages.test_validation import HELD_OUT, night_with_candidate

    client, auth_manager = api_server
    headers = {"Authorization": f"Bearer {token_for(auth_manager)}"}
    promote_base_model_and_refresh(storage, locations)
    airflow_run_id = "manual__2026-12-06T02:00:00+00:00"
    folder = run_folder(airflow_run_id)
    run, pairs, candidate = night_with_candidate(storage, locations, folder, base_model, tmp_path, "noisy")
    report_uri = validate(
        candidate, pairs, run, locations, GateConfig(audit_names_per_group=1), storage, None, airflow_run_id
    )
    report = storage.get_json(report_uri)
    version = report["version"]

    page = client.get("/matcher/compare", params={"a": "v-base", "b": version}, headers=headers)
    assert page.status_code == 200, page.text[-2000:]
    assert f"the {folder} night's {len(HELD_OUT)} held-out CVs" in page.text
    row = re.search(
        r"<tr><td>mrr@10</td><td>([\d.]+)</td><td>([\d.]+)</td><td>([-+][\d.]+) \(([-+][\d.]+) to ([-+][\d.]+)\)",
        page.text,
    )
    assert row, page.text[-3000:]
    a, b, change, low, high = (float(v) for v in row.groups())
    assert abs(a - report["production_metrics"]["metrics"]["mrr@10"]) < 1e-3  # the same pool the gate read
    assert abs(b - report["candidate_metrics"]["metrics"]["mrr@10"]) < 1e-3
    assert low <= change <= high
    assert "no audit on record" in page.text and "bias audit: lowest impact ratio" in page.text  # v-base: none

    query = "Pastry cook for a hotel restaurant: bread and desserts."
    ranked = client.post(f"/matcher/compare?a=v-base&b={version}", data={"q": query}, headers=headers)
    assert ranked.status_code == 200
    table = ranked.text.split("Both rankings for a job", 1)[1]
    rows = re.findall(r"<tr><td>\d+</td>((?:<td>[^<]*</td>){6})<td class=\"[a-z]*\">([a-z0-9 ]+)</td></tr>", table)
    cells = [re.findall(r"<td>([^<]*)</td>", row) for row, _ in rows]
    texts = [strip_title(cv["text"]) for cv in HELD_OUT]
    for column, model in ((2, base_model), (5, load_model(candidate, storage))):
        scores = model.encode(texts, normalize_embeddings=True) @ model.encode(query, normalize_embeddings=True)
        assert [c[column] for c in cells] == [HELD_OUT[i]["key"] for i in np.argsort(-scores, kind="stable")]
    left = [c[2] for c in cells]
    for (_, move), c, rank in zip(rows, cells, range(1, len(rows) + 1), strict=True):
        before = left.index(c[5]) + 1
        assert move == ("same" if before == rank else f"{'up' if before > rank else 'down'} {abs(before - rank)}")
    search_log(storage, locations).flush()
    assert len([r for r in read_search_log(storage, locations) if r["filters"].get("view") == "compare versions"]) == 2

    # The version's page, its card and the rollback's confirmation; a version never promoted offers none.
    night = client.get("/matcher/version", params={"v": "v-night-24"}, headers=headers).text
    assert "Roll back to this version" in night and "Compare with production" in night
    confirm = client.get("/matcher/rollback", params={"v": "v-night-24"}, headers=headers)
    assert (
        confirm.status_code == 200
        and "Confirm: start the rollback" in confirm.text
        and "Production is now <strong>v-base" in confirm.text
    )
    refused = client.get("/matcher/version", params={"v": version}, headers=headers).text
    assert "Roll back to this version" not in refused and "refused by the gate" in refused
    assert client.get("/matcher/rollback", params={"v": version}, headers=headers).status_code == 404
    card = client.get("/matcher/card", params={"v": version}, headers=headers)
    assert card.status_code == 200 and "<h2>Matcher evaluation</h2>" in card.text and "<table>" in card.text
    assert client.get("/matcher/version", params={"v": "v-nothing"}, headers=headers).status_code == 404
    # The Dag Run page's tab: the night's report by its Airflow run id; another DAG's run says it has none.
    tab = client.get("/matcher/run", params={"dag_id": "matcher_retraining", "run_id": airflow_run_id}, headers=headers)
    assert "Validation report: " + version in tab.text and "Approval" in tab.text
    other = client.get("/matcher/run", params={"dag_id": "matcher_rollback", "run_id": "x"}, headers=headers)
    assert other.status_code == 200 and "does not" in other.text


def test_an_s3_outage_is_a_503_that_says_so_never_a_not_found(api_server, monkeypatch):
    """S3 stops answering: every page that reads it says the storage is unavailable (503, retry),
    where it once answered "not found" and hid the outage."""
    from botocore.config import Config

    from include.devtools.embedded_s3 import free_port
    from include.matcher.foundations import storage as storage_module

    client, auth_manager = api_server
    headers = {"Authorization": f"Bearer {token_for(auth_manager)}"}
    dead = {
        "conn_type": "aws",
        "login": "k",
        "password": "s",
        "extra": {"endpoint_url": f"http://127.0.0.1:{free_port()}"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(dead))
    monkeypatch.setenv("MATCHER_S3_RETRY_SECONDS", "1")
    monkeypatch.setattr(storage_module, "CLIENT_CONFIG", Config(retries={"max_attempts": 1}, connect_timeout=1))
    for route in ROUTES[:6]:
        response = client.get(route, headers=headers)
        assert response.status_code == 503, (route, response.status_code, response.text[:300])
        assert "Storage unavailable" in response.text and response.headers["retry-after"] == "30", route
