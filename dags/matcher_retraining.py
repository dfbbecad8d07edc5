"""
### Nightly CV-to-job matcher retraining

`ingest` → `parse` → `build_pairs` → `fine_tune` → `validate` → `gate` → `promote` → `refresh_embeddings`

1. **ingest** lists `<raw prefix>/<CATEGORY>/<file>` and keeps the files the ingestion ledger has not
   seen (new or changed ETag). Files outside the layout or of other types are reported, not dropped.
2. **check_for_new_data** stops the run here (downstream *skipped*, run green) on a night with no new
   or changed CVs and an unchanged jobs file, unless `force_retrain` is set: retraining on an
   unchanged corpus with a fixed seed would only reproduce the model already judged.
3. **parse** turns PDF / DOCX / TXT into text (cached by content hash); unusable files become
   rejects with a reason and never fail the task.
4. **build_pairs** shapes training examples for the chosen loss and writes `training_metadata.jsonl`.
5. **fine_tune** trains a candidate with `SentenceTransformerTrainer` (GPU when present).
6. **validate** scores candidate and production on the held-out split → `validation_report.json`.
7. **gate** lets a candidate through only if it beats production by `min_improvement`, no category
   drops by more than `max_category_drop`, and it clears `min_primary`; otherwise promote and
   refresh are *skipped* and the report says why.
8. **promote** copies the candidate into the registry (`models/<version>/`) and swaps the production pointer.
9. **refresh_embeddings** re-embeds every CV and job offer with the promoted model.

Tasks hand each other S3 URIs only; every run writes under `<work>/runs/<run_id>/`.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task

from include.airflow_support import CURRENT_EMBEDDINGS, PRODUCTION_MODEL, default_args, s3_storage
from include.matcher.settings import LOSSES, GateConfig, Locations, TrainingConfig

log = logging.getLogger(__name__)

SCHEDULE = os.environ.get("MATCHER_SCHEDULE", "0 2 * * *")
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
    @task
    def ingest() -> str:
        from include.matcher.ingest import ingest as ingest_stage

        config, run_uri = _run()
        return ingest_stage(run_uri, config.locations, s3_storage(), force=get_current_context()["params"]["force_retrain"])

    @task.short_circuit
    def check_for_new_data(manifest_uri: str) -> bool:
        manifest = s3_storage().get_json(manifest_uri)
        log.info("files: %s; jobs file changed: %s", manifest["counts"], manifest["jobs_file"]["changed"])
        if not manifest["has_work"]:
            log.info("Nothing new tonight: training is skipped (trigger with force_retrain to retrain anyway).")
        return manifest["has_work"]

    @task
    def parse(manifest_uri: str) -> str:
        from include.matcher.parse import parse as parse_stage

        config, run_uri = _run()
        return parse_stage(manifest_uri, run_uri, config.locations, s3_storage(), config.limits)

    @task
    def build_pairs(corpus_uri: str) -> str:
        from include.matcher.pairs import build_pairs as build_pairs_stage

        config, run_uri = _run()
        return build_pairs_stage(corpus_uri, run_uri, config, s3_storage())

    @task(**GPU_ROUTING)
    def fine_tune(pairs_uri: str) -> str:
        from include.matcher.training import fine_tune as fine_tune_stage

        config, run_uri = _run()
        return fine_tune_stage(pairs_uri, run_uri, config.training, s3_storage())

    @task
    def validate(candidate_uri: str, pairs_uri: str) -> str:
        from include.matcher.validation import validate as validate_stage

        config, run_uri = _run()
        return validate_stage(candidate_uri, pairs_uri, run_uri, config.locations, config.gate, s3_storage(), base_model=config.training.base_model)

    @task.short_circuit
    def gate(report_uri: str) -> bool:
        decision = s3_storage().get_json(report_uri)["decision"]
        log.info("gate: %s: %s", "PROMOTE" if decision["promote"] else "KEEP PRODUCTION", decision["reason"])
        log.info("validation report: %s", report_uri)
        return decision["promote"]

    @task(outlets=[PRODUCTION_MODEL])
    def promote(report_uri: str) -> str:
        from include.matcher.registry import promote as promote_stage

        config, _ = _run()
        storage = s3_storage()
        version_uri = promote_stage(report_uri, config.locations.registry, storage)
        entry = storage.get_json(f"{version_uri}/entry.json")
        get_current_context()["outlet_events"][PRODUCTION_MODEL].extra = {"version": entry["version"], "uri": version_uri, "metrics": entry["metrics"]}
        return version_uri

    @task(outlets=[CURRENT_EMBEDDINGS])
    def refresh_embeddings(version_uri: str, corpus_uri: str) -> str:
        from include.matcher.embeddings import refresh_embeddings as refresh_stage

        config, _ = _run()
        target = refresh_stage(version_uri, corpus_uri, config.locations, s3_storage())
        get_current_context()["outlet_events"][CURRENT_EMBEDDINGS].extra = {"version": target.rstrip("/").rsplit("/", 1)[-1], "uri": target}
        log.info("run summary: %s", s3_storage().get_json(f"{target}/_manifest.json")["parts"])
        return target

    manifest = ingest()
    corpus = parse(manifest)
    check_for_new_data(manifest) >> corpus
    pairs = build_pairs(corpus)
    candidate = fine_tune(pairs)
    report = validate(candidate, pairs)
    version = promote(report)
    gate(report) >> version
    refresh_embeddings(version, corpus)


matcher_retraining()
