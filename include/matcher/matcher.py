"""``VectorMatcher``: score CVs against jobs with a (fine-tuned) bi-encoder.

The same name and constructor as the old Django app's matcher, so callers move over unchanged::

    matcher = VectorMatcher(model_name="production")      # or a folder, an s3:// URI, the base model
    matcher.rank_jobs(cv_text, {"job-1": "...", "job-2": "..."}, top_k=5)
    matcher.rank_candidates(job_text, {"cv-7": "...", "cv-9": "..."})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from include.matcher.settings import BASE_MODEL


@dataclass(frozen=True)
class Match:
    id: str
    score: float


class VectorMatcher:
    """Rank jobs for a CV, or candidates for a job, by cosine similarity of their embeddings.

    Args:
        model_name: ``all-MiniLM-L6-v2`` (the packaged base model), a local model folder, an
            ``s3://`` model folder, or ``production`` (the registry's production pointer).
        device: ``cuda`` or ``cpu``; the best available by default.
        registry_uri: where ``production`` is looked up; ``MATCHER_REGISTRY_URI`` by default.
    """

    def __init__(
        self, model_name: str = BASE_MODEL, device: str | None = None, registry_uri: str | None = None, storage=None
    ):
        from include.matcher.models import load_model

        self.model_name = model_name
        self.model = load_model(model_name, storage=storage, registry_uri=registry_uri, device=device)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        return self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)

    def encode_cvs(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """CV embeddings as the pipeline makes them (truncation or pooled chunks: ``MATCHER_CV_POOLING``)."""
        from include.matcher.encoding import encode_cvs

        return encode_cvs(self.model, list(texts), batch_size=batch_size)

    def rank_jobs(self, cv_text: str, jobs: Mapping[str, str] | Sequence[str], top_k: int | None = None) -> list[Match]:
        """Jobs best suited to a CV, best first."""
        ids, texts = _ids_and_texts(jobs)
        if not texts:
            return []
        scores = self.encode(texts) @ self.encode_cvs([cv_text])[0]
        return _ranked(ids, scores, top_k)

    def rank_candidates(
        self, job_text: str, cvs: Mapping[str, str] | Sequence[str], top_k: int | None = None
    ) -> list[Match]:
        """Candidates best suited to a job, best first."""
        ids, texts = _ids_and_texts(cvs)
        if not texts:
            return []
        scores = self.encode_cvs(texts) @ self.encode([job_text])[0]
        return _ranked(ids, scores, top_k)


def _ids_and_texts(items: Mapping[str, str] | Sequence[str]) -> tuple[list[str], list[str]]:
    return (
        (list(items.keys()), list(items.values()))
        if isinstance(items, Mapping)
        else ([str(i) for i in range(len(items))], list(items))
    )


def _ranked(ids: list[str], scores: np.ndarray, top_k: int | None) -> list[Match]:
    order = np.argsort(-scores, kind="stable")[: top_k or len(ids)]
    return [Match(ids[i], float(scores[i])) for i in order]
