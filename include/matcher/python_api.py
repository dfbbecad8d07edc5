"""The Python API of the Django command this pipeline replaces, kept so its users move over as they are.

``CVParser``, ``TrainingDatasetBuilder`` and ``MatcherTrainer`` (beside
:class:`~include.matcher.serving.matcher.VectorMatcher`) are thin faces over the pipeline's own stages: the
same parser and isolation, the same splits and example shapes, the same trainer. What they return
is what the old classes returned: text, ``InputExample`` pairs with their metadata rows, a model folder
with ``training_metadata.jsonl`` beside the weights.

    from include.matcher import CVParser, MatcherTrainer, TrainingDatasetBuilder, VectorMatcher

    text = CVParser().parse("cvs/CHEF/cv-1.pdf")
    examples, metadata = TrainingDatasetBuilder("cvs", "job_descriptions.json", negative_ratio=1.0).build()
    MatcherTrainer(loss="multiple_negatives", epochs=3).train(examples, "model", metadata)
    VectorMatcher(model_name="model").top_candidates("Pastry chef for a hotel kitchen")
"""

from __future__ import annotations

import os
from pathlib import Path

from include.matcher.foundations.documents import Rejected, sniff_kind
from include.matcher.foundations.losses import loss_spec
from include.matcher.foundations.settings import ParseLimits, SplitConfig, TrainingConfig, parse_limits_from_env

__all__ = ["CVParser", "MatcherTrainer", "Rejected", "TrainingDatasetBuilder"]

# What a document given as bytes alone is taken for, by what its bytes are.
EXTENSION_OF_KIND = {"pdf": ".pdf", "zip": ".docx", "ole2": ".docx"}


class CVParser:
    """Text of a CV document (PDF, DOCX or TXT), read as the nightly parse stage reads it.

    Parsing runs in the pipeline's isolated worker processes (time and memory limits, a crash costs
    one file), unless ``isolated=False``. A document that gives no usable text raises
    :class:`~include.matcher.foundations.documents.Rejected`, whose ``reason`` is one of the reject reasons.
    """

    def __init__(self, limits: ParseLimits | None = None, isolated: bool = True):
        self.limits = limits or parse_limits_from_env()
        self.isolated = isolated
        self._pool = None

    def parse(self, source: str | os.PathLike | bytes, filename: str | None = None) -> str:
        """The text of ``source``: a path, or the document's bytes (``filename`` names its type;
        without it the type is read from the bytes)."""
        from include.matcher.foundations.documents import extract_text

        if isinstance(source, bytes):
            data = source
            filename = filename or f"document{EXTENSION_OF_KIND.get(sniff_kind(data), '.txt')}"
        else:
            data, filename = Path(source).read_bytes(), filename or Path(source).name
        if not self.isolated:
            return extract_text(data, filename, self.limits).text
        from include.matcher.foundations.isolation import Document, IsolatedParser

        if self._pool is None:
            self._pool = IsolatedParser(limits=self.limits, workers=1)
        ((_, result),) = list(self._pool.map([Document(filename, data, filename)]))
        if isinstance(result, Rejected):
            raise result
        return result.text

    def close(self) -> None:
        """Stop the parser's worker process (it starts again on the next :meth:`parse`)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> CVParser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TrainingDatasetBuilder:
    """Training examples from a labelled folder (``<CATEGORY>/<file>``, local or ``s3://``) and a jobs file.

    :meth:`build` returns ``(examples, metadata)``: sentence-transformers ``InputExample`` rows shaped
    for ``loss`` (``cosine``: labelled (CV, description) pairs, ``negative_ratio`` negatives per
    positive; ``multiple_negatives``: (CV, description) pairs, negatives from the batch; ``triplet``:
    (CV, description, negative)) and one metadata row each (source key, categories, label; no text).
    CVs are split as the pipeline splits them: examples come from the training split only, and
    :attr:`held_out` keeps the validation and test CVs. Files that cannot be parsed are in
    :attr:`rejects`.
    """

    def __init__(
        self,
        data_root: str | os.PathLike,
        jobs_file: str | os.PathLike,
        negative_ratio: float = TrainingConfig.negative_ratio,
        loss: str = TrainingConfig.loss,
        seed: int = TrainingConfig.seed,
        strip_titles: bool = TrainingConfig.strip_titles,
        storage=None,
    ):
        self.data_root, self.jobs_file, self.storage = str(data_root), str(jobs_file), storage
        self.config = TrainingConfig(loss=loss, negative_ratio=negative_ratio, seed=seed, strip_titles=strip_titles)
        self.rejects: list[dict] = []
        self.held_out: dict[str, list[dict]] = {}

    def build(self) -> tuple[list, list[dict]]:
        from sentence_transformers import InputExample

        from include.legacy.labelled_folders import load_labelled_cvs
        from include.matcher.foundations.jobs import load_job_descriptions
        from include.matcher.stages.pairs import require_trainable, split_corpus, training_examples

        cvs, self.rejects = load_labelled_cvs(self.data_root, self.storage)
        jobs = load_job_descriptions(self.jobs_file, self.storage)
        by_split, unknown = split_corpus(cvs, jobs, SplitConfig())
        require_trainable(by_split, len(cvs), unknown)
        self.held_out = {name: by_split[name] for name in ("validation", "test")}
        built = training_examples(by_split["train"], jobs, self.config, self.storage)
        text_columns = [c for c in loss_spec(self.config.loss).columns_for(built.rows) if c != "label"]
        examples = [
            InputExample(
                guid=about["source_key"], texts=[row[c] for c in text_columns], label=float(row.get("label", 0.0))
            )
            for row, about in zip(built.rows, built.metadata, strict=True)
        ]
        return examples, built.metadata


class MatcherTrainer:
    """Fine-tunes a SentenceTransformer on ``InputExample`` rows: the pipeline's trainer (AdamW with
    linear warmup and decay, ``loss``, ``epochs``, ``learning_rate``, ``batch_size``; GPU when present).

    Any other :class:`~include.matcher.foundations.settings.TrainingConfig` field can be given by name
    (``base_model``, ``warmup_ratio``, ``max_seq_length``, ...); values are checked as the DAG's
    params are.
    """

    def __init__(
        self,
        loss: str = TrainingConfig.loss,
        batch_size: int = TrainingConfig.batch_size,
        epochs: int = TrainingConfig.epochs,
        learning_rate: float = TrainingConfig.learning_rate,
        **settings,
    ):
        self.config = TrainingConfig(
            loss=loss, batch_size=batch_size, epochs=epochs, learning_rate=learning_rate, **settings
        )

    def train(self, examples: list, output: str | os.PathLike, metadata: list[dict] | None = None) -> Path:
        """Train on ``examples`` and save the model into ``output`` with ``training_metadata.jsonl`` and
        ``training_config.json`` beside it; returns the folder.

        ``metadata`` (what :meth:`TrainingDatasetBuilder.build` returns) lets ``multiple_negatives``
        batch one CV per category; without it, batches are drawn at random.
        """
        from include.matcher.stages.training import train_model

        spec = loss_spec(self.config.loss)
        columns = [c for c in spec.columns if c != "label"]
        if examples and len(examples[0].texts) == len(columns) + 1 and spec.in_batch_negatives:
            columns.append("negative")  # (CV, description, hard negative) rows
        rows = []
        for example in examples:
            if len(example.texts) != len(columns):
                raise ValueError(
                    f"{self.config.loss} takes examples of {len(columns)} texts ({', '.join(columns)}), "
                    f"not {len(example.texts)}"
                )
            row = dict(zip(columns, example.texts, strict=True))
            if "label" in spec.columns:
                row["label"] = float(example.label)
            rows.append(row)
        if metadata is None:  # every example its own "category": the sampler then batches at random
            metadata = [
                {"source_key": example.guid or str(i), "category": str(i)} for i, example in enumerate(examples)
            ]
        if len(metadata) != len(rows):
            raise ValueError(f"{len(metadata)} metadata rows for {len(rows)} examples")
        return Path(train_model(rows, metadata, self.config, Path(output)))
