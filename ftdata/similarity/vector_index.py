"""Neighbour pairs above a cosine threshold through an HNSW index (usearch), for inputs
too large for all-pairs products.

Each vector is searched for its ``k`` nearest neighbours; a vector whose ``k``-th
neighbour still reaches the threshold is searched again with twice the ``k``, so a large
group of near copies is found whole. Candidate similarities are recomputed exactly, so a
pair's score is the same as the blocked path's. The index is approximate: its recall is
checked against brute force on a sample of queries, and below :data:`MIN_RECALL` the
caller falls back to the exact blocked search.
"""

from __future__ import annotations

import numpy as np

#: Recall of the index's pairs on the sampled queries, below which it is not trusted.
MIN_RECALL = 0.99
SAMPLE = 256


def _search(index: object, vectors: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    matches = index.search(vectors[rows], k)  # type: ignore[attr-defined]
    keys = np.asarray(matches.keys, dtype=np.int64).reshape(len(rows), -1)
    return keys, 1.0 - np.asarray(matches.distances, dtype=np.float32).reshape(len(rows), -1)


def _exact_neighbours(vectors: np.ndarray, rows: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    sims = vectors[rows] @ vectors.T
    found = set()
    for r, c in zip(*np.nonzero(sims >= threshold), strict=True):
        i, j = int(rows[r]), int(c)
        if i != j:
            found.add((min(i, j), max(i, j)))
    return found


def index_pairs(
    vectors: np.ndarray, threshold: float, *, k: int = 16, seed: int = 0
) -> list[tuple[int, int, float]] | None:
    """Pairs (i < j, similarity >= ``threshold``) of unit ``vectors``, sorted; None when
    the index's recall on a sample is below :data:`MIN_RECALL` (or usearch is missing)."""
    try:
        from usearch.index import Index
    except ImportError:
        return None
    n = vectors.shape[0]
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = Index(
        ndim=vectors.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=128, expansion_search=128
    )
    # one thread: the graph, and so the pairs found, are the same on every run
    index.add(np.arange(n, dtype=np.int64), vectors, threads=1)
    candidates: set[tuple[int, int]] = set()
    pending = np.arange(n)
    width = min(k, n)
    while pending.size:
        keys, sims = _search(index, vectors, pending, width)
        for row, i in enumerate(pending.tolist()):
            for j, s in zip(keys[row].tolist(), sims[row].tolist(), strict=True):
                # A margin below the threshold: the index's approximate scores decide only
                # what is checked, the exact product decides what is kept.
                if 0 <= j < n and j != i and s >= threshold - 1e-3:
                    candidates.add((min(i, j), max(i, j)))
        if width >= n:
            break
        pending = pending[sims[:, -1] >= threshold - 1e-3]
        width = min(width * 2, n)
    pairs = []
    if candidates:
        ij = np.array(sorted(candidates), dtype=np.int64)
        exact = np.einsum("ij,ij->i", vectors[ij[:, 0]], vectors[ij[:, 1]])
        keep = exact >= threshold
        pairs = [(int(a), int(b), float(s)) for (a, b), s in zip(ij[keep], exact[keep], strict=True)]
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(SAMPLE, n), replace=False))
    truth = _exact_neighbours(vectors, sample, threshold)
    if truth:
        got = {(a, b) for a, b, _ in pairs}
        if len(truth & got) / len(truth) < MIN_RECALL:
            return None
    return pairs
