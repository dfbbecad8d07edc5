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
    import re

    put_night(storage, locations, "night-24", 0.7, True)
    put_night(storage, locations, "night-25", 0.6, False, evidence=EVIDENCE)
    page = render(storage, locations)
    assert '<a href="version?v=v-night-24">v-night-24</a> <strong>(production)</strong>' in page
    assert 'href="card?v=v-night-24">model card</a>' in page
    assert "reason for night-25" in page and "refused by the gate (improvement)" in page
    assert "promoted: in production" in page
    assert page.count("<svg") == 2 and page.count('aria-label="job_to_cv_map@10 per night"') == 1
    # A legend, one label per night with its time, production drawn at every night, the interval inside the axes.
    assert page.count("production it was judged against") == 2 and page.count(">11-24 02:00</text>") == 2
    assert page.count('class="dot-production"><title>production') == 4 and "0.410" in page
    intervals = re.findall(r'class="interval"><title>interval [^<]*</title>', page)
    assert len(intervals) == 2  # night-25's interval bar, in both charts
    for top, foot in re.findall(r'<line x1="[\d.]+" y1="([\d.-]+)" x2="[\d.]+" y2="([\d.-]+)" class="interval">', page):
        assert 0 <= float(top) <= float(foot) <= 220
    assert 'href="report.html?run=night-25"' in page and 'href="report?run=night-25"' in page
    assert report(storage, locations, "night-25").decision.promote is False


def test_a_first_night_shows_production_and_its_whole_interval(storage, locations):
    import re

    wide = {**EVIDENCE, "mrr@10": {**EVIDENCE["mrr@10"], "low": -0.45, "high": 0.49}}
    put_night(storage, locations, "night-24", 0.6, False, evidence=wide)
    page = render(storage, locations)
    assert page.count('class="dot-production"><title>production 0.500') == 1  # one night: still a mark
    top, foot = re.search(r'y1="([\d.-]+)" x2="[\d.]+" y2="([\d.-]+)" class="interval"><title>', page).groups()
    assert 0 <= float(top) < float(foot) <= 220  # 0.05 .. 0.99: the scale takes the interval in


def test_every_state_of_a_night_is_told_truly(storage, locations):
    """A night awaiting approval was once shown as "promoted": each state is named from the report
    and the registry together, and an awaited one links its Required Action and its deadline."""
    from datetime import UTC, datetime, timedelta

    from include.matcher.stages.registry import rollback

    def night_with(run: str, **fields) -> None:
        put_night(storage, locations, run, 0.7, False)
        uri = join_uri(locations.work, "runs", run, "candidate", "validation_report.json")
        body = storage.get_json(uri)
        body["decision"]["promote"] = True
        storage.put_json(uri, {**body, "airflow_run_id": f"manual__{run}", **fields})

    soon = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    night_with("night-20", approval_request={"requested_at": past, "deadline": soon, "reviewers": ["alice"]})
    night_with("night-21", approval_request={"requested_at": past, "deadline": past})
    night_with("night-22", approval={"state": "rejected", "by": "bob", "decided_at": past})
    night_with("night-23", approval={"state": "timed out (rejected)", "decided_at": past})
    put_night(storage, locations, "night-24", 0.7, True)
    put_night(storage, locations, "night-26", 0.7, True)
    rollback("v-night-24", locations.registry, storage)
    page = render(storage, locations)
    rows = {
        run: page.split(f">{run}<", 1)[1].split("</tr>", 1)[0]
        for run in ("night-20", "night-21", "night-22", "night-23", "night-24", "night-26")
    }
    assert "awaiting approval" in rows["night-20"] and "promoted" not in rows["night-20"]
    assert 'href="../dags/matcher_retraining/runs/manual__night-20/tasks/approve/required_actions"' in rows["night-20"]
    assert f"(until {soon[:16].replace('T', ' ')} UTC)" in rows["night-20"] and "reviewers: alice" in rows["night-20"]
    assert "no answer before the deadline" in rows["night-21"]
    assert "rejected by bob" in rows["night-22"]
    assert "timed out: no answer" in rows["night-23"]
    assert "promoted: in production" in rows["night-24"]
    assert "rolled back" in rows["night-26"] and "went back to v-night-24" in rows["night-26"]
    assert "1 night awaiting approval" in page  # said at the top, with the link


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
    # A category worse beyond doubt is marked, not just listed.
    worse = {**EVIDENCE["per_category"]["CHEF"], "difference": -0.2, "low": -0.3, "high": -0.1}
    uri = join_uri(locations.work, "runs", "night-25", "candidate", "validation_report.json")
    body = storage.get_json(uri)
    body["decision"]["evidence"]["per_category"]["CHEF"] = worse
    storage.put_json(uri, body)
    marked = report_html(storage, locations, "night-25")
    assert '<tr class="flag"><td>mrr@10: CHEF</td>' in marked and "worse beyond doubt" in marked
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


def test_a_night_shows_the_product_path_headline_and_the_model_alone_beside_it(storage, locations):
    from include.matcher.foundations.uris import join_uri
    from tests.matcher.stages.test_report import placement_audit

    put_night(storage, locations, "night-26", 0.6, False)
    uri = join_uri(locations.work, "runs", "night-26", "candidate", "validation_report.json")
    storage.put_json(uri, {**storage.get_json(uri), "bias_audit": placement_audit()})
    page = render(storage, locations)
    assert "1.000 (1.000 to 1.000), 0.000; model alone: gap 0.500" in page
    assert "the model alone reads the whole text with the name in it" in page
