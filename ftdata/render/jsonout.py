"""JSON: an array of finding objects, or one object a line."""

from __future__ import annotations

import json
from typing import Any, TextIO

import orjson

from ftdata.findings import Report


def dumps(value: Any, *, indent: bool = False) -> bytes:
    """``value`` as JSON bytes, exact, for any value a dataset can hold: orjson where it
    can, the standard library (ASCII escapes) for lone surrogates and integers beyond 64
    bits, and a string for an integer too long to print in decimal."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0)
    except TypeError:
        pass
    text = json.dumps(_printable(value), ensure_ascii=True, indent=2 if indent else None, default=str)
    return text.encode("ascii")


def _printable(value: Any) -> Any:
    # Python refuses to turn an integer of more than a few thousand digits into decimal
    # text; such a number is described instead of crashing the report.
    if type(value) is int:
        if value.bit_length() > 14_000:
            return f"<integer of about {int(value.bit_length() * 0.30103):,} digits>"
        return value
    if isinstance(value, dict):
        return {(k if isinstance(k, str) else str(k)): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def render_json(report: Report, stream: TextIO) -> None:
    """The findings as one indented JSON array."""
    stream.write(dumps(report.to_dicts(), indent=True).decode() + "\n")


def render_json_lines(report: Report, stream: TextIO) -> None:
    """One finding object a line."""
    for d in report.to_dicts():
        stream.write(dumps(d).decode() + "\n")
