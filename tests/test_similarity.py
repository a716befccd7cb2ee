"""Shingles, MinHash-LSH, clusters and embeddings, on real inputs and against brute force."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdata.similarity.clusters import build_clusters, exact_clusters
from ftdata.similarity.minhash import (
    Shingler,
    candidate_pairs,
    choose_bands,
    expected_recall,
    jaccard,
    near_duplicate_pairs,
    shingle_sets,
    signatures,
)
from ftdata.similarity.text import normalise_text

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
]


def _text(rng: random.Random, n: int = 60) -> str:
    return " ".join(rng.choice(WORDS) + str(rng.randrange(50)) for _ in range(n))


def test_shingles_depend_only_on_the_text() -> None:
    texts = ["the cat sat on the mat today", "a b", "", "the cat sat on the mat today"]
    batch = shingle_sets(texts, n=3)
    alone = [Shingler("word", 3)(t) for t in texts]
    for k in range(len(texts)):
        assert np.array_equal(batch.unique(k), alone[k])
    assert np.array_equal(batch.unique(0), batch.unique(3))
    assert batch.unique(1).size == 1  # shorter than n: one shingle
    assert batch.unique(2).size == 0
    assert np.array_equal(shingle_sets(list(reversed(texts)), n=3).unique(0), batch.unique(3))


def test_char_shingles_count_characters_not_bytes() -> None:
    assert Shingler("char", 3)("ééé").size == 1
    assert Shingler("char", 3)("abcd").size == 2


def test_jaccard_is_exact() -> None:
    a = np.array([1, 2, 3, 4], dtype=np.uint32)
    b = np.array([3, 4, 5], dtype=np.uint32)
    assert jaccard(a, b) == pytest.approx(2 / 5)


def test_signatures_estimate_jaccard() -> None:
    rng = random.Random(1)
    base = _text(rng, 400).split()
    variant = list(base)
    for i in rng.sample(range(len(variant)), 40):
        variant[i] = "changed" + str(i)
    sets = shingle_sets([" ".join(base), " ".join(variant)], n=3)
    true = jaccard(sets.unique(0), sets.unique(1))
    sig = signatures(sets, num_perm=256, seed=0)
    estimate = float(np.mean(sig[0] == sig[1]))
    assert abs(estimate - true) < 0.08


def test_band_choice_reaches_the_recall_target() -> None:
    bands, rows = choose_bands(128, 0.8)
    assert bands * rows <= 128
    assert expected_recall(0.8, bands, rows) >= 0.97
    assert expected_recall(0.3, bands, rows) < 0.01


def test_near_duplicates_are_found_and_nothing_below_the_threshold_is_reported() -> None:
    rng = random.Random(7)
    texts, truth = [], set()
    for _ in range(150):
        base = _text(rng, 200).split()
        texts.append(" ".join(base))
        variant = list(base)
        for i in rng.sample(range(len(variant)), rng.choice([1, 2, 3, 12])):
            variant[i] = "x" + str(rng.randrange(10**6))
        texts.append(" ".join(variant))
    sets = shingle_sets(texts, n=5)
    for i in range(0, len(texts), 2):
        if jaccard(sets.unique(i), sets.unique(i + 1)) >= 0.8:
            truth.add((i, i + 1))
    found = near_duplicate_pairs(texts, threshold=0.8, n=5)
    assert all(sim >= 0.8 for _, _, sim in found)
    assert all(jaccard(sets.unique(i), sets.unique(j)) == pytest.approx(sim) for i, j, sim in found)
    recall = len(truth & {(i, j) for i, j, _ in found}) / len(truth)
    assert recall >= 0.95
    assert len(truth) > 50


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(12))))
def test_clusters_do_not_depend_on_input_order(order: list[int]) -> None:
    rng = random.Random(3)
    base = [_text(rng, 30) for _ in range(4)]
    texts = [base[k % 4] + (" extra" if k >= 8 else "") for k in range(12)]
    shuffled = [texts[k] for k in order]

    def groups(items: list[str]) -> set[frozenset[str]]:
        pairs = near_duplicate_pairs(items, threshold=0.8, n=3)
        return {frozenset(items[m] for m in c.members) for c in build_clusters(len(items), pairs)}

    assert groups(shuffled) == groups(texts)


def test_keep_policies_and_exact_clusters() -> None:
    keys = ["a", "b", "a", None, "a", "b"]
    clusters = exact_clusters(keys)
    assert [(c.representative, c.members) for c in clusters] == [(0, (0, 2, 4)), (1, (1, 5))]
    longest = exact_clusters(keys, keep="longest", lengths=[1, 5, 3, 0, 3, 9])
    assert [c.representative for c in longest] == [2, 5]
    with pytest.raises(ValueError, match="keep policy"):
        exact_clusters(keys, keep="random")


def test_candidate_pairs_join_big_buckets_by_a_star() -> None:
    sig = np.zeros((100, 8), dtype=np.uint32)
    pairs = candidate_pairs(sig, 2, 4, max_all_pairs=10)
    assert pairs == {(0, k) for k in range(1, 100)}


def test_normalisation_makes_equal_what_only_looks_different() -> None:
    assert normalise_text("Cafe\u0301  au\tlait ") == normalise_text("Café au lait")
    assert normalise_text("ABC", casefold=True) == "abc"


def test_neighbour_search_matches_brute_force() -> None:
    from ftdata.similarity.embeddings import neighbour_pairs

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors[150:160] = vectors[:10] + rng.normal(scale=0.05, size=(10, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = vectors @ vectors.T
    expected = {(i, j) for i in range(300) for j in range(i + 1, 300) if sims[i, j] >= 0.9}
    found = {(i, j) for i, j, _ in neighbour_pairs(vectors, 0.9, block=64)}
    assert found == expected
    assert len(expected) >= 10


def test_the_bundled_minilm_finds_paraphrases_offline() -> None:
    from ftdata.similarity.embeddings import encode, neighbour_pairs

    texts = [
        "How do I change my password?",
        "What are the steps to change my password?",
        "What is the capital of Japan?",
        "Recommend a good pasta recipe.",
    ]
    vectors = encode(texts, model="sentence-transformers/all-MiniLM-L6-v2")
    assert vectors.shape == (4, 384)
    pairs = {(i, j) for i, j, _ in neighbour_pairs(vectors, 0.8)}
    assert pairs == {(0, 1)}


@given(
    st.text(
        alphabet=st.sampled_from(list("ab É\t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2003\u3000\u2028e\u0301ßǅ")), max_size=30
    ),
    st.booleans(),
)
def test_normalisation_matches_its_definition(text: str, casefold: bool) -> None:
    import unicodedata

    expected = " ".join(unicodedata.normalize("NFC", text).split())
    assert normalise_text(text, casefold=casefold) == (expected.casefold() if casefold else expected)


def test_representative_groups_have_no_chains() -> None:
    from ftdata.similarity.clusters import representative_clusters

    # 0~1 and 1~2 are close, 0 and 2 are not: union-find would chain all three.
    edges = [(0, 1, 0.97), (1, 2, 0.96), (3, 4, 0.99), (2, 4, 0.95)]
    clusters = representative_clusters(5, edges)
    assert [(c.representative, c.members, c.similarity) for c in clusters] == [
        (0, (0, 1), (1.0, 0.97)),
        (2, (2, 4), (1.0, 0.95)),
    ]
    assert [c.members for c in build_clusters(5, edges)] == [(0, 1, 2, 3, 4)]
    # A refused member stays free and founds its own group.
    refused = representative_clusters(5, edges, compatible=lambda rep, m: {rep, m} != {0, 1})
    assert [c.members for c in refused] == [(1, 2), (3, 4)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11), st.floats(0.9, 1.0)), max_size=40))
def test_every_member_is_a_neighbour_of_its_representative(edges: list[tuple[int, int, float]]) -> None:
    from ftdata.similarity.clusters import representative_clusters

    best: dict[tuple[int, int], float] = {}
    for i, j, s in edges:
        if i != j:
            key = (min(i, j), max(i, j))
            best[key] = max(best.get(key, 0.0), s)
    seen: set[int] = set()
    for c in representative_clusters(12, edges):
        assert seen.isdisjoint(c.members)
        seen.update(c.members)
        for m, s in zip(c.members, c.similarity, strict=True):
            if m != c.representative:
                assert s == round(best[(min(m, c.representative), max(m, c.representative))], 6)


def test_opposite_prompts_are_recognised() -> None:
    from ftdata.similarity.opposites import opposite

    assert opposite("Convert 30 Celsius to Fahrenheit", "Convert 30 Fahrenheit to Celsius") == (
        "'celsius to fahrenheit' / 'fahrenheit to celsius'"
    )
    assert opposite("Encrypt this with ROT13", "Decrypt this with ROT13") == "'encrypt' / 'decrypt'"
    assert opposite("How do I increase the volume?", "How do I decrease the volume?") == "'increase' / 'decrease'"
    assert opposite("请加密这段文字", "请解密这段文字") == "'加密' / '解密'"
    assert opposite("How can I change my password?", "How do I change my password?") is None
    assert opposite("Translate to French: good morning", "Translate to French: good night") is None
    assert (
        opposite("Sort the list in ascending and descending order", "Sort the list in descending and ascending order")
        is None
    )
