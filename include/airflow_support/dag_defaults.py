"""What every matcher task and operator DAG is given: retries, the failure notifier, the worker's name."""

from __future__ import annotations

from datetime import timedelta

from include.airflow_support.notifiers import MatcherFailureNotifier
from include.matcher.foundations.settings import deployment_setting


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
