"""Field mapping: a file's own keys read as a type's keys.

A mapping is a ``{source: target}`` table, as written in ``[tool.ftdata.fields]`` or with
``--map question=prompt,answer=completion``:

- ``question=prompt``: the top-level key ``question`` is read as ``prompt``; a source may
  be a dotted path (``conversation.turns=messages``, digits are list positions);
- ``dialog.*.speaker=role``: in every object of the list at ``dialog``, the key
  ``speaker`` is read as ``role`` (list paths are the file's own, before any renaming);
- ``role:Human=user``: the role value ``Human`` (under ``role`` or ``from``) is read as
  ``user``.

The mapped record is what detection, normalisation and the rules see; every path into it
is translated back (:meth:`FieldMap.source_path`) so findings point at the file's own keys.

A run carries its format and mapping as one *format spec* string (``FORMAT``,
``FORMAT[question=prompt,answer=completion]`` or ``[question=prompt]``), so that the
mapping travels wherever the format does (plans sent to worker processes, the format
argument of the curation commands, their manifests).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ftdata.findings import PathT
from ftdata.records import MISSING, field_value

#: Where role values are read in a turn (OpenAI messages and ShareGPT turns).
ROLE_KEYS = ("role", "from")
#: The pair key of a spec that names a LLaMA-Factory dataset_info.json (resolved per file).
DATASET_INFO = "@dataset-info"
_SPEC = re.compile(r"^([A-Za-z0-9_-]*)(?:\[(.*)\])?$", re.DOTALL)
_FORBIDDEN = frozenset(",=[]")


class FieldsError(ValueError):
    """A mapping that cannot be read (``--map`` text, a config table, a spec)."""


@dataclass(frozen=True, slots=True)
class FieldMap:
    """A parsed mapping: top-level moves, renames of keys inside list items, role values.

    ``pairs`` keeps the mapping as given (source, target), in order: its text form.
    """

    pairs: tuple[tuple[str, str], ...]
    moves: tuple[tuple[tuple[str | int, ...], str], ...]
    renames: tuple[tuple[tuple[str | int, ...], str, str], ...]
    roles: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, fields: Mapping[str, str] | FieldMap) -> FieldMap:
        """A FieldMap from a ``{source: target}`` table; FieldsError when one is malformed."""
        if isinstance(fields, FieldMap):
            return fields
        return _parse(tuple((str(k), str(v)) for k, v in fields.items()))

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def as_dict(self) -> dict[str, str]:
        return dict(self.pairs)

    def text(self) -> str:
        """The ``--map`` form: ``question=prompt,answer=completion``."""
        return ",".join(f"{k}={v}" for k, v in self.pairs)

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        """The record as the type's keys name it; ``data`` itself is never changed. A
        source the record lacks is skipped, so mapping a mapped record changes nothing."""
        out = dict(data)
        for list_path, old, new in self.renames:
            items = _get(out, list_path)
            if type(items) is list and any(type(t) is dict and old in t for t in items):
                out = _put(out, list_path, [_rename(t, old, new) for t in items])
        for source, target in self.moves:
            value = _get(out, source)
            if value is MISSING:
                continue
            before, out = out, _drop(out, source)
            if len(source) == 1:
                out = _replace_key(before, out, source[0], target, value)
            else:
                out[target] = value
        if self.roles:
            table = dict(self.roles)
            for key, value in list(out.items()):
                if type(value) is list and any(type(t) is dict for t in value):
                    out[key] = [_role_values(t, table) for t in value]
                elif type(value) is dict and any(k in value for k in ROLE_KEYS):
                    out[key] = _role_values(value, table)
        return out

    def source_path(self, path: PathT) -> PathT:
        """Where ``path`` (into the mapped record) lies in the record as written."""
        if not path:
            return path
        out: tuple[str | int, ...] = tuple(path)
        for source, target in self.moves:
            if out[0] == target:
                out = (*source, *out[1:])
                break
        for list_path, old, new in self.renames:
            n = len(list_path)
            if len(out) > n + 1 and out[:n] == list_path and type(out[n]) is int and out[n + 1] == new:
                out = (*out[: n + 1], old, *out[n + 2 :])
        return out


def _parse(pairs: tuple[tuple[str, str], ...]) -> FieldMap:
    moves: list[tuple[tuple[str | int, ...], str]] = []
    renames: list[tuple[tuple[str | int, ...], str, str]] = []
    roles: list[tuple[str, str]] = []
    targets: set[str] = set()
    for source, target in pairs:
        source, target = source.strip(), target.strip()
        if not source or not target:
            raise FieldsError(f"a field mapping needs SOURCE=TARGET, got {source!r}={target!r}")
        if any(c in _FORBIDDEN for c in source + target):
            raise FieldsError(f"a field name in a mapping cannot hold ',', '=', '[' or ']': {source}={target}")
        if source.startswith("role:"):
            roles.append((source[5:], target))
            continue
        if "." in target:
            raise FieldsError(f"the target of {source}={target} must be a plain key such as 'prompt'")
        if ".*." in source:
            list_part, _, key = source.rpartition(".*.")
            if not list_part or not key or "." in key or "*" in list_part:
                raise FieldsError(f"expected LIST.*.KEY=KEY, got {source}={target}")
            renames.append((_path(list_part), key, target))
            continue
        if "*" in source:
            raise FieldsError(f"'*' stands for every item of a list: LIST.*.KEY=KEY, got {source}={target}")
        if target in targets:
            raise FieldsError(f"two fields are mapped to {target!r}")
        targets.add(target)
        moves.append((_path(source), target))
    return FieldMap(pairs, tuple(moves), tuple(renames), tuple(roles))


def _path(dotted: str) -> tuple[str | int, ...]:
    return tuple(int(p) if p.isdigit() else p for p in dotted.split("."))


def _get(data: Any, path: tuple[str | int, ...]) -> Any:
    return field_value(data, ".".join(str(p) for p in path))


def _put(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``value`` at ``path`` (containers on the way copied)."""
    out = dict(data)
    node: Any = out
    for part in path[:-1]:
        child = node[part]
        child = dict(child) if type(child) is dict else list(child)
        node[part] = child
        node = child
    node[path[-1]] = value
    return out


def _drop(data: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    """A copy of ``data`` without the value at ``path``; an object left empty by it goes too."""
    if len(path) == 1:
        return data if path[0] not in data else {k: v for k, v in data.items() if k != path[0]}
    parent = _get(data, path[:-1])
    if type(parent) is dict:
        rest = {k: v for k, v in parent.items() if k != path[-1]}
        return _drop(data, path[:-1]) if not rest else _put(data, path[:-1], rest)
    return data  # an item of a list stays: removing it would shift its neighbours


def _replace_key(original: dict[str, Any], out: dict[str, Any], old: Any, new: str, value: Any) -> dict[str, Any]:
    """``out`` with ``new`` where ``old`` stood in ``original``, so keys keep their order."""
    if old not in original:
        out[new] = value
        return out
    rebuilt: dict[str, Any] = {}
    for key in original:
        if key == old:
            rebuilt[new] = value
        elif key in out and key != new:
            rebuilt[key] = out[key]
    for key, v in out.items():
        if key not in rebuilt:
            rebuilt[key] = v
    return rebuilt


def _rename(item: Any, old: str, new: str) -> Any:
    if type(item) is not dict or old not in item:
        return item
    return {(new if k == old else k): v for k, v in item.items() if not (k == new and new != old)}


def _role_values(item: Any, table: dict[str, str]) -> Any:
    if type(item) is not dict:
        return item
    changed = {k: table[v] for k in ROLE_KEYS if type(v := item.get(k)) is str and v in table}
    return {**item, **changed} if changed else item


def apply_fields(data: dict[str, Any], fields: Mapping[str, str] | FieldMap) -> dict[str, Any]:
    """``data`` with its keys mapped by ``fields`` (``{"question": "prompt"}``): the record
    a type's reader expects. ``data`` is not changed; FieldsError on a malformed mapping."""
    return FieldMap.of(fields).apply(data)


def parse_map(text: str | tuple[str, ...] | list[str]) -> dict[str, str]:
    """``"question=prompt,query=completion"`` (or several such strings) as a mapping;
    FieldsError when a part is not SOURCE=TARGET."""
    parts = [text] if isinstance(text, str) else list(text)
    out: dict[str, str] = {}
    for chunk in parts:
        for item in chunk.split(","):
            if not item.strip():
                continue
            source, sep, target = item.partition("=")
            if not sep or not source.strip() or not target.strip():
                raise FieldsError(f"--map expects SOURCE=TARGET pairs separated by commas, got {item.strip()!r}")
            out[source.strip()] = target.strip()
    FieldMap.of(out)  # validate
    return out


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """What a run reads records as: a forced format (None: detect), a mapping, and the
    dataset_info.json to look the file's entry up in (resolved where the file is known)."""

    format: str | None = None
    fields: FieldMap | None = None
    dataset_info: str | None = None

    def text(self) -> str | None:
        """The spec string (None when it says nothing: detect, no mapping)."""
        pairs = list(self.fields.pairs) if self.fields else []
        if self.dataset_info:
            pairs.append((DATASET_INFO, self.dataset_info))
        if not pairs:
            return self.format
        body = ",".join(f"{k}={v}" for k, v in pairs)
        return f"{self.format or ''}[{body}]"


@lru_cache(maxsize=256)
def parse_spec(text: str | None) -> FormatSpec:
    """The :class:`FormatSpec` of a format spec string; FieldsError when it is malformed."""
    if not text:
        return FormatSpec()
    m = _SPEC.match(text.strip())
    if m is None:
        raise FieldsError(f"not a format or a format with a mapping: {text!r}")
    fmt = m.group(1) or None
    body = m.group(2)
    if body is None:
        return FormatSpec(fmt)
    pairs: dict[str, str] = {}
    info = None
    for item in body.split(","):
        if not item.strip():
            continue
        source, sep, target = item.partition("=")
        if not sep:
            raise FieldsError(f"expected SOURCE=TARGET in {text!r}, got {item!r}")
        if source.strip() == DATASET_INFO:
            info = target.strip()
        else:
            pairs[source.strip()] = target.strip()
    fields = FieldMap.of(pairs) if pairs else None
    return FormatSpec(fmt, fields, info)


def compose(
    format: str | None, fields: Mapping[str, str] | FieldMap | None = None, dataset_info: str | None = None
) -> str | None:
    """The spec string for ``format`` (itself a spec, or a format name or None) with
    ``fields`` added (they win over the spec's own for the same source) and a dataset_info path."""
    base = parse_spec(format)
    merged = dict(base.fields.pairs) if base.fields else {}
    if fields:
        merged.update(FieldMap.of(fields).pairs)
    return FormatSpec(base.format, FieldMap.of(merged) if merged else None, dataset_info or base.dataset_info).text()
