"""What a reviewer is shown and where their decision is kept (the DAG's side: tests/e2e/test_approval.py)."""

from include.matcher.foundations.uris import join_uri
from include.matcher.stages.approval import approval_request, record_approval
from include.matcher.stages.validation_report import read_report
from tests.matcher.stages.test_report import sample_audit, sample_report


def put_report(storage, locations) -> str:
    candidate = join_uri(locations.work, "runs", "night-1", "candidate")
    report = {
        **sample_report(),
        "run": join_uri(locations.work, "runs", "night-1"),
        "bias_audit": sample_audit(),
        "decision": {
            **sample_report()["decision"],
            "decided_by": ["improvement"],
            "evidence": {
                "confidence": 0.95,
                "mrr@10": {"candidate": 0.8, "production": 0.55, "difference": 0.25, "low": 0.1, "high": 0.4},
                "per_category": {},
            },
        },
    }
    storage.put_json(join_uri(candidate, "validation_report.json"), report)
    storage.put_bytes(join_uri(candidate, "README.md"), b"# CV-to-job matcher\n")
    return join_uri(candidate, "validation_report.json")


def test_the_request_shows_the_gate_s_figures_the_audit_and_the_links(storage, locations):
    subject, body = approval_request(put_report(storage, locations), storage)
    assert "v20261125T020000Z-abc123" in subject
    assert "| mrr@10 | 0.800 | 0.550 | +0.250 (+0.100 to +0.400) |" in body
    assert "bias audit: lowest impact ratio" in body and "| black_male |" in body
    assert "/matcher/report.html?run=night-1" in body and "no answer before the time-out" in body


def test_a_request_names_its_deadline_and_reviewers_and_the_night_shows_as_awaiting(storage, locations):
    from datetime import UTC, datetime, timedelta

    from include.matcher.pages.dashboard import render
    from include.matcher.stages.approval import record_request

    report_uri = put_report(storage, locations)
    deadline = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
    _, body = approval_request(report_uri, storage, deadline, ["alice", "bob"])
    assert "With no answer by **2026-12-08 02:00 UTC**, the request is rejected." in body
    assert "Who may answer: `alice`, `bob`." in body
    record_request(report_uri, storage, datetime.now(UTC) + timedelta(hours=2), ["alice"])
    report = read_report(storage.get_bytes(report_uri))
    assert report.approval is None and report.approval_request.reviewers == ["alice"]
    page = render(storage, locations)
    assert (
        "awaiting approval" in page and "reviewers: alice" in page and "promoted" not in page.split("Gate decisions")[1]
    )


def test_the_decision_is_kept_in_the_report_and_the_model_card(storage, locations):
    from include.matcher.pages.dashboard import render

    report_uri = put_report(storage, locations)
    record_approval(report_uri, storage, "rejected", "alice")
    record_approval(report_uri, storage, "approved", "bob")  # a cleared task asked again: the last answer stands
    first = read_report(storage.get_bytes(report_uri)).approval
    assert record_approval(report_uri, storage, "approved", "bob") == first  # the same answer again: unchanged
    kept = read_report(storage.get_bytes(report_uri)).approval
    assert kept.state == "approved" and kept.by == "bob" and kept.decided_at
    card = storage.get_bytes(report_uri.replace("validation_report.json", "README.md")).decode()
    assert card.count("## Human oversight") == 1 and "Promotion approved by bob" in card
    assert "<td>approved by bob at " in render(storage, locations)
