"""The name-consistency loss: a CV ranks its job the same whoever's name is on it.

Imported only when a model is trained with counterfactual rows (torch loads with this module); built
through :func:`~include.matcher.foundations.losses.name_consistency_loss`.
"""

from __future__ import annotations

import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer import losses


class NameConsistencyLoss(torch.nn.Module):
    """Rows (anchor, positive[, negative], renamed), ``renamed`` the anchor's CV under another group's
    name. Both readings of the CV rank its job against the batch (in-batch negatives, as
    ``multiple_negatives``), and ``weight`` x (1 - cosine) between the two readings is added."""

    def __init__(self, model, weight: float):
        super().__init__()
        self.model, self.weight = model, weight
        self.ranking = losses.MultipleNegativesRankingLoss(model)

    def forward(self, sentence_features, labels):
        *ranked, renamed = embed_columns(self.model, sentence_features)
        ranking = self.ranking.compute_loss_from_embeddings(ranked, labels)
        ranking_renamed = self.ranking.compute_loss_from_embeddings([renamed, *ranked[1:]], labels)
        apart = 1 - torch.nn.functional.cosine_similarity(ranked[0], renamed).mean()
        return (ranking + ranking_renamed) / 2 + self.weight * apart
