"""A person approves each promotion: what the reviewer is shown, and where their decision is kept.

The DAG puts Airflow's own ``ApprovalOperator`` between ``gate`` and ``promote``
(:class:`include.airflow_support.approval_operator.PromotionApproval`); this module is the part that needs no Airflow.
:func:`approval_request` is the subject and Markdown body the reviewer reads in the Airflow UI: the
gate's decision with every rule's figures and intervals, the bias audit table, and links to the
report and to the Matcher page (whose side-by-side view ranks a query with both models).
:func:`record_approval` writes who decided, how and when into the night's validation report (which
the Matcher page shows and the registry keeps with the version) and into the model card.
"""

from __future__ import annotations

from datetime import UTC, datetime

from include.matcher.foundations.storage import ObjectStore
from include.matcher.stages.model_card import refresh_model_card
from include.matcher.stages.report import AUDIT_HEAD, audit_headline, audit_rows
from include.matcher.stages.validation_report import Approval, ApprovalRequest, read_report

APPROVED, REJECTED, TIMED_OUT, NOT_REQUIRED = "approved", "rejected", "timed out (rejected)", "not required"


def reviewers() -> list[str]:
    """The Airflow user ids who may answer a promotion's approval (``MATCHER_REVIEWERS``); empty: anyone
    allowed to act on the DAG."""
    from include.matcher.foundations.settings import deployment_setting

    return [name.strip() for name in deployment_setting("MATCHER_REVIEWERS").split(",") if name.strip()]


def record_request(report_uri: str, storage: ObjectStore, deadline: datetime | None, who: list[str]) -> ApprovalRequest:
    """Keep in the night's report that a person's answer is awaited, until when and from whom, so every
    page can say "awaiting approval" (not "promoted") and link the request. A re-asked request (a retry)
    moves the deadline."""
    report = read_report(storage.get_bytes(report_uri))
    record = ApprovalRequest.model_validate(
        {
            "requested_at": datetime.now(UTC).isoformat(),
            **({"deadline": deadline.isoformat()} if deadline else {}),
            **({"reviewers": list(who)} if who else {}),
        }
    )
    storage.put_json(report_uri, report.model_copy(update={"approval_request": record}).to_json())
    return record


def approval_request(
    report_uri: str, storage: ObjectStore, deadline: datetime | None = None, who: list[str] | None = None
) -> tuple[str, str]:
    """(subject, Markdown body) of the request a reviewer answers for this night's candidate."""
    report = read_report(storage.get_bytes(report_uri))
    decision = report.decision
    lines = [
        f"**The gate passed candidate `{report.version}`** (run `{report.run_name}`), against production "
        f"`{report.production_label}`, on {report.held_out_count} held-out CVs.",
        "",
        f"Decided by: {', '.join(decision.decided_by) or '-'}. {decision.reason}",
        "",
    ]
    evidence = decision.evidence or {}
    changes = [(name, evidence.get(name)) for name in (decision.primary_metric, "job_to_cv_map@10")]
    rows = [(name, change) for name, change in changes if change and "low" in change]
    if rows:
        lines += ["| statistic | candidate | production | change (interval) |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {name} | {c['candidate']:.3f} | {c['production']:.3f} | {c['difference']:+.3f} "
            f"({c['low']:+.3f} to {c['high']:+.3f}) |"
            for name, c in rows
        ]
        lines.append("")
    lines += [f"**{audit_headline(report.bias_audit)}**", ""]
    if report.bias_audit:
        lines += ["| " + " | ".join(AUDIT_HEAD) + " |", "| --- |" + " --- |" * (len(AUDIT_HEAD) - 1)]
        lines += [f"| {group} | " + " | ".join(cells) + " |" for group, cells in audit_rows(report.bias_audit)]
        lines.append("")
    lines += [
        f"[The validation report](/matcher/report.html?run={report.run_name}) · "
        "[The Matcher page](/matcher/) (search a job there to see production and this candidate side by side)",
        "",
        "**Approve** promotes it to production; **Reject** keeps production (the embeddings refresh still runs). "
        + (
            f"With no answer by **{deadline:%Y-%m-%d %H:%M} UTC**, the request is rejected."
            if deadline
            else "With no answer before the time-out, the request is rejected."
        ),
        "",
        "Who may answer: "
        + (", ".join(f"`{name}`" for name in who) if who else "anyone allowed to act on this DAG")
        + ".",
    ]
    return f"Promote matcher candidate {report.version}?", "\n".join(lines)


def record_approval(report_uri: str, storage: ObjectStore, state: str, by: str | None = None) -> Approval:
    """Keep the reviewer's decision in the night's report and model card; the record written.

    The same decision recorded again (a cleared night re-run) leaves both as they are."""
    report = read_report(storage.get_bytes(report_uri))
    kept = report.approval
    if kept is not None and kept.state == state and kept.by == by:
        return kept
    record = Approval.model_validate(
        {"state": state, "decided_at": datetime.now(UTC).isoformat(), **({"by": by} if by else {})}
    )
    storage.put_json(report_uri, report.model_copy(update={"approval": record}).to_json())
    refresh_model_card(report_uri.rsplit("/", 1)[0], storage)
    return record


def approval_summary(approval: Approval | None) -> str:
    """The decision in a few words, for the Matcher page and the run summary."""
    if not approval:
        return "-"
    who = f" by {approval.by}" if approval.by else ""
    return f"{approval.state}{who} at {(approval.decided_at or '')[:16]}"
