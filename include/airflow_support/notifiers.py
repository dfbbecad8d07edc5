"""What tells operators and reviewers: a task's failure, a promotion awaiting approval.

The failure notifier always logs one line an operator can act on (DAG, run, task, try, error type, log
URL) and never CV text. Both also e-mail ``MATCHER_ALERT_EMAIL`` (through the smtp provider and its
``smtp_default`` connection) and post to Slack through ``MATCHER_SLACK_CONN_ID`` (a Slack webhook
connection, if the slack provider is installed) when those are set.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from include.matcher.foundations.settings import deployment_setting

log = logging.getLogger(__name__)


def conf_base_url() -> str:
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


def send_to_operators(subject: str, message: str, context) -> None:
    """``message`` to the deployment's channels: always the log, and ``MATCHER_ALERT_EMAIL`` and
    ``MATCHER_SLACK_CONN_ID`` where set."""
    if deployment_setting("MATCHER_ALERT_EMAIL"):
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        SmtpNotifier(to=deployment_setting("MATCHER_ALERT_EMAIL"), subject=subject, html_content=message).notify(
            context
        )
    if deployment_setting("MATCHER_SLACK_CONN_ID"):
        try:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
        except ImportError:
            log.warning("MATCHER_SLACK_CONN_ID is set but apache-airflow-providers-slack is not installed")
            return
        SlackWebhookNotifier(slack_webhook_conn_id=deployment_setting("MATCHER_SLACK_CONN_ID"), text=message).notify(
            context
        )


class MatcherFailureNotifier(BaseNotifier):
    def notify(self, context) -> None:
        task_instance = context.get("task_instance") or context.get("ti")
        error = context.get("exception")
        message = (
            f"matcher: {getattr(task_instance, 'dag_id', '?')}.{getattr(task_instance, 'task_id', '?')} failed "
            f"(run {context.get('run_id')}, try {getattr(task_instance, 'try_number', '?')}): "
            f"{type(error).__name__ if error else 'unknown error'}; logs: {getattr(task_instance, 'log_url', '-')}"
        )
        log.error(message)
        send_to_operators("Matcher pipeline failure", message, context)


class ApprovalRequestNotifier(BaseNotifier):
    """Tells the reviewers a night waits for them: where to answer, and by when."""

    def notify(self, context) -> None:
        ti = context.get("task_instance") or context.get("ti")
        run_id = context.get("run_id")
        base = conf_base_url()
        run_page = f"{base}/dags/{getattr(ti, 'dag_id', '?')}/runs/{quote(str(run_id), safe='')}"
        link = f"{run_page}/tasks/approve/required_actions"
        task = context.get("task")
        deadline = getattr(task, "deadline", None)
        reviewers = ", ".join(user["id"] for user in (getattr(task, "assigned_users", None) or [])) or "any reviewer"
        message = f"matcher: a promotion waits for {reviewers} (run {run_id}): answer at {link}" + (
            f" by {deadline:%Y-%m-%d %H:%M} UTC (unanswered, it is rejected)" if deadline else ""
        )
        log.info(message)
        send_to_operators("Matcher promotion awaits your approval", message, context)
