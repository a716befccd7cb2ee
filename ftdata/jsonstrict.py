"""A strict, position-aware JSON parser for the slow path and for locating values.

The fast path parses with orjson. Whenever orjson refuses a line, or the cheap
post-checks see something suspicious, this parser reads it again and turns every problem
into a precise (kind, offset, message), where ``kind`` is a rule name. It also answers
"where in this text is the value at path P?" for findings that carry a path.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ftdata.findings import PathT

MAX_SAFE_INTEGER = 2**53

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD]([89abAB]|[c-fC-F])[0-9a-fA-F]{2}")
_SKIP_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]

#: (key offset or None, value start, value end), offsets into the parsed text.
Span = tuple[int | None, int, int]


@dataclass(slots=True)
class StrictResult:
    value: Any
    problems: list[tuple[str, int, str]] = field(default_factory=list)
    fatal: bool = False
    spans: dict[PathT, Span] = field(default_factory=dict)


class _Fatal(Exception):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


class _Found(Exception):
    pass


class _Parser:
    def __init__(self, text: str, max_depth: int, targets: set[PathT] | None) -> None:
        self.text = text
        self.n = len(text)
        self.max_depth = max_depth
        self.targets = targets
        self.problems: list[tuple[str, int, str]] = []
        self.spans: dict[PathT, Span] = {}
        self.keys: dict[PathT, int] = {}
        self.too_deep = False

    def ws(self, i: int) -> int:
        return _WS.match(self.text, i).end()  # type: ignore[union-attr]

    def value(self, i: int, path: PathT, depth: int) -> tuple[Any, int]:
        text = self.text
        i = self.ws(i)
        if i >= self.n:
            raise _Fatal(i, "unexpected end of data: expected a JSON value")
        c = text[i]
        if c == "{":
            value, end = self.obj(i, path, depth + 1)
        elif c == "[":
            value, end = self.arr(i, path, depth + 1)
        elif c == '"':
            value, end = self.string(i)
        elif c == "-" and text.startswith("-Infinity", i):
            value, end = self.nonfinite(i)
        elif c == "-" or "0" <= c <= "9":
            value, end = self.number(i)
        elif text.startswith("true", i):
            value, end = True, i + 4
        elif text.startswith("false", i):
            value, end = False, i + 5
        elif text.startswith("null", i):
            value, end = None, i + 4
        else:
            value, end = self.nonfinite(i)
        targets = self.targets
        if targets is not None and path in targets:
            self.spans[path] = (self.keys.get(path), i, end)
            if len(self.spans) == len(targets):
                raise _Found
        return value, end

    def nonfinite(self, i: int) -> tuple[float, int]:
        text = self.text
        for literal, value in (("NaN", float("nan")), ("Infinity", float("inf")), ("-Infinity", float("-inf"))):
            if text.startswith(literal, i):
                self.problems.append(
                    ("nan-or-infinity", i, f"{literal} is not valid JSON; strict parsers reject the record")
                )
                return value, i + len(literal)
        raise _Fatal(i, f"unexpected character {text[i]!r}: expected a JSON value")

    def number(self, i: int) -> tuple[int | float, int]:
        m = _NUMBER.match(self.text, i)
        if m is None or m.end() == i:
            raise _Fatal(i, "invalid number")
        token = m.group()
        if m.group(1) or m.group(2):
            value = float(token)
            if value in (float("inf"), float("-inf")):
                self.problems.append(("nan-or-infinity", i, f"number {token} overflows a double and becomes infinity"))
            return value, m.end()
        number = int(token)
        if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
            self.problems.append(
                ("unsafe-integer", i, f"integer {token} is beyond ±2^53 and loses precision in many parsers")
            )
        return number, m.end()

    def string(self, i: int) -> tuple[str, int]:
        try:
            value, end = _scanstring(self.text, i + 1, True)
        except json.JSONDecodeError as e:
            message = e.msg
            if message.startswith("Unterminated string"):
                message = "unterminated string"
            elif message.startswith("Invalid control character"):
                message = "unescaped control character in string (escape it as \\uXXXX)"
            elif message.startswith("Invalid \\uXXXX"):
                message = "invalid \\uXXXX escape"
            elif message.startswith("Invalid \\escape"):
                message = "invalid escape sequence in string"
            raise _Fatal(e.pos, message) from None
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                self.problems.append(("lone-surrogate", self._lone_surrogate(i, end), _LONE_MESSAGE))
        return value, end

    def _lone_surrogate(self, start: int, end: int) -> int:
        matches = list(_SURROGATE_ESCAPE.finditer(self.text, start, end))
        k = 0
        while k < len(matches):
            m = matches[k]
            high = m.group(1).lower() in "89ab"
            nxt = matches[k + 1] if k + 1 < len(matches) else None
            if high and nxt is not None and nxt.start() == m.end() and nxt.group(1).lower() not in "89ab":
                k += 2
                continue
            return m.start()
        return start

    def skip(self, i: int) -> int:
        """Skip a container without recursion (used past the depth limit)."""
        depth = 0
        for m in _SKIP_TOKEN.finditer(self.text, i):
            tok = m.group()
            if tok in "[{":
                depth += 1
            elif tok in "]}":
                depth -= 1
                if depth == 0:
                    return m.end()
        raise _Fatal(self.n, "unexpected end of data inside a nested value")

    def deep(self, i: int) -> tuple[None, int]:
        if not self.too_deep:
            self.too_deep = True
            self.problems.append(("nesting-too-deep", i, f"value nested deeper than {self.max_depth} levels"))
        return None, self.skip(i)

    def obj(self, i: int, path: PathT, depth: int) -> tuple[Any, int]:
        if depth > self.max_depth:
            return self.deep(i)
        text = self.text
        out: dict[str, Any] = {}
        i = self.ws(i + 1)
        if text.startswith("}", i):
            return out, i + 1
        while True:
            i = self.ws(i)
            if not text.startswith('"', i):
                if text.startswith("}", i) and out:
                    raise _Fatal(i, "trailing comma before '}'")
                raise _Fatal(i, "expected a double-quoted object key")
            key_start = i
            key, i = self.string(i)
            if key in out:
                self.problems.append(
                    (
                        "duplicate-key",
                        key_start,
                        f"duplicate key {key!r}: the later value silently replaces the earlier one",
                    )
                )
            i = self.ws(i)
            if not text.startswith(":", i):
                raise _Fatal(i, "expected ':' after an object key")
            child = (*path, key)
            if self.targets is not None:
                self.keys[child] = key_start
            value, i = self.value(i + 1, child, depth)
            out[key] = value
            i = self.ws(i)
            if text.startswith(",", i):
                i += 1
                continue
            if text.startswith("}", i):
                return out, i + 1
            raise _Fatal(i, "expected ',' or '}' after an object member")

    def arr(self, i: int, path: PathT, depth: int) -> tuple[Any, int]:
        if depth > self.max_depth:
            return self.deep(i)
        text = self.text
        out: list[Any] = []
        i = self.ws(i + 1)
        if text.startswith("]", i):
            return out, i + 1
        while True:
            i = self.ws(i)
            if text.startswith("]", i) and out:
                raise _Fatal(i, "trailing comma before ']'")
            value, i = self.value(i, (*path, len(out)), depth)
            out.append(value)
            i = self.ws(i)
            if text.startswith(",", i):
                i += 1
                continue
            if text.startswith("]", i):
                return out, i + 1
            raise _Fatal(i, "expected ',' or ']' after an array element")


_LONE_MESSAGE = "lone UTF-16 surrogate escape: the string cannot be encoded as UTF-8"


def parse(text: str, *, max_depth: int = 64) -> StrictResult:
    """Parse ``text`` as one JSON value, collecting every problem with its offset.

    A syntax error stops the parse (``fatal``); recoverable problems (duplicate keys,
    NaN, unsafe integers, lone surrogates, deep nesting) are collected and parsing goes on.
    """
    p = _Parser(text, max_depth, None)
    try:
        value, i = p.value(0, (), 0)
        i = p.ws(i)
        if i < p.n:
            raise _Fatal(i, "extra data after the JSON value")
    except _Fatal as e:
        return StrictResult(None, [*p.problems, ("invalid-json", e.offset, e.message)], True)
    return StrictResult(value, p.problems)


def locate(text: str, paths: Iterable[PathT], *, max_depth: int = 64) -> dict[PathT, Span]:
    """Find where the values at ``paths`` are in ``text``: {path: (key_start, start, end)}.

    Offsets are character offsets. Paths that are not there are left out.
    """
    targets = set(paths)
    if not targets:
        return {}
    p = _Parser(text, max_depth, targets)
    with contextlib.suppress(_Found, _Fatal):
        p.value(0, (), 0)
    return p.spans


def line_col(text: str, offset: int) -> tuple[int, int]:
    """0-based line and 0-based column (in characters) of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start
