"""
### Roll the matcher back

Manual trigger only. Points production at an earlier model `version` from the registry
(`<registry>/models/<version>/`, see the **Matcher** registry or `python -m include.matcher production`)
with a compare-and-swap write, then re-embeds every stored CV and job with it and flips
`embeddings/current.json`. Old versions are never deleted, so any promoted version can come back.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

AWS_CONN_ID = os.environ.get("MATCHER_AWS_CONN_ID", "aws_default")


@dag(
    dag_id="matcher_rollback",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True},
    params={"version": Param(type="string", minLength=1, description="Registry version to put back in production, e.g. v20261125T020000Z-1a2b3c.")},
    tags=["ml", "matcher", "operations"],
    doc_md=__doc__,
)
def matcher_rollback():
    @task
    def rollback_and_refresh(params=None) -> str:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include.matcher.operations import rollback_and_refresh as run
        from include.matcher.settings import Locations
        from include.matcher.storage import Storage

        return run(params["version"], Locations.from_env(), Storage(S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()))

    rollback_and_refresh()


matcher_rollback()
