"""
### Nightly CV-to-job matcher retraining

**ingest** → **parse** → **train** → **validate** → **approve** → **promote** → **refresh_embeddings**
(each a task group; the heavy ones are mapped over shards so a Celery or Kubernetes executor
spreads them over workers).

1. **ingest**: `find_new_files` lists `<raw prefix>/<CATEGORY>/<file>` and keeps the files the
   ingestion ledger has not seen (new or changed ETag); files outside the layout or of other types are
   reported, not dropped. `check_for_new_data` stops the run there (downstream *skipped*, run green)
   on a night with no new or changed CVs and an unchanged jobs file, unless `force_retrain` is set:
   retraining on an unchanged corpus with a fixed seed would only reproduce the model already judged.
2. **parse**: `plan_shards` cuts the new files into shards (`MATCHER_PARSE_SHARD_SIZE`);
   `parse_shard` (one mapped task per shard, named in the UI) turns PDF / DOCX / TXT into text in a
   process pool sized to the worker's cores, cached by content hash; unusable files become rejects with
   a reason and never fail the task. `collect` checks every file ended in exactly one place, commits
   the ledger and writes the corpus snapshot.
3. **train**: `build_pairs` shapes training examples for the chosen loss and writes
   `training_metadata.jsonl`; `fine_tune` trains a candidate with `SentenceTransformerTrainer` (GPU
   when present; queue/pool from `MATCHER_GPU_QUEUE` / `MATCHER_GPU_POOL`).
4. **validate**: `evaluate` scores candidate and production on the held-out split →
   `validation_report.json`; `gate` lets a candidate through only if it beats production by
   `min_improvement` beyond doubt (paired bootstrap interval at `confidence`), neither job -> CV
   MAP@10 nor a well-supported category gets worse beyond doubt, and it clears `min_primary`;
   the bias audit's lowest impact ratio must not lie below `min_impact_ratio` beyond doubt, nor a name
   move the candidate more than production by `max_name_sensitivity_increase`; otherwise `promote` is
   *skipped* and the report says which rule decided. `approve` (Airflow's `ApprovalOperator`) then asks
   a person, when `require_approval` is set, with the gate's figures and the audit in the request:
   Reject, or no answer within `MATCHER_APPROVAL_TIMEOUT_HOURS`, skips `promote`.
5. **promote** copies the candidate into the registry (`models/<version>/`) and swaps the production
   pointer; the `matcher_production_model` asset gets an event with the version and metrics.
6. **refresh_embeddings**: embeds every CV and job offer with the production model, in mapped shards
   (`MATCHER_EMBED_SHARD_SIZE`). It runs after a refused gate too, so new CVs get vectors every night;
   unchanged CVs keep theirs while the model is unchanged, and a night that changed nothing publishes
   nothing. `publish` builds the ANN index of a large corpus, flips `embeddings/current.json` and
   updates the `matcher_current_embeddings` asset.

Tasks hand each other S3 URIs only; every run writes under `<work>/runs/<run id slug>-<hash>/`. The last task
that runs logs a **run summary** (counts, timings, metrics, gate decision).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import TaskGroup, TriggerRule, dag, task

from include.airflow_support import (
    CURRENT_EMBEDDINGS,
    PRODUCTION_MODEL,
    dag_params,
    default_args,
    log_run_summary,
    promotion_approval,
    pulled,
    run_stage,
    s3_storage,
)
from include.matcher.foundations.settings import RETRAINING_DAG_ID, deployment_setting

APPROVE_DOC = (
    "Airflow's ApprovalOperator: a person approves this night's promotion (Browse > Required actions), "
    "shown the gate's figures and the bias audit. Reject, or no answer in MATCHER_APPROVAL_TIMEOUT_HOURS, "
    "skips promote; with require_approval off it passes straight through. The decision is kept in the report."
)
# A cron expression; "none" leaves only manual and API triggers (an external scheduler, or tests).
SCHEDULE = None if deployment_setting("MATCHER_SCHEDULE").lower() == "none" else deployment_setting("MATCHER_SCHEDULE")
# The fine-tune task goes to a GPU worker when a deployment has one (Celery queue and pool names).
GPU_ROUTING = {
    key: deployment_setting(var)
    for key, var in (("queue", "MATCHER_GPU_QUEUE"), ("pool", "MATCHER_GPU_POOL"))
    if deployment_setting(var)
}


def name_the_shard(shard_uri: str) -> None:
    """Show the shard's readable name (``shard 2/7: files 501-1000``) as the mapped task's name in the UI."""
    from airflow.sdk import get_current_context

    from include.matcher.stages.parse import shard_name

    get_current_context()["shard_name"] = shard_name(shard_uri, s3_storage())


@dag(
    dag_id=RETRAINING_DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params=dag_params(),
    tags=["ml", "matcher", "retraining"],
    doc_md=__doc__,
)
def matcher_retraining():
    # Each task is one call: run_stage gives the stage its inputs and this run's context (settings,
    # params, S3) and records its time. Stages import inside the tasks: parsing the DAG stays light.
    with TaskGroup("ingest", tooltip="Find new or changed CV files; stop on a night with nothing new"):

        @task
        def find_new_files(params=None, run_id=None) -> str:
            """List the raw prefix, diff it with the ingestion ledger, write this run's `manifest.json`."""
            from include.matcher.stages import ingest

            return run_stage(ingest.find_new_files, params=params, run_id=run_id)

        @task.short_circuit
        def check_for_new_data(manifest_uri: str, params=None, run_id=None) -> bool:
            """Skip the rest of the run when nothing is new, changed or untrained and the jobs file is unchanged."""
            from include.matcher.stages import ingest

            work = run_stage(ingest.check_for_new_data, manifest_uri, params=params, run_id=run_id)
            if not work:
                log_run_summary()
            return work

        manifest = find_new_files()
        has_new_data = check_for_new_data(manifest)

    with TaskGroup("parse", tooltip="PDF / DOCX / TXT to text, in mapped shards"):

        @task
        def plan_shards(manifest_uri: str, params=None, run_id=None) -> list[str]:
            """Cut the manifest's files into shards; one `parse_shard` task runs per shard."""
            from include.matcher.stages import parse

            return run_stage(parse.plan_shards, manifest_uri, params=params, run_id=run_id)

        @task(map_index_template="{{ shard_name }}")
        def parse_shard(shard_uri: str, params=None, run_id=None) -> str:
            """Parse one shard's files in isolated worker processes; its outcomes' URI."""
            from include.matcher.stages import parse

            name_the_shard(shard_uri)
            return run_stage(parse.parse_shard, shard_uri, params=params, run_id=run_id)

        @task
        def collect(manifest_uri: str, outcome_uris: list[str], params=None, run_id=None) -> str:
            """Check every file ended in exactly one place, commit the ledger, write the corpus snapshot."""
            from include.matcher.stages import parse

            return run_stage(parse.collect, manifest_uri, pulled(outcome_uris), params=params, run_id=run_id)

        shards = plan_shards(manifest)
        has_new_data >> shards
        corpus = collect(manifest, parse_shard.expand(shard_uri=shards))

    with TaskGroup("train", tooltip="Training pairs, then a fine-tuned candidate"):

        @task
        def build_pairs(corpus_uri: str, params=None, run_id=None) -> str:
            """Split the corpus (stable, by text fingerprint) and shape examples for the chosen loss."""
            from include.matcher.stages import pairs

            return run_stage(pairs.build_pairs, corpus_uri, params=params, run_id=run_id)

        @task(**GPU_ROUTING)
        def fine_tune(pairs_uri: str, params=None, run_id=None) -> str:
            """Fine-tune the base model into a candidate (checkpoints mirrored to S3, resumed on retry)."""
            from include.matcher.stages import training

            return run_stage(training.fine_tune, pairs_uri, params=params, run_id=run_id)

        pairs = build_pairs(corpus)
        candidate = fine_tune(pairs)

    with TaskGroup("validate", tooltip="Candidate vs production on the held-out split, and the gate"):

        @task
        def evaluate(candidate_uri: str, pairs_uri: str, params=None, run_id=None) -> str:
            """Score candidate and production on the held-out CVs; write `validation_report.json`."""
            from include.matcher.stages import validation

            # The run id lets the Matcher page link the night to its Airflow run.
            def evaluate_this_run(candidate_uri, pairs_uri, context):
                return validation.evaluate(candidate_uri, pairs_uri, context, airflow_run_id=run_id)

            return run_stage(evaluate_this_run, candidate_uri, pairs_uri, params=params, run_id=run_id)

        @task.short_circuit(ignore_downstream_trigger_rules=False)
        def gate(report_uri: str, params=None, run_id=None) -> bool:
            """Promote only a sound, better candidate; a refusal skips `promote` and leaves the run green."""
            from include.matcher.stages import validation

            decision = run_stage(validation.gate, report_uri, params=params, run_id=run_id)
            log_run_summary()
            return decision

        report = evaluate(candidate, pairs)
        promote_allowed = gate(report)

    # A person approves the promotion (human oversight); it passes through when require_approval is off.
    approved = promotion_approval(task_id="approve", report_task_id="validate.evaluate", doc_md=APPROVE_DOC)
    promote_allowed >> approved

    @task(outlets=[PRODUCTION_MODEL])
    def promote(report_uri: str, params=None, run_id=None, outlet_events=None) -> str:
        """Copy the candidate into a new registry version and swap the production pointer (compare-and-swap)."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.matcher.stages import registry

        try:
            entry = run_stage(registry.promote_night, report_uri, params=params, run_id=run_id)
        except registry.PromotionRefused as refused:  # a missing or negative human decision: no retry mends it
            raise AirflowFailException(str(refused)) from refused
        outlet_events[PRODUCTION_MODEL].extra = {
            "version": entry["version"],
            "uri": entry["uri"],
            "metrics": entry["metrics"],
        }
        return entry["uri"]

    promoted = promote(report)
    approved >> promoted

    with TaskGroup("refresh_embeddings", tooltip="Embed every CV and job offer with the production model"):

        @task(trigger_rule=TriggerRule.NONE_FAILED)
        def plan_embedding_shards(corpus_uri: str, params=None, run_id=None) -> list[str]:
            """Shards of CVs to embed with the production model; none when nothing changed."""
            from include.matcher.stages import embeddings

            return run_stage(embeddings.plan_embedding_shards, corpus_uri, params=params, run_id=run_id)

        @task(map_index_template="{{ shard_name }}")
        def embed_shard(shard_uri: str, params=None, run_id=None) -> str:
            """Embed one shard's CVs (unchanged texts keep their vectors while the model is unchanged)."""
            from include.matcher.stages import embeddings

            name_the_shard(shard_uri)
            return run_stage(embeddings.embed_shard, shard_uri, params=params, run_id=run_id)

        @task(outlets=[CURRENT_EMBEDDINGS])
        def publish(shard_uris: list[str], part_uris: list[str], params=None, run_id=None, outlet_events=None) -> str:
            """Embed the job texts, write the manifest, flip `current.json`, log the run summary."""
            from include.matcher.stages import embeddings

            published = run_stage(
                embeddings.publish, pulled(shard_uris), pulled(part_uris), params=params, run_id=run_id
            )
            outlet_events[CURRENT_EMBEDDINGS].extra = {
                "version": published["version"],
                "uri": published["uri"],
                "counts": published["counts"],
            }
            log_run_summary()
            return published["uri"]

        embedding_shards = plan_embedding_shards(corpus)
        promoted >> embedding_shards
        publish(embedding_shards, embed_shard.expand(shard_uri=embedding_shards))


matcher_retraining()
