"""The model card (``README.md``) of a trained matcher, rendered whole from its data, never edited.

The card's data is what the folder already holds: the training's statistics (``training_config.json``)
and, once the night validated it, the validation report (evaluation, bias audit, gate and, once a
person answered, the approval). Training writes the card from the first (:func:`write_model_card`);
validation and the approval render it again from both (:func:`refresh_model_card`), so the card says
what its data says, whichever step wrote it last and however often a cleared task re-runs.

sentence-transformers' own card quotes training examples (its widget and dataset samples), and here
those are CVs: personal data that must stay in ``texts/`` and ``pairs/``. This card says what a
person needs to judge and load the model (base model, loss, hyperparameters, data sizes, cost) from
counts and settings alone. Its layout is ``include/matcher/templates/model_card.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from include.matcher.foundations import layout
from include.matcher.foundations.records import Count, Number, Record
from include.matcher.foundations.storage import ObjectStore

FILE_NAME = "README.md"


class CheckpointSelection(Record):
    """What choosing the best checkpoint by validation cost the run (inside its training time)."""

    metric: str
    scorings: Count
    seconds: Number


class CheckpointUploads(Record):
    count: Count
    waited_seconds: Number


class TrainingStats(Record):
    """A fine-tune's settings and cost: ``training_config.json`` beside the model, what its card and
    the validation report's ``training`` section say of it."""

    record_name = "training statistics"

    config: dict[str, Number | str | bool | None] = {}  # TrainingConfig, as its to_dict() gives it
    examples: Count | None = None
    train_seconds: Number | None = None
    examples_per_second: Number | None = None
    train_loss: Number | None = None
    resumed_from: str | None = None
    best_checkpoint: str | None = None
    best_validation: Number | None = None
    device: str | None = None
    selection: CheckpointSelection | None = None
    checkpoint_uploads: CheckpointUploads | None = None


def read_training_stats(storage: ObjectStore, model_uri: str) -> TrainingStats | None:
    """The statistics beside the model at ``model_uri``; None for a model not trained here (the base model)."""
    found = storage.get_with_etag(layout.Model(model_uri).training_config)
    return None if found is None else TrainingStats.load(found[0])


@dataclass(frozen=True)
class ModelCardData:
    """What a card shows: the training's statistics, and the validation report once there is one."""

    training: TrainingStats | None
    report: object | None = None  # a ValidationReport

    def render(self) -> str:
        from include.matcher.foundations.templating import render_text_template
        from include.matcher.stages.report import model_card_section

        return render_text_template(
            "model_card.md",
            training=self.training,
            config=self.training.config if self.training else {},
            hyperparameters=lambda values: ", ".join(f"`{key}={values[key]}`" for key in sorted(values)) or "-",
            evaluation=model_card_section(self.report).rstrip() if self.report is not None else "",
            approval=self.report.approval if self.report is not None else None,
        )


def render_model_card(stats: TrainingStats | dict | None, report=None) -> str:
    return ModelCardData(TrainingStats.load(stats) if isinstance(stats, dict) else stats, report).render()


def write_model_card(model_dir: str | Path, stats: TrainingStats) -> Path:
    """The card of a model just trained, beside it (no evaluation yet)."""
    path = Path(model_dir) / FILE_NAME
    path.write_text(render_model_card(stats))
    return path


def refresh_model_card(model_uri: str, storage: ObjectStore, report=None) -> str:
    """Render the card of the model folder at ``model_uri`` again from its training statistics and its
    validation report (``report``, or the one stored beside it); the card's URI."""
    from include.matcher.stages.validation_report import read_report

    model = layout.Model(model_uri)
    stats = read_training_stats(storage, model_uri)
    if report is None and storage.exists(model.validation_report):
        report = read_report(storage.get_bytes(model.validation_report))
    storage.put_bytes(model.card, render_model_card(stats, report).encode())
    return model.card
