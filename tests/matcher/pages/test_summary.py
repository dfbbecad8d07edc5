"""The run summary (the last task's log, `make demo`'s ending, `python -m include.matcher last-run`)."""

from __future__ import annotations

from include.matcher.foundations.uris import join_uri
from include.matcher.pages.summary import describe_run
from include.matcher.stages.embeddings import refresh_embeddings
from include.matcher.stages.ingest import ingest
from include.matcher.stages.parse import parse
from tests.matcher.serving.test_search import put_base_model_in_production
from tests.matcher.stages.test_ingest import MAIN_CVS


def test_the_summary_says_what_came_in_and_what_this_night_published(storage, locations):
    for key, text in MAIN_CVS.items():
        storage.put_bytes(join_uri(locations.raw_cvs, key), text.encode())
    storage.put_json(locations.jobs_file, {"CHEF": "Cook in a restaurant kitchen.", "PILOT": "Pilot flying aircraft."})
    night = locations.run_uri("night-1")
    corpus = parse(ingest(night, locations, storage), night, locations, storage)
    refresh_embeddings(put_base_model_in_production(storage, locations), corpus, locations, storage)

    summary = describe_run(night, locations, storage)
    assert f"run:        {night}" in summary and "'new': 4" in summary
    assert "parse:      4 parsed, 0 rejected" in summary and "production: v-base at " in summary
    assert "refreshed:  {'cvs': 4, 'cvs_embedded': 4, 'cvs_reused': 0, 'job_texts': 2}" in summary

    later = locations.run_uri("night-2")  # a quiet night published nothing: no "refreshed" line
    ingest(later, locations, storage)
    assert "refreshed:" not in describe_run(later, locations, storage)


def test_the_summary_gives_the_bias_audit_headline(storage, locations):
    from include.matcher.pages.summary import describe_run
    from include.matcher.stages.registry import version_for
    from tests.helpers import report_json
    from tests.matcher.stages.test_report import sample_audit

    night = locations.run_uri("night-9")
    storage.put_json(join_uri(night, "manifest.json"), {"created_at": "2026-11-25T02:00:00", "counts": {}})
    candidate = join_uri(night, "candidate")
    report = {**report_json(night, candidate, version_for("night-9")), "bias_audit": sample_audit()}
    storage.put_json(join_uri(candidate, "validation_report.json"), report)
    lowest = sample_audit()["candidate"]["lowest_impact_ratio"]
    told = describe_run(night, locations, storage)
    assert f"fairness:   bias audit: lowest impact ratio {lowest['value']:.3f}" in told


def test_the_summary_says_what_became_of_the_night_as_the_page_does(storage, locations):
    """A night the gate passed is not "promoted" until it is: awaiting approval shows as such."""
    from datetime import UTC, datetime, timedelta

    from include.matcher.stages.approval import record_request
    from include.matcher.stages.registry import version_for
    from tests.helpers import report_json

    night = locations.run_uri("night-8")
    storage.put_json(join_uri(night, "manifest.json"), {"created_at": "2026-11-25T02:00:00", "counts": {}})
    candidate = join_uri(night, "candidate")
    report_uri = join_uri(candidate, "validation_report.json")
    storage.put_json(report_uri, report_json(night, candidate, version_for("night-8")))
    record_request(report_uri, storage, datetime.now(UTC) + timedelta(hours=3), ["alice"])
    summary = describe_run(night, locations, storage)
    assert "gate:       PASSED:" in summary and "PROMOTED" not in summary
    assert "became:     awaiting approval (reviewers: alice, until " in summary
