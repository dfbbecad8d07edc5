"""``VectorMatcher``: score CVs against jobs with a (fine-tuned) bi-encoder.

The same name and constructor as the old Django app's matcher, so callers move over unchanged::

    matcher = VectorMatcher(model_name="production")      # or a folder, an s3:// URI, the base model
    matcher.rank_jobs(cv_text, {"job-1": "...", "job-2": "..."}, top_k=5)
    matcher.rank_candidates(job_text, {"cv-7": "...", "cv-9": "..."})

and, against what the nightly refresh stored (no CV is encoded again)::

    matcher.top_candidates(job_text, k=10, category="CHEF")   # stored CVs, best first
    matcher.top_jobs(cv_text, k=5)                              # stored job descriptions and offers
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from include.matcher.foundations.settings import BASE_MODEL

# The most candidates one search returns: a recruiter's shortlist, not an export of the corpus.
MOST_RESULTS = 1000


def check_k(k) -> None:
    """How many results a search asks for: a whole number from 1 to :data:`MOST_RESULTS`, checked
    before anything is searched or logged."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MOST_RESULTS:
        raise ValueError(f"the number of results must be a whole number from 1 to {MOST_RESULTS}, not {k!r}")


@dataclass(frozen=True)
class Match:
    """A ranked item. From the stored snapshot, it also says its category, where it came from
    (``cv``, ``job_description``, ``job_offer``; a CV's id is its source key) and the model version."""

    id: str
    score: float
    category: str | None = None
    source: str | None = None
    model_version: str | None = None


class VectorMatcher:
    """Rank jobs for a CV, or candidates for a job, by cosine similarity of their embeddings.

    Args:
        model_name: ``all-MiniLM-L6-v2`` (the packaged base model), a local model folder, an
            ``s3://`` model folder, or ``production`` (the registry's production pointer).
        device: ``cuda`` or ``cpu``; the best available by default.
        registry_uri: where ``production`` is looked up; ``MATCHER_REGISTRY_URI`` by default.
        embeddings_uri: the snapshots ``top_candidates``/``top_jobs`` search; ``MATCHER_EMBEDDINGS_URI`` by default.
        work_uri: the work area whose search log records ``top_candidates``; ``MATCHER_WORK_URI`` by default.
    """

    def __init__(
        self,
        model_name: str = BASE_MODEL,
        device: str | None = None,
        registry_uri: str | None = None,
        storage=None,
        embeddings_uri: str | None = None,
        work_uri: str | None = None,
    ):
        from include.matcher.foundations.models import PRODUCTION, load_model

        self.model_name = model_name
        self._storage = storage
        self._registry_uri = registry_uri
        self._embeddings_uri = embeddings_uri
        self._work_uri = work_uri
        self._reader = None
        # The registry version this model is (production's, read once so model and version agree).
        self.version = None
        if model_name == PRODUCTION:
            from include.matcher.foundations.pointers import read_production

            pointer = read_production(self.storage, self.locations.registry)
            if pointer is None:
                raise LookupError("no model is in production yet")
            model_name, self.version = pointer.uri, pointer.version
        self.model = load_model(model_name, storage=storage, registry_uri=registry_uri, device=device)

    @classmethod
    def at(cls, locations, storage=None, model_name: str = "production", device: str | None = None) -> VectorMatcher:
        """A matcher over another deployment's locations than the environment's (a bucket of its own)."""
        return cls(
            model_name=model_name,
            device=device,
            storage=storage,
            registry_uri=locations.registry,
            embeddings_uri=locations.embeddings,
            work_uri=locations.work,
        )

    @property
    def storage(self):
        if self._storage is None:
            from include.matcher.foundations.storage import Storage

            self._storage = Storage()
        return self._storage

    @property
    def locations(self):
        from dataclasses import replace

        from include.matcher.foundations.settings import Locations

        locations = Locations.from_env()
        if self._work_uri:
            locations = replace(locations, work=self._work_uri)
        if self._registry_uri:
            locations = replace(locations, registry=self._registry_uri)
        return replace(locations, embeddings=self._embeddings_uri) if self._embeddings_uri else locations

    def _snapshot(self):
        from include.matcher.serving.search import SnapshotReader

        if self._reader is None:
            self._reader = SnapshotReader(self.storage, self.locations.embeddings)
        return self._reader.checked_index(self.version)

    def top_candidates(
        self, job_text: str, k: int = 10, category: str | None = None, user: str | None = None
    ) -> list[Match]:
        """The stored CVs that best fit ``job_text``, best first (only ``category``'s, if given).

        Answers from the current embeddings snapshot, which must have been made by this matcher's
        model (``VectorMatcher(model_name="production")``); the job text is encoded once. Every call
        is recorded in the search log (:mod:`include.matcher.serving.usage_log`) as ``user`` (default:
        the OS user).
        """
        from include.matcher.serving.usage_log import search_log

        check_k(k)
        index = self._snapshot()
        matches = [Match(**vars(hit)) for hit in index.top(index.cvs, self.encode([job_text])[0], k, category)]
        search_log(self.storage, self.locations).record(
            user=user,
            query=job_text,
            k=k,
            filters={"category": category},
            version=index.version,
            snapshot=index.uri,
            hits=matches,
        )
        return matches

    def top_jobs(self, cv_text: str, k: int = 5) -> list[Match]:
        """The stored job descriptions and job offers that best fit ``cv_text``, best first."""
        index = self._snapshot()
        return [Match(**vars(hit)) for hit in index.top(index.jobs, self.encode_cvs([cv_text])[0], k)]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        return self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def encode_cvs(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """CV embeddings as the pipeline makes them: identifiers taken out (``MATCHER_REDACT_IDENTIFIERS``),
        then truncation or pooled chunks (``MATCHER_CV_POOLING``)."""
        from include.matcher.foundations.encoding import encode_cvs

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
