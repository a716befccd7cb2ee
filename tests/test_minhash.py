"""The record-by-record MinHash path (used in the streaming pass) agrees with the batch
reference path: same shingle sets, same candidates, same verified pairs."""

from __future__ import annotations

import random
from itertools import combinations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdata.similarity.minhash import (
    candidate_array,
    near_duplicate_pairs,
    near_duplicates_of_sets,
    record_shingles,
    shingle_sets,
    signatures,
)

TEXT = st.text(alphabet=st.sampled_from([*"ab cd\n\tx", "数", "据", "é", "🙂", "ไ"]), max_size=60)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=8), kind=st.sampled_from(["word", "char"]), n=st.integers(1, 6))
def test_record_shingles_equal_the_batch_sets(texts: list[str], kind: str, n: int) -> None:
    batch = shingle_sets(texts, kind=kind, n=n)
    for k, text in enumerate(texts):
        assert np.array_equal(record_shingles(text, kind=kind, n=n), batch.unique(k))


def _reference_candidates(sig: np.ndarray, bands: int, rows: int, cap: int = 64) -> set[tuple[int, int]]:
    """Buckets in a dict, pairs in a set: the plain reading of LSH banding."""
    pairs: set[tuple[int, int]] = set()
    valid = [i for i in range(sig.shape[0]) if sig[i, 0] != 0xFFFFFFFF]
    for band in range(bands):
        buckets: dict[bytes, list[int]] = {}
        for i in valid:
            buckets.setdefault(sig[i, band * rows : (band + 1) * rows].tobytes(), []).append(i)
        for members in buckets.values():
            if len(members) <= cap:
                pairs.update(combinations(sorted(members), 2))
            else:
                pairs.update((members[0], m) for m in members[1:])
    return pairs


def _corpus(seed: int, n: int = 300) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(60)]
    texts: list[str] = []
    for _ in range(n):
        if texts and texts[-1] and rng.random() < 0.3:
            base = texts[-1].split()
            base[rng.randrange(len(base))] = rng.choice(words)
            texts.append(" ".join(base))
        else:
            texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))))
    return texts


def test_sorted_buckets_find_the_pairs_of_dict_buckets() -> None:
    texts = _corpus(1)
    sig = signatures(shingle_sets(texts, n=3))
    for bands, rows in [(18, 7), (32, 4), (4, 2), (64, 2)]:
        found = {(i, j) for i, j in candidate_array(sig, bands, rows).tolist()}
        assert found == _reference_candidates(sig, bands, rows)
        assert found  # the corpus plants near copies, so banding finds some


def test_pairs_from_collected_sets_equal_the_text_path() -> None:
    texts = [*_corpus(2), "", "   "]
    for kind, n, threshold in [("word", 3, 0.5), ("char", 4, 0.8), ("word", 1, 0.3)]:
        sets = [record_shingles(t, kind=kind, n=n) for t in texts]
        reference = near_duplicate_pairs(texts, threshold=threshold, shingle=kind, n=n)
        assert reference
        assert near_duplicates_of_sets(sets, threshold=threshold) == reference


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 300),
    st.integers(1, 4),
    st.sampled_from([(4, 4), (16, 1), (8, 2)]),
    st.integers(2, 70),
    st.integers(0, 2**32 - 1),
)
def test_candidate_array_gives_the_pairs_of_each_bucket(
    n: int, spread: int, shape: tuple[int, int], max_all_pairs: int, seed: int
) -> None:
    """Buckets taken together by size give what each bucket gives on its own: every pair
    of a small bucket, a star around the smallest member of a large one."""
    from ftdata.similarity.minhash import band_keys, candidate_array

    bands, rows = shape
    rng = np.random.default_rng(seed)
    sig = rng.integers(0, spread, size=(n, bands * rows), dtype=np.uint32)  # few values: large buckets
    sig[rng.random(n) < 0.1] = 0xFFFFFFFF
    valid = np.flatnonzero(sig[:, 0] != 0xFFFFFFFF)
    expected: set[tuple[int, int]] = set()
    for band in range(bands):
        buckets: dict[int, list[int]] = {}
        for k, key in zip(valid.tolist(), band_keys(sig, band, rows, valid).tolist(), strict=True):
            buckets.setdefault(key, []).append(k)
        for members in buckets.values():
            if len(members) <= max_all_pairs:
                expected.update(combinations(sorted(members), 2))
            else:
                expected.update((members[0], m) for m in members[1:])
    found = candidate_array(sig, bands, rows, max_all_pairs=max_all_pairs)
    assert {tuple(p) for p in found.tolist()} == expected
    assert found.tolist() == [list(p) for p in sorted(expected)]
