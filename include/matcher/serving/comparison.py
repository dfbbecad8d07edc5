"""Production and the latest candidate side by side: how would a model change rank real CVs?

Before anyone trusts a new model (or wonders why one was refused) they want to see what it does
to a search they know. The stored snapshot holds production's vectors only, and embedding every
CV with each candidate would cost a refresh per night; but ``validate`` already embeds the
held-out CVs with both models and keeps those vectors (``validation/held_out_vectors.parquet``:
keys and categories, never text). So a query is encoded by both models and each ranks the same
pool, the night's held-out CVs: a like-for-like comparison over CVs neither model trained on.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

from include.matcher.foundations.storage import ObjectStore
from include.matcher.serving.search import Hit, exact_top, vector_column
from include.matcher.stages.validation_report import ValidationReport


@dataclass(frozen=True)
class Challenger:
    """The latest validated candidate that is not the model in production."""

    run: str
    version: str
    candidate_uri: str
    production_name: str
    production_version: str | None
    promoted: bool
    reason: str
    vectors_uri: str


def latest_challenger(reports: list[ValidationReport], production_version: str | None) -> Challenger | None:
    """The newest report's candidate, unless it is production now or its vectors were not kept."""
    if not reports:
        return None
    latest = reports[-1]
    if latest.version == production_version or not latest.held_out_vectors or not latest.candidate:
        return None
    return Challenger(
        run=latest.run,
        version=latest.version,
        candidate_uri=latest.candidate,
        production_name=latest.production_name,
        production_version=latest.production_version,
        promoted=latest.decision.promote,
        reason=latest.decision.reason,
        vectors_uri=latest.held_out_vectors,
    )


class SideBySide:
    """Loads models and held-out vectors once per challenger; ranks a query with both models."""

    def __init__(self, storage: ObjectStore):
        self.storage = storage
        self._loaded: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def _models_and_vectors(self, challenger: Challenger):
        """The challenger's two models and its held-out vectors as they are now: the vectors are read
        again whenever their object changed (an erasure rewrote it), so an erased CV is never ranked."""
        import pyarrow.parquet as pq

        from include.matcher.foundations.models import load_model

        head = self.storage.head(challenger.vectors_uri)
        if head is None:
            raise FileNotFoundError(f"held-out vectors {challenger.vectors_uri} are gone")
        with self._lock:
            loaded = self._loaded.get(challenger.vectors_uri)
            if loaded is None:  # one challenger at a time: a new night replaces the old models
                models = {
                    "production": load_model(challenger.production_name, self.storage),
                    "candidate": load_model(challenger.candidate_uri, self.storage),
                }
                loaded = self._loaded = {challenger.vectors_uri: {"models": models, "etag": None}}
                loaded = loaded[challenger.vectors_uri]
            if loaded["etag"] != head.etag:
                found = self.storage.get_with_etag(challenger.vectors_uri)
                table = pq.read_table(io.BytesIO(found[0]))
                loaded.update(
                    etag=found[1],
                    vectors={side: vector_column(table, side) for side in loaded["models"]},
                    keys=table.column("key").to_pylist(),
                    categories=table.column("category").to_pylist(),
                )
            return loaded["models"], loaded["vectors"], loaded["keys"], loaded["categories"]

    def rank(
        self, challenger: Challenger, query: str, k: int = 10, *, user: str | None = None, locations=None
    ) -> dict[str, list[Hit]]:
        """``{"production": [...], "candidate": [...]}``: each model's top ``k`` held-out CVs. Each
        side is a search for candidates like any other: one record in ``locations``' search log."""
        from include.matcher.serving.matcher import check_k
        from include.matcher.serving.usage_log import search_log

        check_k(k)
        models, vectors, keys, categories = self._models_and_vectors(challenger)
        versions = {"production": challenger.production_version or "base", "candidate": challenger.version}
        ranked = {}
        for side, model in models.items():
            encoded = model.encode([query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            ranked[side] = [
                Hit(keys[i], score, categories[i], "cv", versions[side])
                for i, score in exact_top(vectors[side], encoded[0], k)
            ]
            if locations is not None:
                search_log(self.storage, locations).record(
                    user=user,
                    query=query,
                    k=k,
                    filters={"view": "side by side", "pool": "held-out CVs of " + challenger.run.rsplit("/", 1)[-1]},
                    version=versions[side],
                    snapshot=challenger.vectors_uri,
                    hits=ranked[side],
                )
        return ranked


def rank_changes(before: list[Hit], after: list[Hit]) -> list[dict]:
    """For each row of ``after``, how its CV moved against ``before``: ``{"change": "up 2" | "down 1" |
    "same" | "new", "tone": "up" | "down" | ""}`` ("new": not in ``before``'s list at all)."""
    rank_before = {hit.id: rank for rank, hit in enumerate(before, 1)}
    changes = []
    for rank, hit in enumerate(after, 1):
        old = rank_before.get(hit.id)
        if old is None:
            changes.append({"change": "new", "tone": "up"})
        elif old == rank:
            changes.append({"change": "same", "tone": ""})
        else:
            moved = old - rank
            changes.append(
                {"change": f"{'up' if moved > 0 else 'down'} {abs(moved)}", "tone": "up" if moved > 0 else "down"}
            )
    return changes


@dataclass(frozen=True)
class Pool:
    """The CVs two versions are compared on: one night's held-out split (neither version trained on
    it, as splits go by content), with the jobs file that night used."""

    night: str
    test_uri: str
    jobs_uri: str


def comparison_pool(reports: list[ValidationReport], storage: ObjectStore) -> Pool | None:
    """The newest night whose held-out split is still stored (housekeeping removes old runs' pairs)."""
    from include.matcher.foundations import layout

    for report in reversed(reports):
        pairs = layout.Run(report.run).pairs
        if storage.exists(pairs.split("test")) and storage.exists(pairs.jobs):
            return Pool(report.run_name, pairs.split("test"), pairs.jobs)
    return None


@dataclass
class Scored:
    """One version's reading of the pool: its CV vectors and the (CV x category) scores behind its metrics."""

    version: str
    model: object
    metrics: dict
    scores: object
    categories: list[str]
    truth: list[str]
    vectors: object
    keys: list[str]
    cv_categories: list[str]


class VersionComparison:
    """Any two versions side by side on one pool: metrics with the paired interval of the change,
    and both rankings of a query over the pool. A version's reading of a pool is computed once (it
    encodes the pool's CVs: about one second per 15 CVs on 2 CPU cores) and kept while the pool's
    split is unchanged (an erasure rewrites it)."""

    def __init__(self, storage: ObjectStore, keep: int = 4):
        self.storage = storage
        self.keep = keep
        self._scored: dict[tuple, Scored] = {}
        self._lock = threading.Lock()

    def scored(self, version: str, model_uri: str, pool: Pool) -> Scored:
        from include.matcher.foundations.evaluation import evaluate_model
        from include.matcher.foundations.models import load_model

        head = self.storage.head(pool.test_uri)
        key = (version, model_uri, pool.test_uri, head.etag if head else None)
        with self._lock:
            if key in self._scored:
                return self._scored[key]
            cvs = self.storage.get_jsonl(pool.test_uri)
            jobs = self.storage.get_json(pool.jobs_uri)
            model = load_model(model_uri, self.storage)
            kept: dict = {}
            result = evaluate_model(model, cvs, jobs, with_title=False, keep=kept)
            known = [cv for cv in cvs if cv["category"] in jobs]
            scored = Scored(
                version=version,
                model=model,
                metrics=result["metrics"],
                scores=kept.get("scores"),
                categories=kept.get("categories", []),
                truth=kept.get("truth", []),
                vectors=kept.get("cv_vectors"),
                keys=[cv["key"] for cv in known],
                cv_categories=[cv["category"] for cv in known],
            )
            if len(self._scored) >= self.keep:
                self._scored.pop(next(iter(self._scored)))
            self._scored[key] = scored
            return scored

    @staticmethod
    def change(a: Scored, b: Scored, metric: str, confidence: float, min_support: int) -> dict | None:
        """``b`` minus ``a`` with paired bootstrap intervals (the gate's own evidence), or None on an empty pool."""
        from include.matcher.stages.evidence import paired_evidence

        if a.scores is None or not len(a.truth):
            return None
        return paired_evidence(b.scores, a.scores, b.categories, b.truth, metric, confidence, min_support)

    @staticmethod
    def rank(scored: Scored, query: str, k: int = 10) -> list[Hit]:
        encoded = scored.model.encode(
            [query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return [
            Hit(scored.keys[i], score, scored.cv_categories[i], "cv", scored.version)
            for i, score in exact_top(scored.vectors, encoded[0], k)
        ]
