"""What keeps records together in a split (``group_by``) and what balances it
(``stratify_by``): per-record keys, and the groupings that are not keys (MinHash and
embedding neighbours, precomputed labels) recognised as such."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
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
    if isinstance(grouping, list) or grouping in ("near-duplicates", "semantic"):
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
