from include.matcher.dashboard import render, report
from include.matcher.storage import join_uri


def put_night(storage, locations, run, mrr, promoted):
    report_body = {
        "created_at": f"2026-11-{run[-2:]}T02:00:00", "run": join_uri(locations.work, "runs", run), "version": f"v-{run}",
        "candidate_metrics": {"metrics": {"mrr@10": mrr, "accuracy@1": mrr}}, "production_metrics": {"metrics": {"mrr@10": 0.5}},
        "decision": {"promote": promoted, "reason": f"reason for {run}"},
    }  # fmt: skip
    storage.put_json(join_uri(locations.work, "runs", run, "candidate", "validation_report.json"), report_body)
    if promoted:
        entry = {"version": f"v-{run}", "uri": join_uri(locations.registry, "models", f"v-{run}"), "promoted_at": "2026-11-24T02:00:00", "metrics": {"mrr@10": mrr}, "previous": None}
        storage.put_json(join_uri(locations.registry, "models", f"v-{run}", "entry.json"), entry)
        storage.put_json(join_uri(locations.registry, "production.json"), entry)


def test_page_shows_versions_production_chart_and_decisions(storage, locations):
    put_night(storage, locations, "night-24", 0.7, True)
    put_night(storage, locations, "night-25", 0.6, False)
    page = render(storage, locations)
    assert "v-night-24 <strong>(production)</strong>" in page
    assert "reason for night-25" in page and "refused" in page and "promoted" in page
    assert "<svg" in page and page.count("<circle") == 2
    assert 'href="report.html?run=night-25"' in page and 'href="report?run=night-25"' in page
    assert report(storage, locations, "night-25")["decision"]["promote"] is False




def test_plugin_serves_the_page_and_reports(storage, locations, monkeypatch):
    from fastapi.testclient import TestClient

    for name, var in locations.ENV.items():
        monkeypatch.setenv(var, getattr(locations, name))
    put_night(storage, locations, "night-24", 0.7, True)
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("matcher_plugin", Path(__file__).resolve().parents[2] / "plugins" / "matcher_plugin.py")
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    client = TestClient(plugin.app)
    page = client.get("/")
    assert page.status_code == 200 and "v-night-24" in page.text
    assert client.get("/report", params={"run": "night-24"}).json()["version"] == "v-night-24"
    assert client.get("/report", params={"run": "../etc"}).status_code == 404
    storage.put_bytes(join_uri(locations.work, "runs", "night-24", "candidate", "validation_report.html"), b"<html>night 24 charts</html>")
    assert "night 24 charts" in client.get("/report.html", params={"run": "night-24"}).text
    assert client.get("/report.html", params={"run": "night-99"}).status_code == 404
    assert plugin.MatcherPlugin.external_views[0]["href"] == "/matcher/"
