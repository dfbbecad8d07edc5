"""Retrieval quality of a bi-encoder: CV -> job category.

Every job description is embedded; a category scores the best of its descriptions; the categories
are ranked for each CV. With exactly one relevant category per CV:
accuracy@k = share of CVs whose category ranks within k, MRR@10 = mean 1/rank (0 beyond 10),
NDCG@10 = mean 1/log2(rank + 1) (0 beyond 10).
"""

from __future__ import annotations

import numpy as np


def category_scores(cv_embeddings: np.ndarray, job_embeddings: np.ndarray, job_categories: list[str]) -> tuple[np.ndarray, list[str]]:
    """(n_cvs x n_categories) scores: cosine to each category's best description."""
    categories = sorted(set(job_categories))
    similarity = cv_embeddings @ job_embeddings.T
    scores = np.full((len(cv_embeddings), len(categories)), -np.inf, dtype=np.float32)
    for column, category in enumerate(categories):
        members = [i for i, c in enumerate(job_categories) if c == category]
        scores[:, column] = similarity[:, members].max(axis=1)
    return scores, categories


def ranks_of_truth(scores: np.ndarray, categories: list[str], truth: list[str]) -> np.ndarray:
    """1-based rank of each CV's true category."""
    index = {c: i for i, c in enumerate(categories)}
    true_scores = scores[np.arange(len(truth)), [index[t] for t in truth]]
    return 1 + (scores > true_scores[:, None]).sum(axis=1)


def retrieval_metrics(ranks: np.ndarray) -> dict[str, float]:
    if len(ranks) == 0:
        return {}
    ranks = np.asarray(ranks)
    within10 = ranks <= 10
    return {
        "accuracy@1": float(np.mean(ranks == 1)),
        "accuracy@3": float(np.mean(ranks <= 3)),
        "mrr@10": float(np.mean(np.where(within10, 1.0 / ranks, 0.0))),
        "ndcg@10": float(np.mean(np.where(within10, 1.0 / np.log2(ranks + 1), 0.0))),
        "count": int(len(ranks)),
    }


def evaluate_model(model, cvs: list[dict], jobs: dict[str, list[str]], batch_size: int = 32) -> dict:
    """Metrics for ``model`` on CV dicts (``text``, ``category``) against ``jobs``."""
    cvs = [cv for cv in cvs if cv["category"] in jobs]
    if not cvs:
        return {"metrics": {}, "per_category": {}}
    job_texts = [text for category in sorted(jobs) for text in jobs[category]]
    job_categories = [category for category in sorted(jobs) for _ in jobs[category]]
    job_embeddings = model.encode(job_texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    cv_embeddings = model.encode([cv["text"] for cv in cvs], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    scores, categories = category_scores(cv_embeddings, job_embeddings, job_categories)
    truth = [cv["category"] for cv in cvs]
    ranks = ranks_of_truth(scores, categories, truth)
    per_category = {
        category: retrieval_metrics(ranks[[i for i, t in enumerate(truth) if t == category]])
        for category in sorted(set(truth))
    }
    return {"metrics": retrieval_metrics(ranks), "per_category": per_category}
