"""The ``approve`` task: Airflow's ``ApprovalOperator`` with the gate's figures, its outcome recorded.

Imported on first use (:func:`include.airflow_support.promotion_approval`): the standard provider's
operators import slowly, and only the retraining DAG needs this.
"""

from __future__ import annotations

import time
from datetime import timedelta

from airflow.providers.standard.operators.hitl import ApprovalOperator

from include.airflow_support.connection import s3_storage
from include.airflow_support.notifiers import ApprovalRequestNotifier
from include.airflow_support.tasks import record_timing
from include.matcher.foundations.settings import deployment_setting
from include.matcher.stages import approval


class PromotionApproval(ApprovalOperator):
    """Airflow's ``ApprovalOperator`` between ``gate`` and ``promote``: a person approves each
    promotion in the UI (Browse > Required actions, or the REST API's ``hitlDetails``). Reject, or
    no answer within ``MATCHER_APPROVAL_TIMEOUT_HOURS`` (the default option is Reject), skips
    ``promote``. A run with ``require_approval`` false passes straight through, recorded as such.
    Every outcome is written into the night's report and model card (:mod:`stages.approval`)."""

    def __init__(self, *, report_task_id: str, **kwargs):
        who = approval.reviewers()
        super().__init__(
            subject="Promote this night's matcher candidate?",
            body="The gate passed a candidate; its figures are filled in when the request is made.",
            defaults=ApprovalOperator.REJECT,
            response_timeout=timedelta(hours=float(deployment_setting("MATCHER_APPROVAL_TIMEOUT_HOURS"))),
            # Airflow itself refuses an answer from anyone not assigned (is_authorized_hitl_task).
            assigned_users=[{"id": name, "name": name} for name in who] or None,
            notifiers=[ApprovalRequestNotifier()],
            **kwargs,
        )
        self.report_task_id = report_task_id
        self.deadline = None

    def _report_uri(self, context) -> str:
        return context["ti"].xcom_pull(task_ids=self.report_task_id)

    def execute(self, context):
        started, outcome = time.perf_counter(), "failed"
        try:
            report_uri = self._report_uri(context)
            if not context["params"].get("require_approval"):
                approval.record_approval(report_uri, s3_storage(), approval.NOT_REQUIRED)
                self.log.info("require_approval is off for this run: promotion goes ahead without a reviewer")
                outcome = "success"
                return None
            from datetime import UTC, datetime

            self.deadline = datetime.now(UTC) + self.response_timeout
            who = [user["id"] for user in self.assigned_users or []]
            approval.record_request(report_uri, s3_storage(), self.deadline, who)
            self.subject, self.body = approval.approval_request(report_uri, s3_storage(), self.deadline, who)
            outcome = "success"  # the request is made; what follows parks the task in awaiting_input
            return super().execute(context)
        finally:  # the request's own work, like every task's (the wait for a person is not work)
            record_timing(time.perf_counter() - started, outcome)

    def execute_complete(self, context, event):
        chosen = (event.get("chosen_options") or [None])[0]
        user = event.get("responded_by_user")
        name = user.get("name") if isinstance(user, dict) else getattr(user, "name", None)
        if event.get("timedout") or (chosen == self.REJECT and user is None):
            state = approval.TIMED_OUT
        else:
            state = approval.APPROVED if chosen == self.APPROVE else approval.REJECTED
        approval.record_approval(self._report_uri(context), s3_storage(), state, name)
        return super().execute_complete(context, event)
