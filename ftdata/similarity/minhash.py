"""MinHash signatures and LSH banding, verified against exact Jaccard.

Stages, each a pure function: ``Shingler`` (text -> sorted unique uint32 shingle hashes),
``signatures`` (shingle sets -> uint32 matrix), ``candidate_pairs`` (signatures -> pairs
sharing a band), ``verified_pairs`` (pairs -> those whose exact Jaccard reaches the
threshold). Hashes are content-based (crc32 and fixed multipliers), so results do not
depend on the order of the input or on Python's salted ``hash``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from ftdata.progress import Progress
from ftdata.similarity.scripts import spaced

_EMPTY = np.zeros(0, dtype=np.uint32)
_SHIFT = np.uint64(32)
# Fixed odd multipliers that mix n consecutive token hashes into one shingle hash.
_MIX = np.random.default_rng(0x5EED).integers(1, 2**63, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
SHINGLE_KINDS = ("word", "char")


def _inverse(p: int) -> int:
    x = p
    for _ in range(7):  # Newton iteration doubles the correct low bits each step
        x = (x * (2 - p * x)) % 2**64
    return x


_BASE = 0x100000001B3
_ONE = np.uint64(1)


class _Powers:
    """Powers of the polynomial base and of its inverse mod 2^64, grown on demand."""

    def __init__(self) -> None:
        self.pow = np.ones(1, dtype=np.uint64)
        self.inv = np.ones(1, dtype=np.uint64)

    def upto(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.pow.size < n:
            size = max(n, 2 * self.pow.size, 1 << 16)
            self.pow = np.cumprod(np.full(size, _BASE, dtype=np.uint64), dtype=np.uint64) * np.uint64(_inverse(_BASE))
            self.inv = np.cumprod(np.full(size, _inverse(_BASE), dtype=np.uint64), dtype=np.uint64) * np.uint64(_BASE)
        return self.pow[:n], self.inv[:n]


_POWERS = _Powers()


class ShingleSets:
    """Shingle hashes of many texts in one flat array: text ``k`` has
    ``values[offsets[k]:offsets[k + 1]]``, in text order and possibly repeated (repeats do
    not change a MinHash). ``unique(k)`` gives the set, sorted."""

    def __init__(self, values: np.ndarray, offsets: np.ndarray) -> None:
        self.values = values
        self.offsets = offsets
        self._unique: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.offsets.size - 1

    def __getitem__(self, k: int) -> np.ndarray:
        return self.unique(k)

    def unique(self, k: int) -> np.ndarray:
        found = self._unique.get(k)
        if found is None:
            found = self._unique[k] = np.unique(self.values[self.offsets[k] : self.offsets[k + 1]])
        return found

    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def concat(cls, parts: Sequence[ShingleSets]) -> ShingleSets:
        if not parts:
            return cls(_EMPTY, np.zeros(1, dtype=np.int64))
        values = np.concatenate([p.values for p in parts])
        offsets = [np.zeros(1, dtype=np.int64)]
        base = 0
        for p in parts:
            offsets.append(p.offsets[1:] + base)
            base += p.values.size
        return cls(values, np.concatenate(offsets))


def _mix(tokens: np.ndarray, n: int) -> np.ndarray:
    m = tokens.size - n + 1
    acc = tokens[:m] * _MIX[0]
    for j in range(1, n):
        acc += tokens[j : j + m] * _MIX[j]
    return acc


def shingle_sets(texts: Sequence[str], *, kind: str = "word", n: int = 5) -> ShingleSets:
    """Shingle hashes of ``texts``, computed for the whole batch in a few array passes.
    Words are split at spaces and newlines, and each character of a script written
    without spaces (Chinese, Japanese, Thai...: see :mod:`ftdata.similarity.scripts`) is
    a word of its own, so such text is compared by character n-grams; a text shorter than
    ``n`` tokens is a single shingle, so short texts can still match. Hashes depend only
    on the text."""
    if kind not in SHINGLE_KINDS:
        raise ValueError(f"unknown shingle kind {kind!r} (expected one of {', '.join(SHINGLE_KINDS)})")
    if not 1 <= n <= len(_MIX):
        raise ValueError(f"shingle size must be between 1 and {len(_MIX)}")
    count = len(texts)
    if count == 0:
        return ShingleSets(_EMPTY, np.zeros(1, dtype=np.int64))
    if kind == "word":
        tokens, owner = _word_tokens([spaced(t) for t in texts])
    else:
        tokens, owner = _char_tokens(texts)
    per_record = np.bincount(owner, minlength=count)
    owners, values = [], []
    if tokens.size >= n:
        windows = (_mix(tokens, n) >> _SHIFT).astype(np.uint32)
        same = owner[: windows.size] == owner[n - 1 :]
        owners.append(owner[: windows.size][same])
        values.append(windows[same])
    short = np.flatnonzero((per_record > 0) & (per_record < n))
    if short.size:
        starts = np.concatenate(([0], np.cumsum(per_record)))
        owners.append(short)
        values.append(
            np.array(
                [_mix(tokens[starts[k] : starts[k + 1]], int(per_record[k]))[0] >> _SHIFT for k in short],
                dtype=np.uint64,
            ).astype(np.uint32)
        )
    if not owners:
        return ShingleSets(_EMPTY, np.zeros(count + 1, dtype=np.int64))
    owner_all = np.concatenate(owners)
    value_all = np.concatenate(values)
    if len(owners) > 1:  # two sorted runs: a stable sort merges them in linear time
        order = np.argsort(owner_all, kind="stable")
        owner_all, value_all = owner_all[order], value_all[order]
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner_all, minlength=count), out=offsets[1:])
    return ShingleSets(value_all, offsets)


def _word_tokens(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Content hashes of the words of all texts, and the text each word belongs to."""
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    buf = np.frombuffer(b" ".join(encoded), dtype=np.uint8)
    size = buf.size
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    text_starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    pow_, inv = _POWERS.upto(size + 1)
    weighted = buf.astype(np.uint64)
    weighted += _ONE
    weighted *= pow_[:size]
    prefix = np.zeros(size + 1, dtype=np.uint64)
    np.cumsum(weighted, out=prefix[1:])
    sep = np.flatnonzero((buf == 32) | (buf == 10) | (buf == 9) | (buf == 13))
    starts = np.concatenate(([0], sep + 1))
    ends = np.concatenate((sep, [size]))
    nonempty = ends > starts
    starts, ends = starts[nonempty], ends[nonempty]
    hashes = (prefix[ends] - prefix[starts]) * inv[starts]
    owner = np.searchsorted(text_starts, starts, side="right") - 1
    return hashes, owner


def _char_tokens(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    points = [np.frombuffer(t.encode("utf-32-le", "surrogatepass"), dtype=np.uint32) for t in texts]
    lengths = np.fromiter((p.size for p in points), dtype=np.int64, count=len(points))
    tokens = np.concatenate(points).astype(np.uint64) if points else np.zeros(0, dtype=np.uint64)
    owner = np.repeat(np.arange(len(points)), lengths)
    return tokens * _MIX[-1] + _ONE, owner


class Shingler:
    """Shingle sets one text at a time (the batch function ``shingle_sets`` is faster)."""

    def __init__(self, kind: str = "word", n: int = 5) -> None:
        self.kind = kind
        self.n = n

    def __call__(self, text: str) -> np.ndarray:
        return shingle_sets([text], kind=self.kind, n=self.n).unique(0)


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
                hashed >>= _SHIFT
                sig[rows, p] = np.minimum.reduceat(hashed, starts)
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


def candidate_pairs(sig: np.ndarray, bands: int, rows: int, *, max_all_pairs: int = 64) -> set[tuple[int, int]]:
    """Pairs (i < j) that share a bucket in at least one band. Buckets larger than
    ``max_all_pairs`` contribute a star around their first member (enough to connect them)."""
    n = sig.shape[0]
    valid = np.flatnonzero(sig[:, 0] != 0xFFFFFFFF) if n else np.zeros(0, dtype=np.int64)
    pairs: set[tuple[int, int]] = set()
    if valid.size < 2:
        return pairs
    mix = _MIX[:rows]
    for band in range(bands):
        cols = sig[valid, band * rows : (band + 1) * rows].astype(np.uint64)
        keys = (cols * mix).sum(axis=1, dtype=np.uint64) ^ np.uint64(band)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        edges = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
        bounds = np.concatenate(([0], edges, [sorted_keys.size]))
        sizes = np.diff(bounds)
        for g in np.flatnonzero(sizes >= 2):
            members = valid[order[bounds[g] : bounds[g + 1]]].tolist()
            members.sort()
            if len(members) <= max_all_pairs:
                pairs.update((members[x], members[y]) for x in range(len(members)) for y in range(x + 1, len(members)))
            else:
                head = members[0]
                pairs.update((head, m) for m in members[1:])
    return pairs


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique arrays."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def verified_pairs(
    sets: ShingleSets, pairs: Iterable[tuple[int, int]], threshold: float
) -> Iterator[tuple[int, int, float]]:
    """The candidate pairs whose exact Jaccard similarity is at least ``threshold``."""
    for i, j in sorted(pairs):
        a, b = sets.unique(i), sets.unique(j)
        small, large = sorted((a.size, b.size))
        if large == 0 or small / large < threshold:  # Jaccard <= |A|/|B|: cannot reach it
            continue
        sim = jaccard(a, b)
        if sim >= threshold:
            yield i, j, sim


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
    step = 2048
    for k in range(0, len(texts), step):
        parts.append(shingle_sets(texts[k : k + step], kind=shingle, n=n))
        if progress is not None:
            progress("shingle", min(k + step, len(texts)), len(texts))
    sets = ShingleSets.concat(parts)
    sig = signatures(sets, num_perm=num_perm, seed=seed)
    if progress is not None:
        progress("sign", len(texts), len(texts))
    if bands is None:
        bands, rows = choose_bands(num_perm, threshold)
    else:
        rows = max(1, num_perm // bands)
    cands = candidate_pairs(sig, bands, rows)
    return list(verified_pairs(sets, cands, threshold))


def expected_recall(similarity: float, bands: int, rows: int) -> float:
    """Probability that a pair of this Jaccard similarity becomes a candidate."""
    return 1 - (1 - similarity**rows) ** bands


__all__ = [
    "SHINGLE_KINDS",
    "ShingleSets",
    "Shingler",
    "candidate_pairs",
    "choose_bands",
    "expected_recall",
    "jaccard",
    "near_duplicate_pairs",
    "shingle_sets",
    "signatures",
    "verified_pairs",
]
