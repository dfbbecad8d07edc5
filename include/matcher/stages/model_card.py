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
from include.matcher.foundations.storage import ObjectStore

FILE_NAME = "README.md"


@dataclass(frozen=True)
class ModelCardData:
    """What a card shows: the training's statistics, and the validation report once there is one."""

    training: dict
    report: object | None = None  # a ValidationReport

    def render(self) -> str:
        from include.matcher.foundations.templating import render_text_template
        from include.matcher.stages.report import model_card_section

        return render_text_template(
            "model_card.md",
            training=self.training,
            config=self.training.get("config", {}),
            hyperparameters=lambda values: ", ".join(f"`{key}={values[key]}`" for key in sorted(values)) or "-",
            evaluation=model_card_section(self.report).rstrip() if self.report is not None else "",
            approval=self.report.approval if self.report is not None else None,
        )


def render_model_card(stats: dict, report=None) -> str:
    return ModelCardData(stats, report).render()


def write_model_card(model_dir: str | Path, stats: dict) -> Path:
    """The card of a model just trained, beside it (no evaluation yet)."""
    path = Path(model_dir) / FILE_NAME
    path.write_text(render_model_card(stats))
    return path


def refresh_model_card(model_uri: str, storage: ObjectStore, report=None) -> str:
    """Render the card of the model folder at ``model_uri`` again from its training statistics and its
    validation report (``report``, or the one stored beside it); the card's URI."""
    from include.matcher.stages.validation_report import read_report

    model = layout.Model(model_uri)
    stats = storage.get_json(model.training_config) if storage.exists(model.training_config) else {}
    if report is None and storage.exists(model.validation_report):
        report = read_report(storage.get_bytes(model.validation_report))
    storage.put_bytes(model.card, render_model_card(stats, report).encode())
    return model.card
