"""What the trainer calls back into during a fine-tune: progress lines, checkpoint timing, checkpoint
uploads, and the scoring of each checkpoint. One class each, used by
:func:`~include.matcher.stages.training.train_model`.

Imported only when a model is trained: transformers and sentence-transformers load with this module,
not when a DAG file is parsed.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator
from transformers import TrainerCallback

from include.matcher.foundations import layout
from include.matcher.foundations.storage import ObjectStore
from include.matcher.stages.model_card import FILE_NAME as MODEL_CARD

log = logging.getLogger("include.matcher.stages.training")  # one logger for the fine-tune's lines


class ProgressLog(TrainerCallback):
    """Training progress (loss, learning rate, epoch) as log lines, without any text."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            log.info("fine_tune: step %d/%d %s", state.global_step, state.max_steps, {k: logs[k] for k in sorted(logs)})


class HeldOutRetrieval(SentenceEvaluator):
    """``metric`` (the run's gate metric) of a checkpoint on the validation CVs, titles stripped: how
    the trainer picks the checkpoint it keeps."""

    def __init__(self, validation: list[dict], jobs: dict[str, list[str]], metric: str):
        super().__init__()
        self.validation, self.jobs = validation, jobs
        self.name = "validation"
        self.primary_metric = self.metric = metric  # sentence-transformers prefixes primary_metric once scored
        self.scorings, self.seconds = 0, 0.0  # what selection costs the training, for its stats

    def __call__(self, model, output_path=None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        from include.matcher.foundations.evaluation import evaluate_model

        started = time.monotonic()
        metrics = evaluate_model(model, self.validation, self.jobs, with_title=False)["metrics"]
        self.scorings, self.seconds = self.scorings + 1, self.seconds + time.monotonic() - started
        log.info("fine_tune: validation at step %d: %s %.4f", steps, self.metric, metrics.get(self.metric, 0.0))
        return self.prefix_name_to_metrics({self.metric: metrics.get(self.metric, 0.0)}, self.name)


class CheckpointSchedule(TrainerCallback):
    """Checkpoint (and score, when ``scoring``) every ``minutes`` of training, every ``steps`` steps if
    set, and at each epoch's end: a resume loses at most ``minutes`` of work, and a short run still
    gets one checkpoint per epoch to choose from."""

    def __init__(self, minutes: float, steps: int, scoring: bool):
        self.minutes, self.steps, self.scoring = minutes, steps, scoring
        self.last = time.monotonic()

    def _checkpoint(self, control) -> None:
        control.should_save = True
        control.should_evaluate = self.scoring
        self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() - self.last >= self.minutes * 60 or (self.steps and state.global_step % self.steps == 0):
            self._checkpoint(control)
        elif state.global_step >= state.max_steps:
            # The trainer's own save and scoring at the last step: the epoch's end does both just after.
            control.should_save = control.should_evaluate = False

    def on_epoch_end(self, args, state, control, **kwargs):
        self._checkpoint(control)


class S3Checkpoints(TrainerCallback):
    """Mirror each checkpoint to ``checkpoint_uri`` in the background, move ``latest.json`` to it
    (pointer last), then drop the older ones.

    A resume needs only the latest; each checkpoint holds the model and the optimizer state (for
    MiniLM, 91 MB of weights plus two AdamW moments of that size), so keeping every one would fill
    the bucket night after night. One upload at a time, in order: the next checkpoint (or the end of
    training) waits for the one before, and an upload's error fails the training.
    """

    def __init__(self, storage: ObjectStore, checkpoint_uri: str):
        self.storage, self.checkpoint_uri = storage, checkpoint_uri
        self._uploads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-upload")
        self._pending: Future | None = None
        self.uploads, self.waited = 0, 0.0  # seconds the training stood still for an upload
        self._staging = tempfile.TemporaryDirectory(prefix="matcher-checkpoint-")

    def on_save(self, args, state, control, **kwargs):
        local = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        # sentence-transformers' card quotes training CVs; a resume needs weights and state, not the card.
        (local / MODEL_CARD).unlink(missing_ok=True)
        self.wait()
        # Hard links: instant, and the upload keeps its files when the trainer rotates the folder away.
        staged = Path(self._staging.name) / local.name
        shutil.copytree(local, staged, copy_function=os.link)
        self._pending = self._uploads.submit(self._upload, staged, state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.wait()

    def wait(self) -> None:
        """Block until the checkpoint being uploaded is on S3 (re-raising its error)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            started = time.monotonic()
            pending.result()
            self.uploads, self.waited = self.uploads + 1, self.waited + time.monotonic() - started

    def _upload(self, staged: Path, step: int) -> None:
        target = layout.checkpoint(self.checkpoint_uri, staged.name)
        self.storage.upload_dir(staged, target)
        self.storage.put_json(layout.latest_checkpoint(self.checkpoint_uri), {"step": step, "uri": target})
        log.info("fine_tune: checkpoint at step %d saved to %s", step, target)
        names = {
            info.uri[len(self.checkpoint_uri.rstrip("/")) + 1 :].split("/", 1)[0]
            for info in self.storage.list(self.checkpoint_uri)
        }
        for name in sorted(n for n in names if n.startswith("checkpoint-") and n != staged.name):
            self.storage.delete_prefix(layout.checkpoint(self.checkpoint_uri, name))
        shutil.rmtree(staged, ignore_errors=True)
