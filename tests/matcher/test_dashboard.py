from include.matcher.dashboard import render, report
from include.matcher.storage import join_uri


def put_night(storage, locations, run, mrr, promoted):
    report_body = {
        "created_at": f"2026-11-{run[-2:]}T02:00:00",
        "run": join_uri(locations.work, "runs", run),
        "version": f"v-{run}",
        "candidate_metrics": {"metrics": {"mrr@10": mrr, "accuracy@1": mrr}},
        "production_metrics": {"metrics": {"mrr@10": 0.5}},
        "decision": {"promote": promoted, "reason": f"reason for {run}"},
        "held_out": {"count": 9},
        "production": {"name": "all-MiniLM-L6-v2", "version": None},
    }
    storage.put_json(join_uri(locations.work, "runs", run, "candidate", "validation_report.json"), report_body)
    if promoted:
        entry = {
            "version": f"v-{run}",
            "uri": join_uri(locations.registry, "models", f"v-{run}"),
            "promoted_at": "2026-11-24T02:00:00",
            "metrics": {"mrr@10": mrr},
            "previous": None,
        }
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
