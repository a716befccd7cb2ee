"""MinHash signatures and LSH banding, verified against exact Jaccard.

Stages, each a pure function: ``Shingler`` (text -> sorted unique uint32 shingle hashes,
from :mod:`ftdata.similarity.shingles`, re-exported here),
``signatures`` (shingle sets -> uint32 matrix), ``candidate_pairs`` (signatures -> pairs
sharing a band), ``verified_pairs`` (pairs -> those whose exact Jaccard reaches the
threshold), and, for pairs compared on the whole conversation, ``near_replies`` (verified
pairs -> those whose replies are near each other too, from ``reply_shingles``). Hashes are content-based (crc32 and fixed multipliers), so results do not
depend on the order of the input or on Python's salted ``hash``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ftdata.progress import Progress
from ftdata.similarity.shingles import (
    SHINGLE_KINDS,
    Shingler,
    ShingleSets,
    mix,
    record_shingles,
    shingle_sets,
    sorted_unique,
)

if TYPE_CHECKING:
    from ftdata.records import Record

_SHIFT = np.uint64(32)
#: Replies shingled at once: a few dozen texts cost least per text (see ``shingle_set_bytes``).
REPLY_BATCH = 64


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of ``num_perm`` multiply-shift hash functions h(x) = (a*x + b) >> 32."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
    b = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False)
    return a, b


def signatures(sets: ShingleSets, *, num_perm: int = 128, seed: int = 0, batch: int = 1 << 20) -> np.ndarray:
    """MinHash signatures, one row per set; an empty set gets all 0xFFFFFFFF."""
    a, b = permutations(num_perm, seed)
    n = len(sets)
    sig = np.full((n, num_perm), 0xFFFFFFFF, dtype=np.uint32)
    sizes = sets.sizes()
    offsets = sets.offsets
    i = 0
    while i < n:
        # records i..j-1, about ``batch`` shingles in all
        j = int(np.searchsorted(offsets, offsets[i] + batch, side="right")) - 1
        j = min(max(j, i + 1), n)
        rows = np.flatnonzero(sizes[i:j]) + i
        if rows.size:
            values = sets.values[offsets[i] : offsets[j]].astype(np.uint64)
            starts = offsets[rows] - offsets[i]
            hashed = np.empty_like(values)
            for p in range(num_perm):
                np.multiply(values, a[p], out=hashed)
                hashed += b[p]
                # the shift is monotone, so it is taken after the minimum, on one value per row
                sig[rows, p] = np.minimum.reduceat(hashed, starts) >> _SHIFT
        i = j
    return sig


def choose_bands(num_perm: int, threshold: float, recall: float = 0.97) -> tuple[int, int]:
    """(bands, rows) with rows as large as possible (fewest chance candidates) such that a
    pair at exactly ``threshold`` becomes a candidate with probability >= ``recall``."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if bands < 1:
            break
        if 1 - (1 - threshold**rows) ** bands >= recall:
            best = (bands, rows)
    return best


def band_keys(sig: np.ndarray, band: int, rows: int, rows_of: np.ndarray | None = None) -> np.ndarray:
    """The bucket key of each signature (of the ``rows_of`` rows; None: all) in band
    ``band`` of ``rows`` rows: records that share a key share that band."""
    weights = mix(rows)
    keys = np.zeros(sig.shape[0] if rows_of is None else rows_of.size, dtype=np.uint64)
    for r in range(rows):  # one column at a time: no (records x rows) copy
        column = sig[:, band * rows + r] if rows_of is None else sig[rows_of, band * rows + r]
        keys += column.astype(np.uint64) * weights[r]
    keys ^= np.uint64(band)
    return keys


def candidate_array(sig: np.ndarray, bands: int, rows: int, *, max_all_pairs: int = 64) -> np.ndarray:
    """Pairs (i < j) that share a bucket in at least one band, as a sorted ``(k, 2)``
    int64 array. Buckets larger than ``max_all_pairs`` contribute a star around their
    first member (enough to connect them). Buckets are found by sorting each band's keys,
    so memory is a few arrays of one value per record, whatever the number of buckets."""
    n = sig.shape[0]
    valid = np.flatnonzero(sig[:, 0] != 0xFFFFFFFF) if n else np.zeros(0, dtype=np.int64)
    if valid.size < 2:
        return np.zeros((0, 2), dtype=np.int64)
    found: list[np.ndarray] = []
    for band in range(bands):
        keys = band_keys(sig, band, rows, valid)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        edges = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
        bounds = np.concatenate(([0], edges, [sorted_keys.size]))
        sizes = np.diff(bounds)
        pairs = bounds[:-1][sizes == 2]
        if pairs.size:
            found.append(np.sort(np.stack((valid[order[pairs]], valid[order[pairs + 1]]), axis=1), axis=1))
        found.extend(_bucket_pairs(valid[order], bounds, sizes, max_all_pairs))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    both = np.concatenate(found).astype(np.int64)
    codes = np.unique(both[:, 0] * np.int64(n) + both[:, 1])
    return np.stack((codes // n, codes % n), axis=1)


def _bucket_pairs(members: np.ndarray, bounds: np.ndarray, sizes: np.ndarray, max_all_pairs: int) -> list[np.ndarray]:
    """The pairs of the buckets of more than two ``members`` (bucket ``g`` holds
    ``members[bounds[g]:bounds[g + 1]]``): every pair of a bucket of up to
    ``max_all_pairs``, a star around the smallest member of a larger one. Buckets of one
    size are taken together (a row each), not one at a time."""
    found = []
    for size in np.unique(sizes[sizes > 2]).tolist():
        starts = bounds[:-1][sizes == size]
        rows = np.sort(members[starts[:, None] + np.arange(size)], axis=1)
        if size <= max_all_pairs:
            i, j = np.triu_indices(size, 1)
            found.append(np.stack((rows[:, i].ravel(), rows[:, j].ravel()), axis=1))
        else:
            found.append(np.stack((np.repeat(rows[:, 0], size - 1), rows[:, 1:].ravel()), axis=1))
    return found


def candidate_pairs(sig: np.ndarray, bands: int, rows: int, *, max_all_pairs: int = 64) -> set[tuple[int, int]]:
    """Pairs (i < j) that share a bucket in at least one band (see :func:`candidate_array`)."""
    return {(i, j) for i, j in candidate_array(sig, bands, rows, max_all_pairs=max_all_pairs).tolist()}


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique arrays."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def verified_pairs(
    sets: ShingleSets | Callable[[int], np.ndarray], pairs: Iterable[tuple[int, int]], threshold: float
) -> Iterator[tuple[int, int, float]]:
    """The candidate pairs whose exact Jaccard similarity is at least ``threshold``, in
    order; ``sets`` gives the sorted unique set of a position (a :class:`ShingleSets`, or a
    function, so that the sets can stay where they were collected)."""
    unique = sets.unique if isinstance(sets, ShingleSets) else sets
    for i, j in sorted(pairs):
        a, b = unique(i), unique(j)
        small, large = sorted((a.size, b.size))
        if large == 0 or small / large < threshold:  # Jaccard <= |A|/|B|: cannot reach it
            continue
        sim = jaccard(a, b)
        if sim >= threshold:
            yield i, j, sim


def _pairs(sets: Callable[[int], np.ndarray], sig: np.ndarray, threshold: float, bands: int | None) -> list:
    if bands is None:
        bands, rows = choose_bands(sig.shape[1], threshold)
    else:
        rows = max(1, sig.shape[1] // bands)
    return list(verified_pairs(sets, map(tuple, candidate_array(sig, bands, rows).tolist()), threshold))


def near_duplicate_pairs(
    texts: Sequence[str],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    bands: int | None = None,
    shingle: str = "word",
    n: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[tuple[int, int, float]]:
    """Verified near-duplicate pairs of ``texts`` (already normalised)."""
    if not 0 < threshold <= 1:
        raise ValueError("threshold must be in (0, 1]")
    parts = []
    for k in range(0, len(texts), 2048):
        parts.append(shingle_sets(texts[k : k + 2048], kind=shingle, n=n))
        if progress is not None:
            progress("shingle", min(k + 2048, len(texts)), len(texts))
    sets = ShingleSets.concat(parts)
    sig = signatures(sets, num_perm=num_perm, seed=seed)
    if progress is not None:
        progress("sign", len(texts), len(texts))
    return _pairs(sets.unique, sig, threshold, bands)


def set_signatures(
    sets: Sequence[np.ndarray], *, num_perm: int = 128, seed: int = 0, progress: Progress | None = None
) -> np.ndarray:
    """MinHash signatures of sorted unique shingle sets (``record_shingles``), 4,096 at a
    time, so that only the signatures are added to the sets' memory."""
    sig = np.empty((len(sets), num_perm), dtype=np.uint32)
    for k in range(0, len(sets), 4096):
        part = ShingleSets.of([sets[i] for i in range(k, min(k + 4096, len(sets)))])
        sig[k : k + len(part)] = signatures(part, num_perm=num_perm, seed=seed)
        if progress is not None:
            progress("sign", k + len(part), len(sets))
    return sig


def near_duplicates_of_sets(
    sets: Sequence[np.ndarray],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    bands: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    sig: np.ndarray | None = None,
) -> list[tuple[int, int, float]]:
    """:func:`near_duplicate_pairs` from sets already computed (one sorted unique uint32
    array per text, as :func:`record_shingles` gives): the same pairs. ``sig``: their
    signatures, when computed already (equal to :func:`set_signatures` of the sets).
    Memory: the sets, 4 bytes per permutation per set, and the candidates."""
    if not 0 < threshold <= 1:
        raise ValueError("threshold must be in (0, 1]")
    if sig is None:
        sig = set_signatures(sets, num_perm=num_perm, seed=seed, progress=progress)
    elif sig.shape != (len(sets), num_perm):
        raise ValueError(f"signatures of shape {sig.shape} for {len(sets)} sets of {num_perm} permutations")
    elif progress is not None:
        progress("sign", len(sets), len(sets))
    return _pairs(sets.__getitem__, sig, threshold, bands)


def reply_bytes(record: Record) -> bytes:
    """The text of the replies of ``record`` that :func:`near_replies` compares: its
    assistant turns, normalised and case-folded, as UTF-8."""
    from ftdata.similarity.text import scope_bytes

    return scope_bytes(record, "answer", casefold=True)


def reply_shingles(texts: Sequence[bytes], *, shingle: str = "word", n: int = 5) -> list[np.ndarray | None]:
    """The sorted unique shingle hashes of each reply text of ``texts`` (from
    :func:`reply_bytes`); None for a blank one (a record without a reply)."""
    from ftdata.similarity.shingles import shingle_set_bytes

    found: list[np.ndarray | None] = [None] * len(texts)
    compared = [k for k, text in enumerate(texts) if text.strip()]
    for start in range(0, len(compared), REPLY_BATCH):
        chunk = compared[start : start + REPLY_BATCH]
        for k, values in zip(chunk, shingle_set_bytes([texts[k] for k in chunk], kind=shingle, n=n), strict=True):
            found[k] = np.frombuffer(values, dtype=np.uint32)
    return found


def near_replies(
    pairs: Iterable[tuple[int, int, float]], replies_of: Callable[[int], np.ndarray | None], threshold: float
) -> list[tuple[int, int, float]]:
    """The verified ``pairs`` (i, j, similarity) whose replies are near each other, in
    order: a pair of the same shingles (similarity 1.0), a pair one of whose sides has no
    reply (``replies_of`` gives None), or a pair whose reply shingle sets have a Jaccard
    similarity of at least ``threshold``. Compared on the whole conversation, different
    questions over one long shared document share most of their shingles through the
    document alone; their replies tell them apart."""
    kept = []
    for i, j, sim in pairs:
        if sim >= 1.0:
            kept.append((i, j, sim))
            continue
        a, b = replies_of(i), replies_of(j)
        if a is None or b is None or jaccard(a, b) >= threshold:
            kept.append((i, j, sim))
    return kept


def expected_recall(similarity: float, bands: int, rows: int) -> float:
    """Probability that a pair of this Jaccard similarity becomes a candidate."""
    return 1 - (1 - similarity**rows) ** bands


__all__ = [
    "SHINGLE_KINDS",
    "ShingleSets",
    "Shingler",
    "band_keys",
    "candidate_array",
    "candidate_pairs",
    "choose_bands",
    "expected_recall",
    "jaccard",
    "near_duplicate_pairs",
    "near_duplicates_of_sets",
    "near_replies",
    "record_shingles",
    "reply_bytes",
    "reply_shingles",
    "set_signatures",
    "shingle_sets",
    "signatures",
    "sorted_unique",
    "verified_pairs",
]
