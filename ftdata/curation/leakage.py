"""``ftdata.leakage``: records of one file that reappear, exactly or nearly, in another
(eval questions seen in training). Exact keys, MinHash-LSH and embeddings, as pairs.

Only records ftdata can read (:attr:`Record.readable`) are compared; the others are listed
in :attr:`LeakageReport.unreadable` and make the report incomplete (``failed()`` is then
True), since a leak among them could not be seen."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftdata import io
from ftdata.curation.dedup import Unreadable, why_unreadable
from ftdata.formats import normalise
from ftdata.records import Record
from ftdata.similarity.text import scope_key, scope_text

METHODS = ("exact", "minhash", "semantic")


@dataclass(frozen=True)
class Leak:
    """One record of ``source_b`` matching one of ``source_a`` (a earlier on the list)."""

    method: str
    similarity: float
    source_a: str
    index_a: int
    line_a: int | None
    source_b: str
    index_b: int
    line_b: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "similarity": round(self.similarity, 6),
            "a": {"source": self.source_a, "index": self.index_a, "line": self.line_a},
            "b": {"source": self.source_b, "index": self.index_b, "line": self.line_b},
        }


@dataclass
class LeakageReport:
    sources: list[str]
    records: dict[str, int]
    leaks: list[Leak] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    unreadable: dict[str, list[Unreadable]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.leaks)

    @property
    def complete(self) -> bool:
        """True when every record of every file could be read, so was compared."""
        return not any(self.unreadable.values())

    def failed(self) -> bool:
        """True when something leaks, or when the audit is incomplete (unreadable records)."""
        return bool(self.leaks) or not self.complete

    def counts(self) -> dict[tuple[str, str, str], int]:
        """Leaks per (file a, file b, method)."""
        return dict(Counter((k.source_a, k.source_b, k.method) for k in self.leaks))

    def leaked_records(self, source: str) -> set[int]:
        """Indices of ``source``'s records that match a record of an earlier file."""
        return {k.index_b for k in self.leaks if k.source_b == source}

    def to_dicts(self) -> list[dict[str, Any]]:
        return [k.to_dict() for k in self.leaks]


def _load(path: Path, format: str | None) -> tuple[list[Record], list[Unreadable]]:
    out, unread = [], []
    for item in io.read(path, io.ReadStats()):
        if not isinstance(item, Record):
            continue
        if type(item.data) is dict:
            normalise(item, format)
        if item.readable:
            out.append(item)
        else:
            unread.append(Unreadable(item.index, item.line, *why_unreadable(item)))
    return out, unread


def exact_key(record: Record, scope: str) -> int | None:
    """The key FT601 compares for ``scope`` (prompt, answer or conversation): the
    duplicate keys of :mod:`ftdata.similarity.text`; None for a record without one."""
    return scope_key(record, scope)


def leakage(
    paths: Sequence[str | os.PathLike[str]],
    *,
    methods: Iterable[str] = ("exact", "minhash"),
    scope: str = "prompt",
    threshold: float = 0.8,
    semantic_threshold: float = 0.9,
    model: str = "sentence-transformers/all-MiniLM-L6-v2",
    format: str | None = None,
) -> LeakageReport:
    """Matches between the records of different files. ``scope`` compares the prompt (every
    turn before the first reply: the usual leak), the answer or the whole conversation.
    ``minhash`` pairs have Jaccard >= ``threshold`` (word 5-grams, verified exactly);
    ``semantic`` pairs cosine >= ``semantic_threshold``. Each record pair is reported once,
    by the first method that finds it, in the order exact, minhash, semantic."""
    chosen = [m for m in METHODS if m in set(methods)]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown leakage method {sorted(unknown)[0]!r} (expected {', '.join(METHODS)})")
    files = [Path(p) for p in paths]
    if len(files) < 2:
        raise ValueError("leakage needs at least two files")
    names = [str(p) for p in files]
    pairs_read = [_load(p, format) for p in files]
    loaded = [recs for recs, _ in pairs_read]
    owners: list[tuple[int, Record]] = [(k, r) for k, recs in enumerate(loaded) for r in recs]
    report = LeakageReport(
        names,
        {names[k]: len(recs) + len(unread) for k, (recs, unread) in enumerate(pairs_read)},
        options={"methods": chosen, "scope": scope, "threshold": threshold, "semantic_threshold": semantic_threshold},
        unreadable={names[k]: unread for k, (_, unread) in enumerate(pairs_read) if unread},
    )
    seen: set[tuple[int, int]] = set()

    def add(method: str, sim: float, x: int, y: int) -> None:
        (ka, ra), (kb, rb) = sorted((owners[x], owners[y]), key=lambda o: (o[0], o[1].index))
        if ka == kb or (x, y) in seen:
            return
        seen.add((x, y))
        seen.add((y, x))
        report.leaks.append(Leak(method, sim, names[ka], ra.index, ra.line, names[kb], rb.index, rb.line))

    if "exact" in chosen:
        first: dict[int, list[int]] = {}
        for pos, (_, rec) in enumerate(owners):
            key = exact_key(rec, scope)
            if key is not None:
                first.setdefault(key, []).append(pos)
        for members in first.values():
            for a in range(len(members)):
                for b in range(a + 1, len(members)):
                    add("exact", 1.0, members[a], members[b])
    if "minhash" in chosen or "semantic" in chosen:
        texts = [scope_text(rec, scope, casefold=True) for _, rec in owners]
        if "minhash" in chosen:
            from ftdata.similarity.minhash import near_duplicate_pairs

            for x, y, sim in near_duplicate_pairs(texts, threshold=threshold):
                add("minhash", sim, x, y)
        if "semantic" in chosen:
            from ftdata.similarity.embeddings import encode, neighbour_pairs

            for x, y, sim in neighbour_pairs(encode(texts, model=model), semantic_threshold):
                add("semantic", sim, x, y)
    report.leaks.sort(key=lambda k: (names.index(k.source_b), k.index_b, names.index(k.source_a), k.index_a))
    return report
