"""What keeps records together in a split (``group_by``) and what balances it
(``stratify_by``): per-record keys, and the groupings that are not keys (MinHash and
embedding neighbours, precomputed labels) recognised as such."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ftdata.records import MISSING, Record, field_value
from ftdata.similarity.clusters import UnionFind
from ftdata.similarity.keys import scope_key

GROUPINGS = ("prompt", "duplicates", "near-duplicates", "semantic")
#: ``group_by`` that keeps nothing together (eval may then share prompts with train).
NO_GROUPING = "none"
DEFAULT_GROUPING = "prompt"

Key = Callable[[Record], Hashable]


def field_getter(path: str) -> Key:
    def get(rec: Record) -> Hashable:
        value = field_value(rec.data, path)
        if value is MISSING:
            return None
        if isinstance(value, dict | list):
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        return value

    return get


def stratum_key(stratify_by: str | Key | None) -> Key | None:
    if stratify_by is None:
        return None
    if callable(stratify_by):
        return stratify_by
    if stratify_by == "system":
        return lambda r: next((m.text for m in r.messages if m.role == "system"), None)
    if stratify_by == "format":
        return lambda r: r.format
    return field_getter(stratify_by)


def bin_numbers(values: list[Hashable], bins: int) -> list[Hashable]:
    """Numbers become quantile bins ("q1".."qN"), so that a numeric field can stratify."""
    numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numeric or len(numeric) < len([v for v in values if v is not None]):
        return values
    ordered: list[float] = sorted(numeric)
    edges = [ordered[min(len(ordered) - 1, (k * len(ordered)) // bins)] for k in range(1, bins)]
    out: list[Hashable] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        rank = sum(1 for e in edges if v >= e)  # type: ignore[operator,misc]
        out.append(f"q{rank + 1}")
    return out


def grouping_list(group_by: Any, n_hint: int | None) -> list[Any]:
    """``group_by`` as a list of groupings; precomputed labels become one list entry."""
    if group_by is None or (isinstance(group_by, str) and group_by == NO_GROUPING):
        return []
    if isinstance(group_by, str) or callable(group_by):
        return [group_by]
    items = list(group_by)
    if items and not isinstance(items[0], str) and not callable(items[0]):
        return [items]  # precomputed labels, one per record
    return items


def record_key(grouping: Any) -> Callable[[Record], Hashable] | None:
    """Per-record group key for groupings decided by equal keys; None for the others."""
    if isinstance(grouping, list | tuple) or grouping in ("near-duplicates", "semantic"):
        return None
    if callable(grouping):
        return grouping
    # FT601's key, so that grouping by prompt leaves the leakage audit nothing to find.
    if grouping == "prompt":
        return lambda rec: scope_key(rec, "prompt", loose=True) if rec.readable else None
    if grouping == "duplicates":
        return lambda rec: scope_key(rec, "conversation") if rec.readable else None
    return field_getter(grouping)


def join_equal(uf: UnionFind, keys: Iterable[tuple[int, Hashable]]) -> None:
    first: dict[Hashable, int] = {}
    for i, k in keys:
        if k is None:
            continue
        j = first.setdefault(k, i)
        if j != i:
            uf.union(j, i)


def describe_grouping(group_by: Any) -> Any:
    if group_by is None or isinstance(group_by, str):
        return group_by
    if callable(group_by):
        return "<callable>"
    if isinstance(group_by, Sequence) and group_by and not isinstance(group_by[0], str):
        return "<precomputed labels>"
    return [g if isinstance(g, str) else "<callable>" for g in group_by]


@dataclass
class SplitColumns:
    """What a split keeps of each record, in one pass: a few compact columns, never the
    records. Indices are record indices (of one block when read by a cluster task, of the
    whole input once :meth:`joined`); ``strata`` and ``lines`` have one entry per record."""

    lines: list[int | None] = field(default_factory=list)
    usable: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    rejected_rules: dict[int, str | None] = field(default_factory=dict)
    strata: list[Hashable] = field(default_factory=list)
    hashes: dict[int, bytes] = field(default_factory=dict)
    #: (record, key) of each record-keyed grouping, in the order of the groupings.
    keys: list[list[tuple[int, Hashable]]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    text_owner: list[int] = field(default_factory=list)

    @classmethod
    def joined(cls, parts: Iterable[tuple[SplitColumns, int]]) -> SplitColumns:
        """The columns of consecutive blocks, each given with how many lines it read, as
        the columns of the whole input: indices and line numbers shifted in block order."""
        out = cls()
        records = lines = 0
        for part, read in parts:
            out.lines.extend(None if x is None else x + lines for x in part.lines)
            out.usable.extend(i + records for i in part.usable)
            out.rejected.update((i + records, v) for i, v in part.rejected.items())
            out.rejected_rules.update((i + records, v) for i, v in part.rejected_rules.items())
            out.strata.extend(part.strata)
            out.hashes.update((i + records, h) for i, h in part.hashes.items())
            if not out.keys:
                out.keys = [[] for _ in part.keys]
            for column, more in zip(out.keys, part.keys, strict=True):
                column.extend((i + records, k) for i, k in more)
            out.texts.extend(part.texts)
            out.text_owner.extend(i + records for i in part.text_owner)
            records += len(part.lines)
            lines += read
        return out


def collect_columns(
    records: Iterable[Record],
    *,
    groupings: Sequence[Any],
    stratum: Key | None,
    seed: int,
    scope: str,
) -> SplitColumns:
    """Read what a split needs of ``records`` (normalised): line, readability and why
    not, stratum value, seeded content hash, the key of each record-keyed grouping and,
    when a grouping compares texts, the ``scope`` text."""
    from ftdata.curation.dedup import why_unreadable
    from ftdata.similarity.text import scope_text

    getters = [record_key(g) for g in groupings]
    needs_texts = any(g in ("near-duplicates", "semantic") for g in groupings if isinstance(g, str))
    out = SplitColumns(keys=[[] for _ in getters])
    interned: dict[Hashable, Hashable] = {}
    for rec in records:
        i = rec.index
        out.lines.append(rec.line)
        if not rec.readable:
            out.rejected_rules[i], out.rejected[i] = why_unreadable(rec)
            out.strata.append(None)
            continue
        out.usable.append(i)
        value = stratum(rec) if stratum else None
        out.strata.append(interned.setdefault(value, value) if isinstance(value, Hashable) else value)
        out.hashes[i] = content_hash(rec, seed)
        for column, get in zip(out.keys, getters, strict=True):
            if get is not None:
                column.append((i, get(rec)))
        if needs_texts:
            out.texts.append(scope_text(rec, scope, casefold=True))
            out.text_owner.append(i)
    return out


def content_hash(rec: Record, seed: int) -> bytes:
    """The seeded hash that orders a split's placement: of the record's bytes as read."""
    payload = rec.raw if rec.raw is not None else orjson.dumps(rec.data, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(payload, digest_size=8, key=seed.to_bytes(8, "big", signed=True)).digest()
