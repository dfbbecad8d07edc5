"""The retrieval metrics, each written once, and their names.

CV -> job: every CV has one relevant category, ranked among all categories by the best of each
category's descriptions. accuracy@k = share of CVs whose category ranks within k; MRR@10 = mean
1/rank (0 beyond 10); NDCG@10 = mean 1/log2(rank + 1) (0 beyond 10). Each is the mean of a per-CV
value (:func:`per_cv_values`), which is what the gate's paired bootstrap resamples.

Job -> CV: each category's query ranks the held-out CVs; Recall@10 and MAP@10 are averaged over the
categories that have a relevant CV (:func:`job_to_cv_metrics`).

Ranks are pessimistic: a tie between the truth and another counts against the truth, and a score
that is not a number ranks last, so a model that scores everything alike can never look perfect.

The names are plain data so the settings (and the DAG's trigger form) can name them without
importing numpy; numpy is imported where a metric is computed.
"""

from __future__ import annotations

# What the evaluation reports; the gate may compare on any of them.
METRICS = ("accuracy@1", "accuracy@3", "mrr@10", "ndcg@10", "job_to_cv_recall@10", "job_to_cv_map@10")
# The CV -> job metrics are means over held-out CVs, which the gate's paired bootstrap resamples.
PER_CV_METRICS = METRICS[:4]


def finite_scores(scores):
    """``scores`` with NaN and infinities replaced by -inf: a score that is not a number ranks last."""
    import numpy as np

    return np.where(np.isfinite(scores), scores, -np.inf)


def ranks_of_truth(scores, categories: list[str], truth: list[str]):
    """1-based rank of each CV's true category, pessimistic: every tie counts against the truth.

    The truth's rank is the number of categories scoring at least as high as it, itself included,
    and a non-finite score is below every finite one.
    """
    import numpy as np

    index = {c: i for i, c in enumerate(categories)}
    scores = finite_scores(scores)
    true_scores = scores[np.arange(len(truth)), [index[t] for t in truth]]
    return (scores >= true_scores[:, None]).sum(axis=1)


def per_cv_values(ranks, metric: str):
    """Each CV's contribution to ``metric`` (one of :data:`PER_CV_METRICS`) from its truth's rank."""
    import numpy as np

    ranks = np.asarray(ranks, dtype=np.float64)
    within10 = ranks <= 10
    if metric == "accuracy@1":
        return (ranks == 1).astype(np.float64)
    if metric == "accuracy@3":
        return (ranks <= 3).astype(np.float64)
    if metric == "mrr@10":
        return np.where(within10, 1.0 / ranks, 0.0)
    if metric == "ndcg@10":
        return np.where(within10, 1.0 / np.log2(ranks + 1), 0.0)
    raise ValueError(f"{metric} is not a per-CV metric {PER_CV_METRICS}")


def retrieval_metrics(ranks) -> dict[str, float]:
    """Every CV -> job metric (the mean of its per-CV values) and the count, from the truths' ranks."""
    if len(ranks) == 0:
        return {}
    return {
        **{metric: float(per_cv_values(ranks, metric).mean()) for metric in PER_CV_METRICS},
        "count": int(len(ranks)),
    }


def job_to_cv_metrics(scores, truth_columns, k: int = 10) -> dict[str, float]:
    """Job -> CV Recall@k and MAP@k over the categories with a relevant CV ({} when none has one).

    ``scores`` is (CVs x categories); ``truth_columns`` each CV's category column. Among equal scores
    the irrelevant CVs come first (pessimistic ties here too).
    """
    import numpy as np

    scores, truth_columns = finite_scores(scores), np.asarray(truth_columns)
    if scores.size == 0:
        return {}
    relevant = truth_columns[None, :] == np.arange(scores.shape[1])[:, None]  # (categories, CVs)
    counts = relevant.sum(axis=1)
    if not (counts > 0).any():
        return {}
    order = np.lexsort(np.stack([relevant, -scores.T]))[:, :k]  # per category, best first
    hits = np.take_along_axis(relevant, order, axis=1)
    precision = np.cumsum(hits, axis=1) / (np.arange(order.shape[1]) + 1)
    average = (precision * hits).sum(axis=1) / np.maximum(np.minimum(k, counts), 1)
    recall = hits.sum(axis=1) / np.maximum(counts, 1)
    judged = counts > 0
    return {"job_to_cv_recall@10": float(recall[judged].mean()), "job_to_cv_map@10": float(average[judged].mean())}
