"""
### Erase candidates (GDPR Art. 17)

Manual trigger only. Carries out an **erasure request**: an object under
`<work>/state/erasure-requests/` naming the raw keys (`CHEF/jane-doe.pdf`, the bucket key or its
`s3://` URI) or content hashes (sha256 of the raw file) of the CVs to erase, written by
`python -m include.matcher erase --key ... --submit`, which prints the URI to give as `request`.
The DAG takes that URI rather than the keys because a run's conf stays in Airflow's database, UI and
REST API for ever, and keys often hold names; the request is deleted once carried out.

The erasure reaches everywhere the pipeline put the CVs: the ledger (a keyed-hash tombstone keeps an
unchanged file from being ingested again), the current embeddings snapshot (rewritten; search stops
returning the CV at once), every run's pairs, training metadata and held-out vectors, older
snapshots, the registry's training metadata, the search log, the text cache and, unless `keep_raw`
(the source system owns the file), the raw object. Models trained on it are marked until a clean one
is promoted; the next night retrains. A receipt (counts, no personal data) goes to
`<work>/audit/erasures/`. `dry_run` lists what would change and changes nothing. A request that finds
nothing fails, saying so; a cleared task re-run after its request was carried out returns its receipt.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from include.airflow_support import CURRENT_EMBEDDINGS, operations_dag, s3_storage
from include.matcher.foundations import layout

REQUEST_PATTERN = layout.ERASURE_REQUEST_PATTERN


@dag(
    dag_id="matcher_erasure",
    **operations_dag(),
    params={
        "request": Param(
            None,
            type=["null", "string"],
            pattern=REQUEST_PATTERN,
            title="Erasure request",
            description="The s3:// URI `python -m include.matcher erase --key ... --submit` printed "
            "(never the keys themselves: a run's conf is kept in Airflow for ever).",
        ),
        "dry_run": Param(
            False, type="boolean", title="Dry run", description="List what would be erased; change nothing."
        ),
        "keep_raw": Param(
            False,
            type="boolean",
            title="Keep the raw file",
            description="Leave the raw file (the source system owns it).",
        ),
    },
    tags=["ml", "matcher", "operations", "privacy"],
    doc_md=__doc__,
)
def matcher_erasure():
    @task(outlets=[CURRENT_EMBEDDINGS])
    def erase(params=None, dag_run=None) -> dict:
        """Carry out the request everywhere; the receipt's counts (no key, no text) as the task's result."""
        from include.matcher.foundations.settings import Locations
        from include.matcher.stages.erasure import erase_by_request

        if not params.get("request"):
            raise ValueError("give the erasure request's URI (python -m include.matcher erase --key ... --submit)")
        receipt = erase_by_request(
            params["request"],
            Locations.from_env(),
            s3_storage(),
            dry_run=params["dry_run"],
            keep_raw=params["keep_raw"],
            by=getattr(dag_run, "triggering_user_name", None) or "airflow",
        )
        if receipt["not_found"] and not receipt.get("repeated"):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(  # a retry would find nothing either
                f"{receipt['not_found']} of the {receipt['asked']} CVs asked for were found nowhere "
                "(misspelt, never ingested, or erased before); the others were erased"
            )
        return {
            k: receipt[k]
            for k in ("id", "dry_run", "objects", "records_removed", "cvs_found", "not_found", "nothing_left")
        }

    erase()


matcher_erasure()
