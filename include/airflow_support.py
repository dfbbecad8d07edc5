"""What the matcher DAGs share that needs Airflow (so it lives outside the core package): the S3
connection, the assets the pipeline updates, and the failure notifier.

The notifier always logs one line an operator can act on (DAG, run, task, try, error type, log URL) and never CV
text. Also e-mails ``MATCHER_ALERT_EMAIL`` (through the smtp provider and its ``smtp_default``
connection) and posts to Slack through ``MATCHER_SLACK_CONN_ID`` (a Slack webhook connection, if
the slack provider is installed) when those are set.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from urllib.parse import quote

from airflow.sdk import Asset, BaseNotifier

from include.matcher.foundations.settings import Locations, check_deployment, deployment_flag, deployment_setting

log = logging.getLogger(__name__)

# Every DAG imports this first: a bad deployment setting shows as one line among Airflow's import errors.
check_deployment()
AWS_CONN_ID = deployment_setting("MATCHER_AWS_CONN_ID")
_LOCATIONS = Locations.from_env()
# Downstream DAGs can be scheduled on these; each event carries the model version (and metrics).
PRODUCTION_MODEL = Asset(name="matcher_production_model", uri=f"{_LOCATIONS.registry.rstrip('/')}/production.json")
CURRENT_EMBEDDINGS = Asset(name="matcher_current_embeddings", uri=f"{_LOCATIONS.embeddings.rstrip('/')}/current.json")


JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}


def dag_params() -> dict:
    """The trigger form, generated from the run settings' declarations
    (:func:`include.matcher.foundations.settings.setting`):
    one ``Param`` per setting, with its type, bounds, choices, help and section (Training / Gate / Data)."""
    from airflow.sdk import Param

    from include.matcher.foundations.settings import run_defaults, run_setting_fields

    params, deployment_defaults = {}, run_defaults()
    for _, f in run_setting_fields():
        meta = f.metadata
        limits = [
            f"{word} {meta[rule]:g}"
            for rule, word in (("minimum", "at least"), ("above", "above"), ("maximum", "at most"))
            if rule in meta
        ]
        schema = {
            "type": JSON_TYPES[str(f.type)],
            "title": f.name.replace("_", " ").capitalize(),
            "description": meta["help"] + (f" ({', '.join(limits)})" if limits else ""),
            "section": meta["section"],
        }
        for rule, keyword in (("minimum", "minimum"), ("maximum", "maximum"), ("above", "exclusiveMinimum")):
            if rule in meta:
                schema[keyword] = meta[rule]
        if "choices" in meta:
            schema["enum"] = list(meta["choices"])
        if "pattern" in meta:
            schema["pattern"] = f"^{meta['pattern']}$"
        default = deployment_defaults.get(f.name, f.default)
        if f.name == "require_approval":  # each deployment decides whether a person is in the loop
            default = deployment_flag("MATCHER_REQUIRE_APPROVAL")
        if default == "":  # the form counts an empty value of a non-null type as missing: Trigger greys out
            schema["type"], default = ["null", schema["type"]], None
        params[f.name] = Param(default, **schema)
    return params


def pulled(values) -> list:
    """A mapped task's outputs as a list, read by index within their count.

    Iterating Airflow's lazy XCom sequence asks for one item past the end and the SDK logs that
    404 as an error ("XCom not found") in a successful task's log; indexing never asks past it.
    """
    return [values[index] for index in range(len(values))]


def worker_hostname() -> str:
    """The host name a task instance records: ``MATCHER_WORKER_NAME`` where set (two Celery workers
    on one machine, ``make up-celery``), else the machine's (Airflow's default)."""
    import socket

    return deployment_setting("MATCHER_WORKER_NAME") or socket.getfqdn()


def default_args() -> dict:
    """Every matcher task: two retries with exponential backoff, and a notification on failure."""
    return {
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": MatcherFailureNotifier(),
    }


def operations_dag(**overrides) -> dict:
    """The ``@dag`` arguments of the operator DAGs (rollback, erasure, housekeeping): manual unless
    given a schedule, one run at a time, the matcher's retries and failure notifier."""
    from datetime import datetime

    return {
        "schedule": None,
        "start_date": datetime(2026, 1, 1),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": default_args(),
        **overrides,
    }


def s3_storage():
    """The core package's Storage over the ``aws_default`` connection (endpoint in its extra)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from include.matcher.foundations.storage import CLIENT_CONFIG, Storage

    # The project's client settings (retries, timeouts, connection pool) over the connection's credentials.
    return Storage(S3Hook(aws_conn_id=AWS_CONN_ID, config=CLIENT_CONFIG).get_conn())


def run_stage(stage, *inputs, params=None, run_id=None):
    """A DAG task's body: ``stage(*inputs, context)`` with this run's :class:`RunContext` (the
    deployment's settings, the trigger's params, the ``aws_default`` S3), its wall time recorded at
    ``<run>/timings/<task>[<map index>].json`` (for the run summary and ``benchmarks/orchestration.py``).

    ``params`` and ``run_id`` are what Airflow passes the task; every stage is called the same way.
    """
    from include.matcher.foundations.context import RunContext

    context = RunContext.of(run_id, params, s3_storage())
    started = time.perf_counter()
    outcome = "failed"
    try:
        result = stage(*inputs, context)
        outcome = "success"
        return result
    finally:
        try:
            record_timing(time.perf_counter() - started, outcome)
        except Exception:  # bookkeeping must never fail the task it measures
            log.warning("could not record the task's timing", exc_info=True)


def record_timing(seconds: float, outcome: str) -> None:
    from airflow.sdk import get_current_context

    from include.matcher.foundations import layout

    context = get_current_context()
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    name = ti.task_id + (f"[{map_index}]" if map_index is not None and map_index >= 0 else "")
    run_uri = Locations.from_env().run_uri(context["run_id"])
    record = {
        "task": ti.task_id,
        "map_index": map_index,
        "try": ti.try_number,
        "seconds": round(seconds, 3),
        "outcome": outcome,
    }
    s3_storage().put_json(layout.Run(run_uri).timing(name), record)


def log_run_summary() -> None:
    """Log the run summary (counts, timings, metrics, gate decision) at the end of a task's log."""
    from airflow.sdk import get_current_context

    from include.matcher.pages.summary import describe_run

    locations = Locations.from_env()
    run_uri = locations.run_uri(get_current_context()["run_id"])
    for line in describe_run(run_uri, locations, s3_storage()).splitlines():
        log.info("run summary | %s", line)


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


def conf_base_url() -> str:
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


def _promotion_approval_class():
    """Defined on first use: the standard provider's operators import slowly, and only the DAG needs it."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator

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

    return PromotionApproval


def promotion_approval(**kwargs):
    """The ``approve`` task (see ``PromotionApproval`` in :func:`_promotion_approval_class`)."""
    return _promotion_approval_class()(**kwargs)
