"""Stage 4, fine-tune: train a candidate bi-encoder with ``SentenceTransformerTrainer``.

Checkpoints go to ``<run>/checkpoints/`` on S3, so a retry after a killed worker resumes from the
last one instead of starting over. They are taken every ``checkpoint_minutes`` of training and at
each epoch's end (not every few steps: each is ~270 MB of weights and optimizer state, and its
scoring encodes the validation CVs), and uploaded by a background thread while training goes on.
``latest.json`` moves only once a checkpoint is whole on S3, so a resume never sees half of one.

AdamW with linear warmup, a fixed seed, bf16 (or fp16) and a prefetching data loader on CUDA, fp32
on CPU. The candidate folder holds the model, its model card (``README.md``,
:mod:`include.matcher.stages.model_card`: no training text), ``training_metadata.jsonl`` and ``training_config.json``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

from include.matcher.foundations import layout
from include.matcher.foundations.context import RunContext
from include.matcher.foundations.isolation import children_allowed
from include.matcher.foundations.losses import loss_spec
from include.matcher.foundations.settings import GateConfig, TrainingConfig
from include.matcher.foundations.storage import ObjectStore
from include.matcher.stages.model_card import TrainingStats, write_model_card

log = logging.getLogger(__name__)


# Checkpoints are chosen by what the gate will judge: the run's ``primary_metric``, this by default.
SELECTION_METRIC = GateConfig().primary_metric


def validation_selector(validation: list[dict], jobs: dict[str, list[str]], metric: str = SELECTION_METRIC):
    """A sentence-transformers evaluator: ``metric`` (the run's gate metric) on the validation split, titles
    stripped (:class:`~include.matcher.stages.training_callbacks.HeldOutRetrieval`)."""
    from include.matcher.stages.training_callbacks import HeldOutRetrieval

    return HeldOutRetrieval(validation, jobs, metric)


# The trainer's own step schedule never fires (CheckpointSchedule decides); the strategies stay
# "steps" because keeping the best checkpoint needs saving and scoring on the same schedule.
NEVER = 10**9


def selection_flags(selector) -> dict:
    """Trainer arguments that score each checkpoint and load the best one at the end."""
    if selector is None:
        return {}
    return {
        "eval_strategy": "steps",
        "eval_steps": NEVER,
        "load_best_model_at_end": True,
        "metric_for_best_model": f"eval_validation_{selector.metric}",
        "greater_is_better": True,
    }


def device_flags() -> dict:
    """Trainer arguments for the hardware at hand: mixed precision and the data loader.

    On CUDA: bf16 where supported (fp16 otherwise), pinned memory, and worker processes that tokenize
    the next batches while the GPU runs this one. On CPU the same workers would take cores from the
    model's own matmuls, and there is no device memory to pin for.
    """

    import torch

    if not torch.cuda.is_available():
        return {"bf16": False, "fp16": False, "dataloader_pin_memory": False, "dataloader_num_workers": 0}
    bf16 = torch.cuda.is_bf16_supported()
    workers = min(4, max(1, (os.cpu_count() or 2) // 2))
    return {
        "bf16": bf16,
        "fp16": not bf16,
        "dataloader_pin_memory": True,
        "dataloader_num_workers": workers,
        "dataloader_persistent_workers": True,
        "dataloader_prefetch_factor": 4,
    }


def _restore_checkpoint(storage: ObjectStore, checkpoint_uri: str, scratch: str) -> str | None:
    """Download the newest S3 checkpoint into ``scratch``; its local path, or None."""
    found = storage.get_with_etag(layout.latest_checkpoint(checkpoint_uri))
    if found is None:
        return None
    latest = json.loads(found[0])
    local = Path(scratch) / latest["uri"].rstrip("/").rsplit("/", 1)[1]
    storage.download_dir(latest["uri"], local)
    log.info("fine_tune: resuming from step %d (%s)", latest["step"], latest["uri"])
    return str(local)


def training_loss(spec, model, config: TrainingConfig, columns: tuple[str, ...]):
    """The loss of ``config.loss``; with counterfactual rows (a ``renamed`` column), the name-consistency
    loss around in-batch ranking (:func:`~include.matcher.foundations.losses.name_consistency_loss`)."""
    if "renamed" not in columns:
        return spec.build(model, config)
    from include.matcher.foundations.losses import name_consistency_loss

    return name_consistency_loss(model, config.name_consistency)


def train_model(
    rows: list[dict],
    metadata: list[dict],
    config: TrainingConfig,
    output_dir: str | Path,
    storage=None,
    checkpoint_uri: str | None = None,
    validation: list[dict] | None = None,
    jobs: dict[str, list[str]] | None = None,
    selection_metric: str = SELECTION_METRIC,
) -> Path:
    """Fine-tune ``config.base_model`` on ``rows`` and save the result into ``output_dir``.

    With ``checkpoint_uri``, a checkpoint is mirrored to S3 every ``config.checkpoint_minutes``, at
    each epoch's end (and every ``config.checkpoint_steps`` if set), and a rerun resumes from the
    newest one instead of starting over. With ``validation`` CVs and
    ``jobs`` (and ``config.select_best``), every checkpoint is scored on them and the best one, not
    the last, is what gets saved.
    """
    if not rows:
        raise ValueError("no training examples: the training split is empty")
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from include.matcher.foundations.models import load_model
    from include.matcher.stages.training_callbacks import CheckpointSchedule, ProgressLog, S3Checkpoints

    spec = loss_spec(config.loss)
    columns = spec.columns_for(rows)  # mined hard negatives add a column to the in-batch ones
    dataset = Dataset.from_dict({column: [row[column] for row in rows] for column in columns})
    model = load_model(config.base_model, storage, precision="fp32")  # reading in bf16 is for inference only
    model.max_seq_length = config.max_seq_length
    output_dir = Path(output_dir)
    selector = (
        validation_selector(validation, jobs, selection_metric) if config.select_best and validation and jobs else None
    )
    checkpointing = bool(checkpoint_uri or selector)

    with tempfile.TemporaryDirectory(prefix="matcher-train-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio of the total steps
            optim="adamw_torch",
            seed=config.seed,
            data_seed=config.seed,
            # In-batch negatives must be true negatives: one CV per category in a batch.
            batch_sampler=spec.batch_sampler(metadata),
            save_strategy="steps" if checkpointing else "no",
            save_steps=NEVER,
            save_total_limit=1,
            **selection_flags(selector),
            logging_steps=max(1, len(rows) // (config.batch_size * 10)),
            report_to="none",
            disable_tqdm=True,
            **device_flags(),
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            loss=training_loss(spec, model, config, columns),
            evaluator=selector,
        )
        trainer.remove_callback(PrinterCallback)  # progress goes to the task log through logging instead
        trainer.add_callback(ProgressLog())
        if checkpointing:
            trainer.add_callback(
                CheckpointSchedule(config.checkpoint_minutes, config.checkpoint_steps, scoring=bool(selector))
            )
        resume, uploads = None, None
        if checkpoint_uri:
            uploads = S3Checkpoints(storage, checkpoint_uri)
            trainer.add_callback(uploads)
            resume = _restore_checkpoint(storage, checkpoint_uri, scratch)
        started = time.monotonic()
        with children_allowed():  # CUDA's data-loader workers, inside a Celery prefork worker too
            result = trainer.train(resume_from_checkpoint=resume)
        seconds = time.monotonic() - started

    model.save(str(output_dir), create_model_card=False)  # its card would quote training CVs
    with open(output_dir / "training_metadata.jsonl", "w") as handle:
        for row in metadata:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
    stats = TrainingStats.written(
        {
            "config": config.to_dict(),
            "examples": len(rows),
            "train_seconds": round(seconds, 2),
            "examples_per_second": round(len(rows) * config.epochs / seconds, 3) if seconds else None,
            "train_loss": result.training_loss,
            "resumed_from": resume and Path(resume).name,
            "best_checkpoint": getattr(trainer.state, "best_model_checkpoint", None)
            and Path(trainer.state.best_model_checkpoint).name,
            "best_validation": getattr(trainer.state, "best_metric", None),
            "device": str(model.device),
            # Inside train_seconds: what best-checkpoint selection and resumability cost this run.
            "selection": None
            if selector is None
            else {"metric": selector.metric, "scorings": selector.scorings, "seconds": round(selector.seconds, 2)},
            "checkpoint_uploads": None
            if uploads is None
            else {"count": uploads.uploads, "waited_seconds": round(uploads.waited, 2)},
        }
    )
    (output_dir / "training_config.json").write_text(json.dumps(stats.to_json(), indent=2, sort_keys=True))
    write_model_card(output_dir, stats)
    log.info("fine_tune: %d examples x %d epochs in %.1fs on %s", len(rows), config.epochs, seconds, model.device)
    return output_dir


def fine_tune(pairs_uri: str, context: RunContext) -> str:
    """Task ``train.fine_tune``: train on ``<pairs>/train.jsonl``, upload the candidate to ``<run>/candidate/``.

    The validation split (``<pairs>/validation.jsonl``) picks the best checkpoint by the run's gate
    ``primary_metric``; the test split stays unseen until the gate.
    """
    run_uri, config, storage = context.run_uri, context.config.training, context.storage
    selection_metric = context.config.gate.primary_metric
    pairs, run = layout.Pairs(pairs_uri), layout.Run(run_uri)
    rows = storage.get_jsonl(pairs.split("train"))
    metadata = storage.get_jsonl(pairs.training_metadata)
    validation = storage.get_jsonl(pairs.split("validation")) if storage.exists(pairs.split("validation")) else []
    jobs = storage.get_json(pairs.jobs) if storage.exists(pairs.jobs) else None
    candidate_uri = run.candidate.uri
    with tempfile.TemporaryDirectory(prefix="matcher-candidate-") as local:
        checkpoint_uri = run.checkpoints
        train_model(
            rows,
            metadata,
            config,
            local,
            storage,
            checkpoint_uri=checkpoint_uri,
            validation=validation,
            jobs=jobs,
            selection_metric=selection_metric,
        )
        storage.upload_dir(local, candidate_uri)
    # The candidate is safe on S3: the checkpoints that guarded the training are no longer needed.
    storage.delete_prefix(checkpoint_uri)
    log.info("fine_tune: candidate at %s", candidate_uri)
    return candidate_uri
