"""The approximate-nearest-neighbour index the refresh builds beside a large snapshot.

Up to :data:`EXACT_SEARCH_MAX_ROWS` CVs, readers search the snapshot's vectors exactly: one
matrix product, under 2 ms per query on 2 cores. Beyond it the product is memory-bound (12 ms at
100k, 113 ms at 1M, measured in ``benchmarks/match.py``) and the float32 matrix alone outgrows a
reader's memory (1.5 GB at 1M). So ``publish`` builds a FAISS ``IVF<n>,SQ8`` index over the CV
vectors: an inverted file of ``4 * sqrt(rows)`` k-means lists, each vector stored as 8-bit codes
(a quarter of float32). A query scans the :data:`PROBED_LISTS` lists nearest to it. Measured on
real-like vectors: recall@10 0.98-0.99 against exact search, 0.2-0.6 ms at 100k and 1M, 400 MB at
1M. HNSW at the same memory recalled less (0.93-0.97 at 100k) and built twice as slowly.

The index is stored as FAISS's own serialisation next to a parquet of the rows' ids, categories
and sources in the same order (the ``cvs.index*`` objects of the snapshot), so readers load
neither the float vectors nor rebuild anything. Search is by inner product over unit vectors: the
cosine the exact search and the pipeline's evaluation rank by.
"""

from __future__ import annotations

import math

import numpy as np

EXACT_SEARCH_MAX_ROWS = 20_000
PROBED_LISTS = 16
# k-means learns the lists from a sample: FAISS warns below 39 points per list (an unstable fit),
# and more than 64 only slows the build.
MIN_POINTS_PER_LIST = 39
TRAINING_POINTS_PER_LIST = 64


def index_kind(rows: int) -> str:
    """FAISS's factory string for ``rows`` vectors."""
    lists = max(1, min(int(4 * math.sqrt(rows)), rows // MIN_POINTS_PER_LIST))
    return f"IVF{lists},SQ8"


def needs_index(rows: int) -> bool:
    return rows > EXACT_SEARCH_MAX_ROWS


def build(matrix: np.ndarray, seed: int = 0) -> bytes:
    """An IVF-SQ8 index over the unit rows of ``matrix``, serialised; row ``i`` is FAISS id ``i``."""
    import faiss

    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    rows, dimension = matrix.shape
    index = faiss.index_factory(dimension, index_kind(rows), faiss.METRIC_INNER_PRODUCT)
    lists = faiss.extract_index_ivf(index).nlist
    sample = np.random.default_rng(seed).choice(rows, min(rows, lists * TRAINING_POINTS_PER_LIST), replace=False)
    index.train(matrix[np.sort(sample)])
    index.add(matrix)
    return faiss.serialize_index(index).tobytes()


class Index:
    """A loaded index: top-k by inner product, optionally restricted to a set of rows."""

    def __init__(self, serialised: bytes):
        import faiss

        self._faiss = faiss
        self._index = faiss.deserialize_index(np.frombuffer(serialised, dtype=np.uint8))
        self.rows = self._index.ntotal
        self.lists = faiss.extract_index_ivf(self._index).nlist

    def search(self, query: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The best ``k`` (row, score) pairs for one unit ``query``, among ``rows`` when given.

        A restricted search probes the usual lists first; when they hold fewer than ``k`` of the
        allowed rows (a small category far from the query) it probes every list, so a filter never
        returns fewer results than exist.
        """
        faiss = self._faiss
        query = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        k = min(k, self.rows if rows is None else len(rows))
        if k <= 0:
            return []
        selector = None if rows is None else faiss.IDSelectorBatch(np.asarray(rows, dtype=np.int64))
        for probes in (PROBED_LISTS, self.lists):
            parameters = faiss.SearchParametersIVF(nprobe=min(probes, self.lists), sel=selector)
            scores, ids = self._index.search(query, k, params=parameters)
            found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
            if len(found) >= k:
                break
        return found

    def search_many(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and rows of the best ``k`` for each row of ``queries`` (unfiltered; -1 pads)."""
        queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
        parameters = self._faiss.SearchParametersIVF(nprobe=min(PROBED_LISTS, self.lists))
        return self._index.search(queries, min(k, self.rows), params=parameters)
