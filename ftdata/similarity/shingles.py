"""Shingles: the sets MinHash compares. A text becomes sorted unique uint32 hashes of
its word or character n-grams; hashes are content-based (fixed multipliers), so they do
not depend on the order of the input or on Python's salted ``hash``."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ftdata.similarity.scripts import spaced

_EMPTY = np.zeros(0, dtype=np.uint32)
_SHIFT = np.uint64(32)
# Fixed odd multipliers that mix n consecutive token hashes into one shingle hash.
_MIX = np.random.default_rng(0x5EED).integers(1, 2**63, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
SHINGLE_KINDS = ("word", "char")
_SEPARATOR = np.zeros(256, dtype=bool)  # the bytes words are split at
_SEPARATOR[[32, 10, 9, 13]] = True
_HIGH = re.compile(rb"[\xe0-\xff]")


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
            found = self._unique[k] = sorted_unique(self.values[self.offsets[k] : self.offsets[k + 1]].copy())
        return found

    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def of(cls, sets: Sequence[np.ndarray]) -> ShingleSets:
        """The sets ``sets`` (arrays of uint32) in one flat array."""
        offsets = np.zeros(len(sets) + 1, dtype=np.int64)
        np.cumsum([s.size for s in sets], out=offsets[1:])
        return cls(np.concatenate(sets) if sets else _EMPTY, offsets)

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
    _check(kind, n)
    if kind == "word":
        return _sets(_word_tokens([t.encode("utf-8", "surrogatepass") for t in texts]), len(texts), n)
    return _sets(_char_tokens(texts), len(texts), n)


def shingle_set_bytes(encoded: Sequence[bytes], *, kind: str = "word", n: int = 5) -> list[bytes]:
    """The sorted unique shingle hashes of each UTF-8 text of ``encoded``, as the bytes of
    a uint32 array: ``record_shingles(text).tobytes()`` for each, computed for the batch
    in a few array passes (and from the bytes, with no decoding, for word shingles). A
    few dozen texts at a time cost least per text: their arrays stay in the CPU cache."""
    _check(kind, n)
    count = len(encoded)
    if kind == "word":
        sets = _sets(_word_tokens(list(encoded)), count, n)
    else:
        sets = _sets(_char_tokens([e.decode("utf-8", "surrogatepass") for e in encoded]), count, n)
    owner = np.repeat(np.arange(count, dtype=np.uint64), sets.sizes())
    keys = (owner << _SHIFT) | sets.values.astype(np.uint64)
    keys = sorted_unique(keys)  # sorted by text, then by hash: each text's set, in order
    data = (keys & np.uint64(0xFFFFFFFF)).astype("<u4").tobytes()
    bounds = np.searchsorted(keys >> _SHIFT, np.arange(count + 1, dtype=np.uint64)) * 4
    return [data[a:b] for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]


def _check(kind: str, n: int) -> None:
    if kind not in SHINGLE_KINDS:
        raise ValueError(f"unknown shingle kind {kind!r} (expected one of {', '.join(SHINGLE_KINDS)})")
    if not 1 <= n <= len(_MIX):
        raise ValueError(f"shingle size must be between 1 and {len(_MIX)}")


def _sets(found: tuple[np.ndarray, np.ndarray], count: int, n: int) -> ShingleSets:
    """The shingles of ``count`` texts from their tokens and the text each belongs to."""
    if count == 0:
        return ShingleSets(_EMPTY, np.zeros(1, dtype=np.int64))
    tokens, owner = found
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


def _word_tokens(encoded: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Content hashes of the words of all texts (UTF-8), and the text each word belongs to."""
    # spacing needs a character of U+0E00 or above: UTF-8 lead bytes of 0xE0 or more
    encoded = [
        spaced(e.decode("utf-8", "surrogatepass")).encode("utf-8", "surrogatepass") if _HIGH.search(e) else e
        for e in encoded
    ]
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
    sep = np.flatnonzero(_SEPARATOR[buf])
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


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``values`` sorted in place and without repeats (``np.unique`` costs far more on
    the small arrays of one record)."""
    values.sort()
    if values.size < 2:
        return values
    keep = np.empty(values.size, dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def record_shingles(text: str, *, kind: str = "word", n: int = 5) -> np.ndarray:
    """The sorted unique shingle hashes of one text, equal to
    ``shingle_sets([text], kind=kind, n=n).unique(0)`` at a fraction of its cost per
    call: what a streaming pass computes record by record."""
    _check(kind, n)
    if kind == "char":
        tokens = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
        tokens *= _MIX[-1]
        tokens += _ONE
    else:
        tokens = _word_tokens([text.encode("utf-8", "surrogatepass")])[0]
    if tokens.size == 0:
        return _EMPTY
    return sorted_unique((_mix(tokens, min(n, tokens.size)) >> _SHIFT).astype(np.uint32))


class Shingler:
    """Shingle sets one text at a time (the batch function ``shingle_sets`` is faster)."""

    def __init__(self, kind: str = "word", n: int = 5) -> None:
        self.kind = kind
        self.n = n

    def __call__(self, text: str) -> np.ndarray:
        return record_shingles(text, kind=self.kind, n=self.n)


def mix(rows: int) -> np.ndarray:
    """The first ``rows`` of the fixed odd multipliers (also what band keys are mixed with)."""
    return _MIX[:rows]
