"""The training losses, one spec each: what examples look like, how they are batched, which
sentence-transformers loss trains on them. Adding a loss means adding one :class:`LossSpec` here.

* ``cosine``: (sentence1, sentence2, label) rows, a CV with each of its category's descriptions
  (label 1) and with ``negative_ratio`` descriptions of other categories (label 0).
* ``multiple_negatives``: (anchor, positive) rows, each CV with one description of its category
  taken in turn; every other positive in the batch is a negative, so batches hold one CV per
  category (:mod:`include.matcher.foundations.batching`). Mined hard negatives add a ``negative`` column.
* ``triplet``: (anchor, positive, negative) rows, one per negative.

Importing this module is cheap: sentence-transformers loads only when a loss is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One training row and what the metadata row beside it says about it."""

    row: dict
    about: dict


@dataclass(frozen=True)
class LossSpec:
    name: str
    columns: tuple[str, ...]
    # True: one (CV, description) pair per CV, the category's descriptions in turn, negatives from the
    # batch (negative_ratio unused; a mined hard negative adds a column); batches one CV per category.
    in_batch_negatives: bool
    shape: Callable[[str, str, list[tuple[str, str, int]]], list[Example]]
    build: Callable  # (model, TrainingConfig) -> a sentence-transformers loss

    def negatives_wanted(self, quota, mining: bool) -> int:
        """How many negatives the next positive takes (``quota``: the negative_ratio dispenser)."""
        if self.in_batch_negatives:
            return 1 if mining else 0
        return quota.next()

    def columns_for(self, rows: list[dict]) -> tuple[str, ...]:
        columns = (
            (*self.columns, "negative") if self.in_batch_negatives and rows and "negative" in rows[0] else self.columns
        )
        return (*columns, "renamed") if rows and "renamed" in rows[0] else columns

    def batch_sampler(self, metadata: list[dict]):
        from include.matcher.foundations.batching import category_distinct_sampler

        return category_distinct_sampler(metadata) if self.in_batch_negatives else "batch_sampler"


def _cosine_rows(cv: str, job: str, negatives: list[tuple[str, str, int]]) -> list[Example]:
    rows = [Example({"sentence1": cv, "sentence2": job, "label": 1.0}, {"label": 1.0})]
    for text, category, index in negatives:
        rows.append(
            Example(
                {"sentence1": cv, "sentence2": text, "label": 0.0},
                {"label": 0.0, "job_category": category, "job_index": index},
            )
        )
    return rows


def _in_batch_rows(cv: str, job: str, negatives: list[tuple[str, str, int]]) -> list[Example]:
    if not negatives:
        return [Example({"anchor": cv, "positive": job}, {"role": "anchor-positive"})]
    text, category, index = negatives[0]
    about = {"role": "anchor-positive-negative", "negative_category": category, "negative_index": index}
    return [Example({"anchor": cv, "positive": job, "negative": text}, about)]


def _triplet_rows(cv: str, job: str, negatives: list[tuple[str, str, int]]) -> list[Example]:
    return [
        Example(
            {"anchor": cv, "positive": job, "negative": text},
            {"role": "anchor-positive-negative", "negative_category": category, "negative_index": index},
        )
        for text, category, index in negatives
    ]


def _cosine_loss(model, config):
    from sentence_transformers.sentence_transformer import losses

    return losses.CosineSimilarityLoss(model)


def _multiple_negatives_loss(model, config):
    from sentence_transformers.sentence_transformer import losses

    if config.cached_mini_batch:
        # Gradient caching: the batch (and its in-batch negatives) can be far larger than memory allows.
        return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.cached_mini_batch)
    return losses.MultipleNegativesRankingLoss(model)


def name_consistency_loss(model, weight: float):
    """Counterfactual training: rows (anchor, positive[, negative], renamed), ``renamed`` the anchor's CV
    under another group's name. Both readings of the CV rank its job against the batch (in-batch
    negatives, as ``multiple_negatives``), and ``weight`` x (1 - cosine) between the two readings is
    added, so what the model makes of a CV does not depend on whose name is on it
    (:class:`~include.matcher.foundations.name_consistency.NameConsistencyLoss`)."""
    from include.matcher.foundations.name_consistency import NameConsistencyLoss

    return NameConsistencyLoss(model, weight)


def _triplet_loss(model, config):
    from sentence_transformers.sentence_transformer import losses

    return losses.TripletLoss(model)


SPECS = {
    spec.name: spec
    for spec in (
        LossSpec("cosine", ("sentence1", "sentence2", "label"), False, _cosine_rows, _cosine_loss),
        LossSpec("multiple_negatives", ("anchor", "positive"), True, _in_batch_rows, _multiple_negatives_loss),
        LossSpec("triplet", ("anchor", "positive", "negative"), False, _triplet_rows, _triplet_loss),
    )
}
LOSSES = tuple(SPECS)


def loss_spec(name: str) -> LossSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; one of {LOSSES}") from None
