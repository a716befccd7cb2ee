"""Dataset figures for reports: distinct n-grams, lengths, roles. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence


def distinct_ngram_ratio(texts: Sequence[str], *, n: int = 2) -> float:
    """Distinct word n-grams over all word n-grams across ``texts`` (1.0 for no n-grams)."""
    import numpy as np

    from ftdata.similarity.minhash import shingle_sets

    total = 0
    distinct: list[np.ndarray] = []
    for start in range(0, len(texts), 4096):
        sets = shingle_sets(texts[start : start + 4096], kind="word", n=n)
        total += sets.values.size
        distinct.append(np.unique(sets.values))
    if total == 0:
        return 1.0
    return float(np.unique(np.concatenate(distinct)).size) / total
