"""A DAG task's body: a stage called with its run context, its wall time recorded; and the run summary."""

from __future__ import annotations

import logging
import time

from include.airflow_support.connection import s3_storage
from include.matcher.foundations.settings import Locations

log = logging.getLogger(__name__)


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


def pulled(values) -> list:
    """A mapped task's outputs as a list, read by index within their count.

    Iterating Airflow's lazy XCom sequence asks for one item past the end and the SDK logs that
    404 as an error ("XCom not found") in a successful task's log; indexing never asks past it.
    """
    return [values[index] for index in range(len(values))]
