"""What the matcher DAGs share that needs Airflow, kept outside the core package (``include/matcher``
never imports Airflow). One module per concern; the DAGs and the plugin import from here:

* :mod:`.assets`: the deployment check every DAG runs first, the S3 connection id, the assets the
  pipeline updates;
* :mod:`.params`: the trigger form, generated from the run settings;
* :mod:`.dag_defaults`: every task's retries and failure notifier, the operator DAGs' arguments,
  the worker's host name;
* :mod:`.connection`: the core's storage over the ``aws_default`` connection;
* :mod:`.tasks`: a task's body (a stage with its run context and timing), the run summary;
* :mod:`.notifiers`: failures and approval requests, to the log, e-mail and Slack;
* :mod:`.approval_operator`: the human-in-the-loop ``approve`` task (imported on first use: the
  standard provider's operators import slowly).
"""

from __future__ import annotations

from include.airflow_support.assets import AWS_CONN_ID, CURRENT_EMBEDDINGS, PRODUCTION_MODEL
from include.airflow_support.connection import s3_storage
from include.airflow_support.dag_defaults import default_args, operations_dag, worker_hostname
from include.airflow_support.notifiers import ApprovalRequestNotifier, MatcherFailureNotifier, send_to_operators
from include.airflow_support.params import dag_params
from include.airflow_support.tasks import log_run_summary, pulled, record_timing, run_stage

__all__ = [
    "AWS_CONN_ID",
    "CURRENT_EMBEDDINGS",
    "PRODUCTION_MODEL",
    "ApprovalRequestNotifier",
    "MatcherFailureNotifier",
    "dag_params",
    "default_args",
    "log_run_summary",
    "operations_dag",
    "promotion_approval",
    "pulled",
    "record_timing",
    "run_stage",
    "s3_storage",
    "send_to_operators",
    "worker_hostname",
]


def promotion_approval(**kwargs):
    """The ``approve`` task (:class:`~include.airflow_support.approval_operator.PromotionApproval`)."""
    from include.airflow_support.approval_operator import PromotionApproval

    return PromotionApproval(**kwargs)
