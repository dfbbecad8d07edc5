"""
### Erase candidates (GDPR Art. 17)

Manual trigger only. Erases the CVs of the raw `keys` given (a key under the raw prefix, e.g.
`CHEF/jane-doe.pdf`, or the bucket key) or of the `content_hashes` (sha256 of the raw file) from
everywhere the pipeline put them: the ledger (a keyed-hash tombstone keeps an unchanged file from
being ingested again), the current embeddings snapshot (rewritten; search stops returning the CV at
once), every run's pairs, training metadata and held-out vectors, older snapshots, the registry's
training metadata, the text cache and, unless `keep_raw` (the source system owns the file), the raw
object. Models trained on it are marked until a clean one is promoted; the next night retrains.
A receipt (hashes and counts, no personal data) goes to `<work>/audit/erasures/`. `dry_run` lists
what would change and changes nothing. Re-running finds nothing left and says so. Same as
`python -m include.matcher forget`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from include.airflow_support import CURRENT_EMBEDDINGS, operations_dag, s3_storage


@dag(
    dag_id="matcher_erasure",
    **operations_dag(),
    params={
        "keys": Param([], type="array", items={"type": "string"}, description="Raw keys of the CVs to erase."),
        "content_hashes": Param(
            [], type="array", items={"type": "string"}, description="Or sha256 content hashes of raw files."
        ),
        "dry_run": Param(False, type="boolean", description="List what would be erased; change nothing."),
        "keep_raw": Param(False, type="boolean", description="Leave the raw file (the source system owns it)."),
    },
    tags=["ml", "matcher", "operations", "privacy"],
    doc_md=__doc__,
)
def matcher_erasure():
    @task(outlets=[CURRENT_EMBEDDINGS])
    def forget(params=None, dag_run=None) -> dict:
        """Erase the CVs everywhere; the receipt's counts (no key, no text) as the task's result."""
        from include.matcher.foundations.settings import Locations
        from include.matcher.stages.erasure import forget as erase

        if not params["keys"] and not params["content_hashes"]:
            raise ValueError("give keys or content_hashes to erase")
        receipt = erase(
            list(params["keys"]),
            list(params["content_hashes"]),
            Locations.from_env(),
            s3_storage(),
            dry_run=params["dry_run"],
            keep_raw=params["keep_raw"],
            by=getattr(dag_run, "triggering_user_name", None) or "airflow",
        )
        return {k: receipt[k] for k in ("id", "dry_run", "objects", "records_removed", "nothing_left")}

    forget()


matcher_erasure()
