"""The ANN index on its own: recall against exact search, category filters, tiny and odd sizes."""

from __future__ import annotations

import numpy as np
import pytest

from include.matcher.foundations import vector_index

pytest.importorskip("faiss", reason="faiss-cpu is in requirements.txt: run `make install`")


def clustered_unit_vectors(rows: int, rng: np.random.Generator, clusters: int = 40) -> np.ndarray:
    """Vectors around a few centres, as CV embeddings of a few dozen occupations lie."""
    centres = rng.normal(size=(clusters, 64))
    vectors = centres[rng.integers(0, clusters, rows)] + rng.normal(scale=0.35, size=(rows, 64))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def exact_top(matrix: np.ndarray, query: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[int]:
    scores = matrix @ query
    if rows is not None:
        allowed = np.full(len(scores), -np.inf)
        allowed[rows] = scores[rows]
        scores = allowed
    return np.argsort(-scores, kind="stable")[:k].tolist()


def test_recall_at_10_against_exact_search_is_at_least_0_95():
    rng = np.random.default_rng(1)
    matrix = clustered_unit_vectors(8000, rng)
    index = vector_index.Index(vector_index.build(matrix))
    assert index.rows == 8000 and index.lists > 1
    queries = clustered_unit_vectors(50, rng)
    recall = np.mean(
        [len(set(exact_top(matrix, q, 10)) & {row for row, _ in index.search(q, 10)}) / 10 for q in queries]
    )
    assert recall >= 0.95
    best = index.search(queries[0], 10)
    assert [score for _, score in best] == sorted((score for _, score in best), reverse=True)
    assert best[0][1] == pytest.approx(float(matrix[best[0][0]] @ queries[0]), abs=0.02)  # 8-bit codes


def test_a_filter_returns_only_allowed_rows_and_all_of_them_when_fewer_than_k():
    rng = np.random.default_rng(2)
    matrix = clustered_unit_vectors(5000, rng)
    index = vector_index.Index(vector_index.build(matrix))
    query = matrix[0]
    # Three rows chosen as far from the query as possible: the usual probes never reach their lists.
    far = np.argsort(matrix @ query)[:3]
    found = index.search(query, 10, rows=far)
    assert sorted(row for row, _ in found) == sorted(far.tolist())
    allowed = np.arange(0, 5000, 7)
    rows = [row for row, _ in index.search(query, 10, rows=allowed)]
    assert len(rows) == 10 and all(row % 7 == 0 for row in rows)
    assert index.search(query, 10, rows=np.zeros(0, dtype=np.int64)) == []


def test_a_handful_of_rows_still_builds_and_finds_each_row_first():
    matrix = clustered_unit_vectors(6, np.random.default_rng(3))
    assert vector_index.index_kind(6) == "IVF1,SQ8"
    index = vector_index.Index(vector_index.build(matrix))
    for row in range(6):
        assert index.search(matrix[row], 3)[0][0] == row
    assert len(index.search(matrix[0], 50)) == 6


def test_only_corpora_beyond_the_exact_search_limit_get_an_index():
    assert not vector_index.needs_index(vector_index.EXACT_SEARCH_MAX_ROWS)
    assert vector_index.needs_index(vector_index.EXACT_SEARCH_MAX_ROWS + 1)
    assert vector_index.index_kind(1_000_000) == "IVF4000,SQ8"
