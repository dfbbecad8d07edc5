"""
### Roll the matcher back

Manual trigger only. Points production at an earlier model `version` from the registry (empty: the
version the one in production replaced)
(`<registry>/models/<version>/`, see the **Matcher** registry or `python -m include.matcher production`)
with a compare-and-swap write, then re-embeds every stored CV and job with it and flips
`embeddings/current.json`. Old versions are never deleted, so any promoted version can come back.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from include.airflow_support import CURRENT_EMBEDDINGS, PRODUCTION_MODEL, operations_dag, s3_storage


@dag(
    dag_id="matcher_rollback",
    **operations_dag(),
    params={
        "version": Param(
            None,
            type=["null", "string"],
            minLength=1,
            title="Version",
            description="Registry version to put back in production, e.g. v20261125T020000Z-1a2b3c; "
            "empty: the version production replaced (its entry's `previous`).",
        )
    },
    tags=["ml", "matcher", "operations"],
    doc_md=__doc__,
)
def matcher_rollback():
    @task(outlets=[PRODUCTION_MODEL, CURRENT_EMBEDDINGS])
    def rollback_and_refresh(params=None) -> str:
        from include.matcher.foundations.settings import Locations
        from include.matcher.stages.operations import rollback_and_refresh as run

        return run(params["version"], Locations.from_env(), s3_storage())

    rollback_and_refresh()


matcher_rollback()
