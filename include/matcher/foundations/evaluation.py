"""Retrieval quality of a bi-encoder, both ways: CV -> job category and job -> CV.

Every job description is embedded; a category scores the best of its descriptions; the categories
are ranked for each CV, and each category's query ranks the CVs. The metrics themselves (and their
names) are :mod:`include.matcher.foundations.metrics`.

The first line of most resumes is the job title and names the category, so the primary numbers
(``metrics``) are measured with that line stripped; ``with_title`` keeps it (secondary). The DAG's
validation stage and ``benchmarks/quality.py`` both score through :func:`evaluate_scores`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from include.matcher.foundations.metrics import finite_scores, job_to_cv_metrics, ranks_of_truth, retrieval_metrics
from include.matcher.foundations.text import strip_title


def category_scores(
    cv_embeddings: np.ndarray, job_embeddings: np.ndarray, job_categories: list[str]
) -> tuple[np.ndarray, list[str]]:
    """(n_cvs x n_categories) scores: cosine to each category's best description."""
    categories = sorted(set(job_categories))
    similarity = cv_embeddings @ job_embeddings.T
    scores = np.full((len(cv_embeddings), len(categories)), -np.inf, dtype=np.float32)
    for column, category in enumerate(categories):
        members = [i for i, c in enumerate(job_categories) if c == category]
        scores[:, column] = similarity[:, members].max(axis=1)
    return scores, categories


# Beyond this many categories the report keeps the largest confusions, not the whole matrix: the
# matrix grows with the square of the categories (2,000 made a 555 MB report page).
MAX_CONFUSION_CATEGORIES = 50
TOP_CONFUSIONS = 100


def confusion(scores: np.ndarray, categories: list[str], truth: list[str]) -> dict:
    """Counts of (true category, top-ranked category): rows are the truth. Past
    :data:`MAX_CONFUSION_CATEGORIES`, only the :data:`TOP_CONFUSIONS` largest off-diagonal cells."""
    index = {c: i for i, c in enumerate(categories)}
    pairs = Counter(
        (row, int(predicted))
        for row, predicted in zip((index[t] for t in truth), finite_scores(scores).argmax(axis=1), strict=True)
    )
    if len(categories) <= MAX_CONFUSION_CATEGORIES:
        matrix = np.zeros((len(categories), len(categories)), dtype=int)
        for (row, predicted), count in pairs.items():
            matrix[row, predicted] = count
        return {"labels": categories, "matrix": matrix.tolist()}
    wrong = sorted(((count, r, p) for (r, p), count in pairs.items() if r != p), key=lambda c: (-c[0], c[1], c[2]))
    return {
        "labels": [],
        "matrix": [],
        "categories": len(categories),
        "top_confusions": [
            {"true": categories[r], "predicted": categories[p], "count": count}
            for count, r, p in wrong[:TOP_CONFUSIONS]
        ],
    }


def truth_columns(categories: list[str], truth: list[str]) -> np.ndarray:
    """Each CV's category as its column in a (CVs x categories) score matrix."""
    column_of = {category: column for column, category in enumerate(categories)}
    return np.asarray([column_of[t] for t in truth], dtype=int)


def evaluate_scores(scores: np.ndarray, categories: list[str], truth: list[str]) -> dict:
    """Overall and per-category metrics and the confusion matrix, from a (CVs x categories) score matrix."""
    if not truth:
        return {"metrics": {}, "per_category": {}, "confusion": {"labels": categories, "matrix": []}}
    ranks = ranks_of_truth(scores, categories, truth)
    per_category = {
        category: retrieval_metrics(ranks[[i for i, t in enumerate(truth) if t == category]])
        for category in sorted(set(truth))
    }
    return {
        "metrics": {**retrieval_metrics(ranks), **job_to_cv_metrics(scores, truth_columns(categories, truth))},
        "per_category": per_category,
        "confusion": confusion(scores, categories, truth),
    }


def embed_for_evaluation(
    model,
    texts: list[str],
    jobs: dict[str, list[str]],
    pooling: str | None = None,
    batch_size: int = 32,
    memo=None,
    owners: list[str] | None = None,
):
    """(CV embeddings, job-description embeddings, each description's category); the CVs through
    ``memo`` when given (:func:`~include.matcher.foundations.encoding.encode_cvs`)."""
    from include.matcher.foundations.encoding import encode_cvs

    job_texts = [text for category in sorted(jobs) for text in jobs[category]]
    job_categories = [category for category in sorted(jobs) for _ in jobs[category]]
    job_embeddings = model.encode(
        job_texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    cv_embeddings = encode_cvs(model, texts, pooling, batch_size, memo=memo, owners=owners)
    return cv_embeddings, job_embeddings, job_categories


def encoder_scores(model, texts: list[str], jobs: dict[str, list[str]], *reading, **options):
    """(CV x category scores, categories): :func:`embed_for_evaluation`'s vectors, scored."""
    return category_scores(*embed_for_evaluation(model, texts, jobs, *reading, **options))


def embedding_health(cv_embeddings: np.ndarray, job_embeddings: np.ndarray) -> dict:
    """Whether a model's vectors can carry any ranking at all: finite, non-zero, spread apart.

    ``mean_cosine`` is the mean cosine similarity over all pairs of distinct CVs; a collapsed model
    maps every CV to (nearly) the same direction and scores near 1.0 here. Bi-encoders that work
    score well below that (the base model 0.55 on the demo CVs, measured).
    """
    vectors = np.asarray(cv_embeddings, dtype=np.float64)
    everything = np.concatenate(
        [
            vectors.reshape(len(vectors), -1),
            np.asarray(job_embeddings, dtype=np.float64).reshape(len(job_embeddings), -1),
        ]
    )
    finite = bool(np.isfinite(everything).all())
    norms = np.linalg.norm(np.nan_to_num(vectors), axis=1)
    health = {"finite": finite, "zero_vectors": int((norms < 1e-6).sum()), "mean_cosine": None}
    if finite and len(vectors) >= 2 and not health["zero_vectors"]:
        unit = vectors / norms[:, None]
        total = unit.sum(axis=0)
        health["mean_cosine"] = round(float((total @ total - len(unit)) / (len(unit) * (len(unit) - 1))), 6)
    return health


def evaluate_model(
    model,
    cvs: list[dict],
    jobs: dict[str, list[str]],
    batch_size: int = 32,
    pooling: str | None = None,
    with_title: bool = True,
    keep: dict | None = None,
    memo=None,
) -> dict:
    """Metrics for ``model`` on CV dicts (``text``, ``category``): titles stripped (primary) and kept.

    ``health`` describes the title-stripped CV vectors (:func:`embedding_health`), for the gate.
    ``keep``, when given, receives those vectors (``cv_vectors``, one row per CV of a known
    category) and the score matrix behind the metrics (``scores``, ``categories``, ``truth``), so
    the gate can bootstrap and keep vectors without encoding the CVs twice. ``memo``
    (:class:`~include.matcher.foundations.vector_memo.VectorMemo`) answers what an earlier night read.
    """
    cvs = [cv for cv in cvs if cv["category"] in jobs]
    truth = [cv["category"] for cv in cvs]
    if not cvs:
        return {**evaluate_scores(np.zeros((0, 0)), sorted(jobs), []), "text": "title stripped"}
    owners = [cv.get("key", "") for cv in cvs]
    cv_embeddings, job_embeddings, job_categories = embed_for_evaluation(
        model, [strip_title(cv["text"]) for cv in cvs], jobs, pooling, batch_size, memo, owners
    )
    scores, categories = category_scores(cv_embeddings, job_embeddings, job_categories)
    if keep is not None:
        keep.update(cv_vectors=cv_embeddings, scores=scores, categories=categories, truth=truth)
    stripped = {
        **evaluate_scores(scores, categories, truth),
        "health": embedding_health(cv_embeddings, job_embeddings),
    }
    if not with_title:
        return {**stripped, "text": "title stripped"}
    titled = evaluate_scores(
        *encoder_scores(model, [cv["text"] for cv in cvs], jobs, pooling, batch_size, memo, owners), truth
    )
    return {**stripped, "text": "title stripped", "with_title": {"metrics": titled["metrics"]}}


def evaluate_tfidf_baseline(train: list[dict], cvs: list[dict], jobs: dict[str, list[str]]) -> dict:
    """The supervised baseline on the same split: TF-IDF + logistic regression trained on ``train``."""
    from include.matcher.foundations.baselines import tfidf_scores

    cvs = [cv for cv in cvs if cv["category"] in jobs]
    truth = [cv["category"] for cv in cvs]
    if not cvs or len({cv["category"] for cv in train}) < 2:
        return {"metrics": {}, "per_category": {}, "skipped": "needs training CVs of at least two categories"}
    stripped = evaluate_scores(*tfidf_scores(train, [strip_title(cv["text"]) for cv in cvs], sorted(jobs)), truth)
    titled = evaluate_scores(*tfidf_scores(train, [cv["text"] for cv in cvs], sorted(jobs)), truth)
    return {**stripped, "text": "title stripped", "with_title": {"metrics": titled["metrics"]}}
