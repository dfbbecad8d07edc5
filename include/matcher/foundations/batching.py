"""Batches for in-batch-negative losses in which no example is another's false negative.

``MultipleNegativesRankingLoss`` treats every other text in a batch as a negative for each anchor.
Here many CVs share a category and a category has several descriptions, so sentence-transformers'
``no_duplicates`` sampler (which only keeps identical texts apart) still lets a batch hold two CVs of
one category with two different descriptions of it: each CV is then pushed away from a description
of its own category. With 24 categories and 16 examples a batch, almost every batch would.

:class:`CategoryDistinctBatchSampler` fills each batch with examples of distinct categories, and
keeps out any example whose mined hard negative belongs to a category already anchored in the batch
(and the reverse), so every in-batch negative is a true one.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import torch
from sentence_transformers.base.sampler import DefaultBatchSampler


class CategoryDistinctBatchSampler(DefaultBatchSampler):
    """Shuffled batches whose examples' categories are pairwise distinct.

    ``categories[i]`` is the category of example ``i``'s anchor and positive; ``negative_categories[i]``
    that of its hard negative, or None. Each batch takes one example from each of the categories with
    the most examples left, so every example is used once an epoch and only a category holding more
    than one batch's share of the data leaves smaller batches at the end.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns=None,
        generator=None,
        seed: int = 0,
        *,
        categories: list[str],
        negative_categories: list[str | None] | None = None,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        if len(categories) != len(dataset):
            raise ValueError(f"{len(categories)} categories for {len(dataset)} examples")
        self.categories = list(categories)
        self.negative_categories = list(negative_categories or [None] * len(categories))
        self._length: int | None = None

    def __iter__(self) -> Iterator[list[int]]:
        generator = self.generator or torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        queues: dict[str, list[int]] = {}
        for index in torch.randperm(len(self.categories), generator=generator).tolist():
            queues.setdefault(self.categories[index], []).append(index)
        while any(queues.values()):
            # Fullest categories first (random among equals): a large category left for the end
            # would have to fill the last batches alone.
            tiebreak = dict(zip(queues, torch.rand(len(queues), generator=generator).tolist(), strict=True))
            order = sorted((c for c in queues if queues[c]), key=lambda c: (-len(queues[c]), tiebreak[c]))
            batch, anchored, negated = [], set(), set()
            for category in order:
                if len(batch) == self.batch_size:
                    break
                if category in negated:
                    continue
                queue = queues[category]
                fitting = next(
                    (
                        position
                        for position, index in enumerate(queue)
                        if self.negative_categories[index] not in anchored
                    ),
                    None,
                )
                if fitting is None:
                    continue
                index = queue.pop(fitting)
                batch.append(index)
                anchored.add(category)
                if self.negative_categories[index] is not None:
                    negated.add(self.negative_categories[index])
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def __len__(self) -> int:
        # The learning-rate schedule is planned from this, so count a real pass (it varies little
        # from epoch to epoch) rather than assume full batches; counting is cheap next to training.
        if self._length is None:
            self._length = sum(1 for _ in self)
        return self._length


def category_distinct_sampler(metadata: list[dict]):
    """A ``batch_sampler`` argument for ``SentenceTransformerTrainingArguments``, built from training metadata.

    A ``functools.partial`` of a module-level class rather than a closure, because the trainer pickles
    its arguments into every checkpoint.
    """
    return partial(
        CategoryDistinctBatchSampler,
        categories=[row["category"] for row in metadata],
        negative_categories=[row.get("negative_category") for row in metadata],
    )
