"""Hard negatives: for each training CV, the other categories' descriptions the model confuses it with.

Random negatives are mostly easy (a chef's CV against an aviation description) and teach little.
Mining ranks every description of another category by the current model's similarity to the CV and
keeps the closest ones, but only those scoring at least ``margin`` below the CV's best description of
its own category: a description that fits as well as its own (neighbouring categories such as
FINANCE and ACCOUNTANT share duties) is likely a false negative and is skipped. This is
sentence-transformers' ``mine_hard_negatives`` idea (``absolute_margin``), made category-aware: it
knows every description of the CV's own category is a positive, not just the one in the pair.
"""

from __future__ import annotations

import logging

import numpy as np

from include.matcher.foundations.text import training_text

log = logging.getLogger(__name__)


def mine_hard_negatives(
    model,
    cvs: list[dict],
    jobs: dict[str, list[str]],
    count: int,
    margin: float,
    strip_titles: bool = True,
    batch_size: int = 32,
) -> dict[str, list[tuple[str, int]]]:
    """``{cv key: [(category, description index), ...]}``, hardest first, at most ``count`` each.

    CVs are read as training will read them (:func:`include.matcher.foundations.text.training_text`).
    """
    from include.matcher.foundations.encoding import encode_cvs

    if count <= 0 or not cvs:
        return {}
    references = [(category, index) for category in sorted(jobs) for index in range(len(jobs[category]))]
    job_vectors = model.encode(
        [jobs[c][i] for c, i in references],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    # training_text has redacted them already (as training reads them): not a second time
    texts = [training_text(cv["text"], strip_titles) for cv in cvs]
    cv_vectors = encode_cvs(model, texts, batch_size=batch_size, redact=False)
    similarity = cv_vectors @ job_vectors.T
    categories = np.array([category for category, _ in references])
    mined, skipped = {}, 0
    for row, cv in enumerate(cvs):
        own = categories == cv["category"]
        ceiling = similarity[row, own].max() - margin
        order = np.argsort(-similarity[row], kind="stable")
        hard = [references[j] for j in order if not own[j] and similarity[row, j] < ceiling][:count]
        skipped += sum(1 for j in order[: count + own.sum()] if not own[j] and similarity[row, j] >= ceiling)
        mined[cv["key"]] = hard
    log.info(
        "hard negatives: %d per CV for %d CVs; %d too-close descriptions skipped by the %.2f margin",
        count,
        len(cvs),
        skipped,
        margin,
    )
    return mined
