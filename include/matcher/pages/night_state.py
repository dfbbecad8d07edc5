"""What became of a night, in one phrase, the same on every page: refused by the gate (which rule),
awaiting approval (until when, where to answer), approved / rejected by whom, timed out, promoted,
replaced, rolled back.

A night's report says what the gate and the reviewer decided; the registry says what was promoted
and rolled back. "Promoted" is said only of a version the registry holds, never of a decision alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from include.matcher.foundations.pointers import RegistryEntry
from include.matcher.foundations.settings import RETRAINING_DAG_ID
from include.matcher.stages.approval import APPROVED, NOT_REQUIRED, REJECTED, TIMED_OUT
from include.matcher.stages.validation_report import Approval, ValidationReport

GOOD, BAD, WAITING, NEUTRAL = "good", "bad", "warn", "muted"


@dataclass(frozen=True)
class NightState:
    label: str
    tone: str  # good / bad / warn / muted: the colour it is shown in
    detail: str = ""
    action: str | None = None  # the Airflow view where a person answers (an awaited approval)
    deadline: str | None = None

    @property
    def outcome(self) -> str:
        """promoted / refused / waiting: how a chart marks the night."""
        return {GOOD: "promoted", WAITING: "waiting"}.get(self.tone, "refused")


def required_action_path(airflow_run_id: str) -> str:
    """The approve task's Required Action in the Airflow UI, relative to the Airflow root."""
    return f"dags/{RETRAINING_DAG_ID}/runs/{quote(airflow_run_id, safe='')}/tasks/approve/required_actions"


def _who(approval: Approval | None) -> str:
    return f" by {approval.by}" if approval and approval.by else ""


def _when(stamp: str | None) -> str:
    return f"{stamp[:16].replace('T', ' ')} UTC" if stamp else ""


def night_state(
    report: ValidationReport,
    versions: dict[str, dict],
    production: RegistryEntry | None,
    rollbacks: list[dict],
    now: datetime | None = None,
) -> NightState:
    """The state of ``report``'s night, from the registry's ``versions`` (by name), its ``production``
    pointer and ``rollbacks`` (``from``, ``to``, ``at``)."""
    decision, approval, request = report.decision, report.approval, report.approval_request
    now = now or datetime.now(UTC)
    if not decision.promote:
        rules = ", ".join(decision.decided_by) or "its rules"
        return NightState(f"refused by the gate ({rules})", BAD, decision.reason)
    decided = approval.state if approval else None
    said = f"approved{_who(approval)}" if decided == APPROVED else ""
    if report.version in versions:
        rolled = [r for r in rollbacks if r.get("from") == report.version]
        if production and production.version == report.version:
            return NightState("promoted: in production", GOOD, said)
        if rolled:
            return NightState(
                "rolled back", BAD, f"production went back to {rolled[-1]['to']} {_when(rolled[-1]['at'])}"
            )
        later = production.version if production else "none"
        return NightState("promoted, since replaced", GOOD, f"production is now {later}; {said}".strip("; "))
    if decided == REJECTED:
        return NightState(f"rejected{_who(approval)}", BAD, _when(approval.decided_at))
    if decided == TIMED_OUT:
        return NightState("timed out: no answer, not promoted", BAD, _when(approval.decided_at))
    if decided == APPROVED:
        return NightState(f"approved{_who(approval)}, not promoted", WAITING, "see the run's promote task")
    if request and decided is None:
        deadline = request.deadline
        if deadline and deadline < now.isoformat():
            return NightState("no answer before the deadline", BAD, f"deadline {_when(deadline)}")
        return NightState(
            "awaiting approval",
            WAITING,
            "reviewers: " + (", ".join(request.reviewers or []) or "anyone allowed to act on the DAG"),
            action=required_action_path(report.airflow_run_id) if report.airflow_run_id else None,
            deadline=_when(deadline) or None,
        )
    if decided == NOT_REQUIRED:
        return NightState("passed the gate, not promoted", WAITING, "approval not required; see the promote task")
    return NightState("passed the gate, not promoted yet", WAITING, "promotion pending")
