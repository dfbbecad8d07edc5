"""The model card (``README.md``) of a trained matcher, written without any training text.

sentence-transformers' own card quotes training examples (its widget and dataset samples), and here
those are CVs: personal data that must stay in ``texts/`` and ``pairs/``. This card says what a
person needs to judge and load the model (base model, loss, hyperparameters, data sizes, cost)
from counts and settings alone; :mod:`include.matcher.stages.validation` appends the evaluation.
"""

from __future__ import annotations

from pathlib import Path

FILE_NAME = "README.md"


def render_model_card(stats: dict) -> str:
    config = stats.get("config", {})
    hyper = ", ".join(f"`{key}={config[key]}`" for key in sorted(config)) or "-"
    return "\n".join(
        [
            "---",
            "library_name: sentence-transformers",
            "pipeline_tag: sentence-similarity",
            "tags: [sentence-transformers, cv-job-matching]",
            "---",
            "",
            "# CV-to-job matcher",
            "",
            f"A bi-encoder fine-tuned from `{config.get('base_model', '?')}` with the `{config.get('loss', '?')}` "
            "loss to score how well a CV fits a job description.",
            "",
            "```python",
            "from include.matcher import VectorMatcher",
            "",
            'matcher = VectorMatcher(model_name="<this folder, its s3:// URI, or production>")',
            'matcher.rank_jobs(cv_text, {"job-1": job_text})',
            "```",
            "",
            "## Training",
            "",
            f"{stats.get('examples', '?')} training examples, {stats.get('train_seconds', '?')} s on "
            f"{stats.get('device', '?')}"
            f" ({stats.get('examples_per_second', '?')} examples/s); best validation checkpoint: "
            f"{stats.get('best_checkpoint') or '-'}.",
            "",
            f"Hyperparameters: {hyper}",
            "",
            "The training CVs are personal data and are not quoted here; `training_metadata.jsonl` beside the model "
            "lists each",
            "example's source key and categories.",
            "",
        ]
    )


def write_model_card(model_dir: str | Path, stats: dict) -> Path:
    path = Path(model_dir) / FILE_NAME
    path.write_text(render_model_card(stats))
    return path
