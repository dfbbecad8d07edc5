"""The core package's storage over Airflow's S3 connection."""

from __future__ import annotations

from include.airflow_support.assets import AWS_CONN_ID


def s3_storage():
    """The core package's Storage over the ``aws_default`` connection (endpoint in its extra)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from include.matcher.foundations.storage import CLIENT_CONFIG, Storage

    # The project's client settings (retries, timeouts, connection pool) over the connection's credentials.
    return Storage(S3Hook(aws_conn_id=AWS_CONN_ID, config=CLIENT_CONFIG).get_conn())
