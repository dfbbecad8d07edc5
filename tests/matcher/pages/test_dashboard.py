from include.matcher.foundations.uris import join_uri
from include.matcher.pages.dashboard import render, report

EVIDENCE = {
    "confidence": 0.95,
    "resamples": 2000,
    "held_out": 9,
    "mrr@10": {"candidate": 0.6, "production": 0.5, "difference": 0.1, "low": -0.0213, "high": 0.2187},
    "job_to_cv_map@10": {"candidate": 0.41, "production": 0.4, "difference": 0.01, "low": -0.05, "high": 0.07},
    "per_category": {
        "CHEF": {"count": 6, "candidate": 0.7, "production": 0.6, "difference": 0.1, "low": -0.1, "high": 0.3},
        "PILOT": {"count": 3, "status": "not enough evidence"},
    },
}


def put_night(storage, locations, run, mrr, promoted, evidence=None):
    report_body = {
        "created_at": f"2026-11-{run[-2:]}T02:00:00",
        "run": join_uri(locations.work, "runs", run),
        "version": f"v-{run}",
        "candidate_metrics": {"metrics": {"mrr@10": mrr, "accuracy@1": mrr, "job_to_cv_map@10": 0.41}},
        "production_metrics": {"metrics": {"mrr@10": 0.5, "job_to_cv_map@10": 0.4}},
        "decision": {
            "promote": promoted,
            "reason": f"reason for {run}",
            "primary_metric": "mrr@10",
            "decided_by": ["improvement"],
            **({"evidence": evidence} if evidence else {}),
        },
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
    put_night(storage, locations, "night-25", 0.6, False, evidence=EVIDENCE)
    page = render(storage, locations)
    assert "v-night-24 <strong>(production)</strong>" in page
    assert "reason for night-25" in page and "refused" in page and "promoted" in page
    assert page.count("<svg") == 2 and page.count("<circle") == 4  # MRR@10 and job -> CV MAP@10, two nights each
    assert 'aria-label="job_to_cv_map@10 per night"' in page and "0.410" in page
    assert page.count('stroke="#36c"/>') == 2  # night-25's interval bar, in both charts
    assert 'href="report.html?run=night-25"' in page and 'href="report?run=night-25"' in page
    assert report(storage, locations, "night-25").decision.promote is False


def test_the_report_page_shows_each_change_with_its_interval_and_thin_categories(storage, locations):
    from include.matcher.pages.dashboard import report_html

    put_night(storage, locations, "night-25", 0.6, False, evidence=EVIDENCE)
    page = report_html(storage, locations, "night-25")
    assert "95% interval of the change" in page
    assert (
        "<td>mrr@10 (gate)</td><td>9</td><td>0.600</td><td>0.500</td><td>+0.100</td><td>-0.021 to +0.219</td>" in page
    )
    assert "job -&gt; CV MAP@10 (guarded)" in page and "-0.050 to +0.070" in page
    assert "<td>mrr@10: PILOT</td><td>3</td>" in page and "not enough evidence" in page
    assert "Decided by: improvement" in page


def test_each_night_shows_its_bias_audit_beside_mrr(storage, locations):
    from include.matcher.foundations.uris import join_uri
    from tests.matcher.stages.test_report import sample_audit

    put_night(storage, locations, "night-24", 0.7, True)
    put_night(storage, locations, "night-25", 0.6, False)
    uri = join_uri(locations.work, "runs", "night-25", "candidate", "validation_report.json")
    storage.put_json(uri, {**storage.get_json(uri), "bias_audit": sample_audit()})
    lowest = sample_audit()["candidate"]["lowest_impact_ratio"]
    page = render(storage, locations)
    assert "lowest impact ratio (CI), flip rate" in page
    assert f"<td>0.600</td><td>{lowest['value']:.3f} ({lowest['low']:.3f} to {lowest['high']:.3f})," in page
    assert "<td>0.700</td><td>not run</td>" in page
