"""
### Nightly CV-to-job matcher retraining

**ingest** → **parse** → **train** → **validate** → **promote** → **refresh_embeddings**
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
   `min_improvement`, no category drops by more than `max_category_drop`, and it clears
   `min_primary`; otherwise `promote` is *skipped* and the report says why.
5. **promote** copies the candidate into the registry (`models/<version>/`) and swaps the production
   pointer; the `matcher_production_model` asset gets an event with the version and metrics.
6. **refresh_embeddings**: embeds every CV and job offer with the production model, in mapped shards
   (`MATCHER_EMBED_SHARD_SIZE`). It runs after a refused gate too, so new CVs get vectors every night;
   unchanged CVs keep theirs while the model is unchanged, and a night that changed nothing publishes
   nothing. `publish` flips `embeddings/current.json` and updates the `matcher_current_embeddings` asset.

Tasks hand each other S3 URIs only; every run writes under `<work>/runs/<run_id>/`. The last task
that runs logs a **run summary** (counts, timings, metrics, gate decision).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

from airflow.sdk import Param, TaskGroup, TriggerRule, dag, get_current_context, task

from include.airflow_support import CURRENT_EMBEDDINGS, PRODUCTION_MODEL, default_args, log_run_summary, s3_storage, timed
from include.matcher.settings import LOSSES, GateConfig, Locations, TrainingConfig

log = logging.getLogger(__name__)

# A cron expression; "none" leaves only manual and API triggers (an external scheduler, or tests).
SCHEDULE = None if os.environ.get("MATCHER_SCHEDULE", "").lower() == "none" else os.environ.get("MATCHER_SCHEDULE") or "0 2 * * *"
# The fine-tune task goes to a GPU worker when a deployment has one (Celery queue and pool names).
GPU_ROUTING = {key: os.environ[var] for key, var in (("queue", "MATCHER_GPU_QUEUE"), ("pool", "MATCHER_GPU_POOL")) if os.environ.get(var)}

TRAINING = TrainingConfig()
GATE = GateConfig()
LOCATIONS = Locations.from_env()

PARAMS = {
    "loss": Param(TRAINING.loss, type="string", enum=list(LOSSES), description="Training loss."),
    "epochs": Param(TRAINING.epochs, type="integer", minimum=1, maximum=50, description="Passes over the training pairs."),
    "batch_size": Param(TRAINING.batch_size, type="integer", minimum=1, maximum=1024, description="Examples per step."),
    "learning_rate": Param(TRAINING.learning_rate, type="number", exclusiveMinimum=0, maximum=1, description="AdamW peak learning rate."),
    "negative_ratio": Param(TRAINING.negative_ratio, type="number", minimum=0, maximum=20, description="Negatives per positive (fractions allowed; in-batch negatives for multiple_negatives)."),
    "hard_negatives": Param(TRAINING.hard_negatives, type="integer", minimum=0, maximum=20, description="Hard negatives mined per CV with the base model (0: off); used by multiple_negatives and triplet."),
    "hard_negative_margin": Param(TRAINING.hard_negative_margin, type="number", minimum=0, maximum=1, description="A mined negative must score this far below the CV's own category (guards against near-synonym categories)."),
    "cached_mini_batch": Param(TRAINING.cached_mini_batch, type="integer", minimum=0, maximum=1024, description="multiple_negatives: >0 uses CachedMultipleNegativesRankingLoss with this mini-batch, for large batches."),
    "strip_titles": Param(TRAINING.strip_titles, type="boolean", description="Train on CVs without their first line (the job title, which often names the category)."),
    "select_best": Param(TRAINING.select_best, type="boolean", description="Keep the checkpoint that scores best on the validation split, not the last."),
    "base_model": Param(TRAINING.base_model, type="string", description="Model to fine-tune: the packaged base model, a folder or an s3:// URI."),
    "min_improvement": Param(GATE.min_improvement, type="number", minimum=0, maximum=1, description=f"How much the candidate must beat production on {GATE.primary_metric}."),
    "max_category_drop": Param(GATE.max_category_drop, type="number", minimum=0, maximum=1, description=f"Largest {GATE.primary_metric} loss allowed in any category with at least {GATE.min_category_support} held-out CVs."),
    "min_primary": Param(GATE.min_primary, type="number", minimum=0, maximum=1, description=f"Absolute floor on the candidate's {GATE.primary_metric}."),
    "raw_prefix": Param(LOCATIONS.raw_cvs, type="string", pattern="^s3://", description="Raw CV prefix: s3://bucket/prefix holding <CATEGORY>/<file>."),
    "force_retrain": Param(False, type="boolean", description="Retrain even when no CV is new or changed."),
}


def _run():
    """This run's config (defaults + trigger params) and its run-scoped S3 prefix."""
    from include.matcher.settings import PipelineConfig

    context = get_current_context()
    config = PipelineConfig(locations=Locations.from_env()).with_params(dict(context["params"]))
    return config, config.locations.run_uri(context["run_id"])


@dag(
    dag_id="matcher_retraining",
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params=PARAMS,
    tags=["ml", "matcher", "retraining"],
    doc_md=__doc__,
)
def matcher_retraining():
    with TaskGroup("ingest", tooltip="Find new or changed CV files; stop on a night with nothing new"):

        @task
        @timed
        def find_new_files() -> str:
            """List the raw prefix, diff it with the ingestion ledger, write this run's `manifest.json`."""
            from include.matcher.ingest import ingest

            config, run_uri = _run()
            return ingest(run_uri, config.locations, s3_storage(), force=get_current_context()["params"]["force_retrain"])

        @task.short_circuit
        @timed
        def check_for_new_data(manifest_uri: str) -> bool:
            """Skip the rest of the run when no CV is new or changed and the jobs file is unchanged."""
            manifest = s3_storage().get_json(manifest_uri)
            log.info("files: %s; jobs file changed: %s; corpus not yet trained on: %s", manifest["counts"], manifest["jobs_file"]["changed"], manifest.get("untrained_corpus"))
            if not manifest["has_work"]:
                log.info("Nothing new tonight: training is skipped (trigger with force_retrain to retrain anyway).")
                log_run_summary()
            return manifest["has_work"]

        manifest = find_new_files()
        has_work = check_for_new_data(manifest)

    with TaskGroup("parse", tooltip="PDF / DOCX / TXT to text, in mapped shards"):

        @task
        @timed
        def plan_shards(manifest_uri: str) -> list[str]:
            """Cut the manifest's files into shards; one `parse_shard` task runs per shard."""
            from include.matcher.parse import plan_parse_shards

            config, run_uri = _run()
            return plan_parse_shards(manifest_uri, run_uri, s3_storage(), config.shards.parse_files)

        @task(map_index_template="{{ shard_name }}")
        @timed
        def parse_shard(shard_uri: str) -> str:
            """Parse one shard's files in isolated worker processes; its outcomes' URI."""
            from include.matcher.parse import parse_shard as parse_one_shard
            from include.matcher.parse import shard_name

            config, _ = _run()
            storage = s3_storage()
            get_current_context()["shard_name"] = shard_name(shard_uri, storage)
            return parse_one_shard(shard_uri, config.locations, storage, config.limits)

        @task
        @timed
        def collect(manifest_uri: str, outcome_uris: list[str]) -> str:
            """Check every file ended in exactly one place, commit the ledger, write the corpus snapshot."""
            from include.matcher.parse import collect_parsed

            config, run_uri = _run()
            return collect_parsed(manifest_uri, list(outcome_uris), run_uri, config.locations, s3_storage())

        shards = plan_shards(manifest)
        has_work >> shards
        corpus = collect(manifest, parse_shard.expand(shard_uri=shards))

    with TaskGroup("train", tooltip="Training pairs, then a fine-tuned candidate"):

        @task
        @timed
        def build_pairs(corpus_uri: str) -> str:
            """Split the corpus (stable, by text fingerprint) and shape examples for the chosen loss."""
            from include.matcher.pairs import build_pairs as build_pairs_stage

            config, run_uri = _run()
            return build_pairs_stage(corpus_uri, run_uri, config, s3_storage())

        @task(**GPU_ROUTING)
        @timed
        def fine_tune(pairs_uri: str) -> str:
            """Fine-tune the base model into a candidate (checkpoints mirrored to S3, resumed on retry)."""
            from include.matcher.training import fine_tune as fine_tune_stage

            config, run_uri = _run()
            return fine_tune_stage(pairs_uri, run_uri, config.training, s3_storage())

        pairs = build_pairs(corpus)
        candidate = fine_tune(pairs)

    with TaskGroup("validate", tooltip="Candidate vs production on the held-out split, and the gate"):

        @task
        @timed
        def evaluate(candidate_uri: str, pairs_uri: str) -> str:
            """Score candidate and production on the held-out CVs; write `validation_report.json`."""
            from include.matcher.validation import validate as validate_stage

            config, run_uri = _run()
            return validate_stage(candidate_uri, pairs_uri, run_uri, config.locations, config.gate, s3_storage(), base_model=config.training.base_model)

        @task.short_circuit(ignore_downstream_trigger_rules=False)
        @timed
        def gate(report_uri: str) -> bool:
            """Promote only a better candidate; a refusal skips `promote` and leaves the run green."""
            report = s3_storage().get_json(report_uri)
            decision = report["decision"]
            log.info("gate: %s: %s", "PROMOTE" if decision["promote"] else "KEEP PRODUCTION", decision["reason"])
            log.info("validation report: %s (for people: %s)", report_uri, report.get("html_report"))
            log_run_summary()
            return decision["promote"]

        report = evaluate(candidate, pairs)
        promote_allowed = gate(report)

    @task(outlets=[PRODUCTION_MODEL])
    @timed
    def promote(report_uri: str) -> str:
        """Copy the candidate into the registry and swap the production pointer (compare-and-swap)."""
        from include.matcher.ingest import record_trained
        from include.matcher.registry import promote as promote_stage

        config, run_uri = _run()
        storage = s3_storage()
        version_uri = promote_stage(report_uri, config.locations.registry, storage)
        record_trained(run_uri, config.locations, storage, "promoted")
        entry = storage.get_json(f"{version_uri}/entry.json")
        get_current_context()["outlet_events"][PRODUCTION_MODEL].extra = {"version": entry["version"], "uri": version_uri, "metrics": entry["metrics"]}
        return version_uri

    promoted = promote(report)
    promote_allowed >> promoted

    with TaskGroup("refresh_embeddings", tooltip="Embed every CV and job offer with the production model"):

        @task(trigger_rule=TriggerRule.NONE_FAILED)
        @timed
        def plan_embedding_shards(corpus_uri: str) -> list[str]:
            """Shards of CVs to embed with the production model; none when nothing changed."""
            from include.matcher.embeddings import plan_refresh
            from include.matcher.registry import read_production

            config, _ = _run()
            storage = s3_storage()
            production = read_production(storage, config.locations.registry)
            if production is None:
                log.info("No model in production yet: nothing to embed with.")
                return []
            return plan_refresh(production["uri"], corpus_uri, config.locations, storage, config.shards.embed_texts)

        @task(map_index_template="{{ shard_name }}")
        @timed
        def embed_shard(shard_uri: str) -> str:
            """Embed one shard's CVs (unchanged texts keep their vectors while the model is unchanged)."""
            from include.matcher.embeddings import embed_shard as embed_one_shard

            storage = s3_storage()
            get_current_context()["shard_name"] = storage.get_json(shard_uri)["name"]
            return embed_one_shard(shard_uri, storage)

        @task(outlets=[CURRENT_EMBEDDINGS])
        @timed
        def publish(shard_uris: list[str], part_uris: list[str]) -> str:
            """Embed the job texts, write the manifest, flip `current.json`, log the run summary."""
            from include.matcher.embeddings import publish_embeddings

            config, _ = _run()
            storage = s3_storage()
            shard = storage.get_json(list(shard_uris)[0])
            target = publish_embeddings(shard["version_uri"], shard["corpus_uri"], list(part_uris), config.locations, storage)
            manifest = storage.get_json(f"{target}/_manifest.json")
            get_current_context()["outlet_events"][CURRENT_EMBEDDINGS].extra = {"version": manifest["version"], "uri": target, "counts": manifest["counts"]}
            log_run_summary()
            return target

        embedding_shards = plan_embedding_shards(corpus)
        promoted >> embedding_shards
        publish(embedding_shards, embed_shard.expand(shard_uri=embedding_shards))


matcher_retraining()
