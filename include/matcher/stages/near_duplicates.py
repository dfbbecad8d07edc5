"""Near-duplicate CVs: the same resume re-saved, re-exported or lightly edited.

A CV in the training split and its near-twin in the test split would let a model score by memory,
so the split is decided per group of near-duplicates, not per CV. Similarity is the Jaccard index
of word 3-shingles; candidate pairs come from MinHash with locality-sensitive hashing (8 bands of
4 rows: a pair at Jaccard 0.8 becomes a candidate with probability 0.985) and are then checked
exactly, so only pairs at or above ``threshold`` are joined.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict

import numpy as np

THRESHOLD = 0.8
BANDS, ROWS = 8, 4
_PRIME = (1 << 61) - 1
_RNG = np.random.default_rng(20261125)
_A = _RNG.integers(1, _PRIME, BANDS * ROWS, dtype=np.uint64)
_B = _RNG.integers(0, _PRIME, BANDS * ROWS, dtype=np.uint64)


def shingles(text: str, size: int = 3) -> set[int]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    if len(words) < size:
        return {zlib.crc32(" ".join(words).encode())} if words else set()
    return {zlib.crc32(" ".join(words[i : i + size]).encode()) for i in range(len(words) - size + 1)}


def minhash(values: set[int]) -> np.ndarray:
    if not values:
        return np.full(BANDS * ROWS, np.iinfo(np.uint64).max, dtype=np.uint64)
    x = np.fromiter(values, dtype=np.uint64)[:, None]
    # 32-bit shingles times 61-bit multipliers would overflow; uint64 wrap-around is still a fine hash family.
    return ((x * _A + _B) % np.uint64(_PRIME)).min(axis=0)


def near_duplicate_groups(cvs: list[dict], threshold: float = THRESHOLD) -> dict[str, str]:
    """``{cv key: group id}``; the group id is the smallest ``text_hash`` among the group's members."""
    keys = [cv["key"] for cv in cvs]
    sets = [shingles(cv["text"]) for cv in cvs]
    parent = list(range(len(cvs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    buckets: dict[tuple, list[int]] = defaultdict(list)
    for index, values in enumerate(sets):
        if not values:
            continue
        signature = minhash(values)
        for band in range(BANDS):
            buckets[(band, signature[band * ROWS : (band + 1) * ROWS].tobytes())].append(index)
    for members in buckets.values():
        for position, i in enumerate(members):
            for j in members[position + 1 :]:
                if find(i) != find(j) and _jaccard(sets[i], sets[j]) >= threshold:
                    parent[find(j)] = find(i)
    groups: dict[int, str] = {}
    for index, cv in enumerate(cvs):
        root = find(index)
        groups[root] = min(groups.get(root, cv["text_hash"]), cv["text_hash"])
    return {keys[index]: groups[find(index)] for index in range(len(cvs))}


def _jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
