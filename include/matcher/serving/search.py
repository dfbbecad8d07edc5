"""Top-k search over what the nightly refresh publishes: the current embeddings snapshot.

``refresh_embeddings`` writes one snapshot per (model version, corpus) and flips ``current.json``
last, so a reader that follows the pointer sees one whole snapshot, never a half-written one.
:class:`SnapshotIndex` loads it once (CV vectors from the parquet parts, job vectors from
``jobs.parquet``) and answers top-k queries with an exact search: one matrix product over unit
vectors, which is the ranking the pipeline's evaluation measures. A snapshot too large for that
carries an ANN index built at publish time (:mod:`include.matcher.foundations.vector_index`); its CVs are then
searched through the index, and their float vectors are not loaded at all. :class:`SnapshotReader` keeps
the index current: it looks at ``current.json`` at most every ``check_seconds`` and reloads when
the pointer has moved.

A query vector must come from the model version the snapshot was made with; anything else is
refused (:class:`SnapshotMismatch`), never mixed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from include.matcher.foundations import vector_index
from include.matcher.foundations.errors import Conflict, NotFound
from include.matcher.foundations.pointers import read_current
from include.matcher.foundations.storage import ObjectStore
from include.matcher.stages.embeddings import read_parquet


class SnapshotMismatch(Conflict, RuntimeError):
    """A query encoded by one model version against vectors made by another."""


class NoSnapshot(NotFound, LookupError):
    """Nothing has been published yet under the embeddings URI."""


@dataclass(frozen=True)
class Hit:
    """One search result: what it is, how well it scores, where it came from."""

    id: str
    score: float
    category: str | None
    source: str  # cv, job_description or job_offer
    model_version: str


def vector_column(table, column: str = "vector") -> np.ndarray:
    """A parquet table's fixed-size-list column as an (n, dimension) float32 matrix."""
    rows = table.num_rows
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(table.column(column).combine_chunks().flatten(), dtype=np.float32).reshape(rows, -1)


def exact_top(matrix: np.ndarray, query: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
    """(row, cosine) of the ``k`` rows of ``matrix`` (unit rows) closest to the unit ``query``, best
    first; only among ``rows`` when given."""
    if not len(matrix):  # an empty table reads as (0, 0), which no query can multiply
        return []
    scores = matrix @ np.asarray(query, dtype=np.float32)
    if rows is not None:
        mask = np.zeros(len(scores), dtype=bool)
        mask[rows] = True
        scores = np.where(mask, scores, -np.inf)
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return []
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(int(i), float(scores[i])) for i in best]


@dataclass
class Vectors:
    """Searchable rows: their metadata, and either the unit vectors or an ANN index over them."""

    ids: list[str]
    categories: list[str | None]
    sources: list[str]
    matrix: np.ndarray | None  # (n, dimension) float32, unit rows; None when searched through ``ann``
    ann: vector_index.Index | None = None
    _rows_by_category: dict[str | None, np.ndarray] | None = field(default=None, repr=False)

    def rows_of(self, category: str) -> np.ndarray:
        """The row numbers of ``category``'s vectors (grouped once, on first use)."""
        if self._rows_by_category is None:
            names, inverse = np.unique(
                np.asarray(["\x00" if c is None else c for c in self.categories], dtype=str), return_inverse=True
            )
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
            self._rows_by_category = {name: order[bounds[i] : bounds[i + 1]] for i, name in enumerate(names.tolist())}
        found = self._rows_by_category.get(category)
        if found is None:  # categories match case-blind: "nurse" finds NURSE
            wanted = category.casefold()
            found = next((rows for name, rows in self._rows_by_category.items() if name.casefold() == wanted), None)
        return np.zeros(0, dtype=np.int64) if found is None else found

    @classmethod
    def from_table(cls, table) -> Vectors:
        return cls(
            ids=table.column("id").to_pylist(),
            categories=table.column("category").to_pylist(),
            sources=table.column("source").to_pylist(),
            matrix=vector_column(table),
        )


class SnapshotIndex:
    """One snapshot's CV and job vectors in memory, searched exactly."""

    def __init__(self, version: str, uri: str, cvs: Vectors, jobs: Vectors):
        self.version, self.uri, self.cvs, self.jobs = version, uri, cvs, jobs

    @classmethod
    def load(cls, storage: ObjectStore, pointer: dict) -> SnapshotIndex:
        import pyarrow as pa

        manifest = storage.get_json(pointer["manifest"])
        if manifest.get("cv_index"):
            rows = read_parquet(manifest["cv_index"]["rows_uri"], storage)
            cvs = Vectors(
                ids=rows.column("id").to_pylist(),
                categories=rows.column("category").to_pylist(),
                sources=rows.column("source").to_pylist(),
                matrix=None,
                ann=vector_index.Index(storage.get_bytes(manifest["cv_index"]["uri"])),
            )
        else:
            parts = [read_parquet(part["uri"], storage) for part in manifest["parts"]["cvs"]]
            cvs = (
                Vectors.from_table(pa.concat_tables(parts))
                if parts
                else Vectors([], [], [], np.zeros((0, 0), np.float32))
            )
        jobs = Vectors.from_table(read_parquet(manifest["parts"]["jobs"][0]["uri"], storage))
        return cls(manifest["version"], pointer["uri"], cvs, jobs)

    def top(self, vectors: Vectors, query: np.ndarray, k: int, category: str | None = None) -> list[Hit]:
        """The ``k`` rows of ``vectors`` closest to the unit ``query`` (restricted to ``category``)."""
        if not len(vectors.ids):
            return []
        rows = None if category is None else vectors.rows_of(category)
        found = (
            vectors.ann.search(query, k, rows) if vectors.ann is not None else exact_top(vectors.matrix, query, k, rows)
        )
        return [
            Hit(vectors.ids[i], score, vectors.categories[i], vectors.sources[i], self.version) for i, score in found
        ]


class SnapshotReader:
    """The current snapshot, loaded once and reloaded when ``current.json`` moves."""

    def __init__(self, storage: ObjectStore, embeddings_uri: str, check_seconds: float = 10.0):
        self.storage, self.embeddings_uri, self.check_seconds = storage, embeddings_uri, check_seconds
        self._index: SnapshotIndex | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def index(self) -> SnapshotIndex:
        with self._lock:
            if self._index is None or time.monotonic() - self._checked >= self.check_seconds:
                pointer = read_current(self.storage, self.embeddings_uri)
                if pointer is None:
                    raise NoSnapshot(
                        f"no embeddings published under {self.embeddings_uri} yet (the refresh has not run)"
                    )
                if self._index is None or pointer["uri"] != self._index.uri:
                    self._index = SnapshotIndex.load(self.storage, pointer)
                self._checked = time.monotonic()
            return self._index

    def checked_index(self, model_version: str | None) -> SnapshotIndex:
        """The current index, if its vectors were made by ``model_version``; SnapshotMismatch otherwise."""
        index = self.index()
        if model_version != index.version:
            raise SnapshotMismatch(
                f"the current embeddings were made by model {index.version}, the query would be encoded by "
                f"{model_version or 'a model outside the registry'}: vectors of two models cannot be compared "
                "(use VectorMatcher(model_name='production'), and after a promotion wait for the refresh)"
            )
        return index
