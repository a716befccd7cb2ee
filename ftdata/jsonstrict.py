"""A strict, position-aware JSON parser for the slow path and for locating values.

The fast path parses with orjson. Whenever orjson refuses a line, or the cheap
post-checks see something suspicious, this parser reads it again and turns every problem
into a precise (kind, offset, message), where ``kind`` is a :class:`ftdata.problems.Problem`.
It also answers "where in this text is the value at path P?" for findings that carry a path.

Every message is ftdata's own (never a third-party parser's wording), and no input raises:
nesting is handled with an explicit stack, and integers too long for Python's int-from-str
limit are reported, not converted.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ftdata.findings import PathT
from ftdata.problems import Problem

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
    problems: list[tuple[Problem, int, str]] = field(default_factory=list)
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
    """Recursive-descent in structure, but driven by an explicit stack of open containers,
    so no input and no ``max_depth`` can exhaust Python's recursion limit."""

    def __init__(self, text: str, max_depth: int, targets: set[PathT] | None) -> None:
        self.text = text
        self.n = len(text)
        self.max_depth = max_depth
        self.targets = targets
        self.problems: list[tuple[Problem, int, str]] = []
        self.spans: dict[PathT, Span] = {}
        self.keys: dict[PathT, int] = {}
        self.too_deep = False
        # Paths are only built as deep as the deepest target: a path per value of a
        # 100,000-deep input would take quadratic memory.
        self.track = max(map(len, targets)) if targets else -1

    def child(self, path: PathT | None, step: str | int) -> PathT | None:
        """The path of a member of the container at ``path``; None when no target lies there."""
        if path is None or len(path) >= self.track:
            return None
        return (*path, step)

    def ws(self, i: int) -> int:
        return _WS.match(self.text, i).end()  # type: ignore[union-attr]

    def run(self, i: int) -> tuple[Any, int]:
        """Parse the value starting at or after ``i``: (value, offset just past it)."""
        text = self.text
        n = self.n
        targets: set[PathT] = self.targets or set()
        # Open containers, innermost last: [container, its path, its start offset, pending key].
        stack: list[list[Any]] = []
        value: Any
        path: PathT | None = () if self.track >= 0 else None
        while True:
            # Parse one value at ``path``, or open a container and go on with its first child.
            i = self.ws(i)
            if i >= n:
                raise _Fatal(i, "unexpected end of data: expected a JSON value")
            c = text[i]
            start = i
            if c == "{" or c == "[":
                if len(stack) + 1 > self.max_depth:
                    value, i = self.deep(i)
                else:
                    j = self.ws(i + 1)
                    if c == "{":
                        if text.startswith("}", j):
                            value, i = {}, j + 1
                        else:
                            stack.append([{}, path, start, None])
                            path, i = self.key(stack[-1], j)
                            continue
                    elif text.startswith("]", j):
                        value, i = [], j + 1
                    else:
                        stack.append([[], path, start, None])
                        path, i = self.child(path, 0), j
                        continue
            elif c == '"':
                value, i = self.string(i)
            elif c == "-" and text.startswith("-Infinity", i):
                value, i = self.nonfinite(i)
            elif c == "-" or "0" <= c <= "9":
                value, i = self.number(i)
            elif text.startswith("true", i):
                value, i = True, i + 4
            elif text.startswith("false", i):
                value, i = False, i + 5
            elif text.startswith("null", i):
                value, i = None, i + 4
            else:
                value, i = self.nonfinite(i)
            # A value is complete: record its span, store it, and close every container it ends.
            while True:
                if path is not None and path in targets:
                    self.spans[path] = (self.keys.get(path), start, i)
                    if len(self.spans) == len(targets):
                        raise _Found
                if not stack:
                    return value, i
                frame = stack[-1]
                container = frame[0]
                i = self.ws(i)
                if type(container) is dict:
                    container[frame[3]] = value
                    if text.startswith(",", i):
                        path, i = self.key(frame, self.ws(i + 1), after_comma=True)
                        break
                    if not text.startswith("}", i):
                        raise _Fatal(i, "expected ',' or '}' after an object member")
                else:
                    container.append(value)
                    if text.startswith(",", i):
                        i = self.ws(i + 1)
                        if text.startswith("]", i):
                            raise _Fatal(i, "trailing comma before ']'")
                        path = self.child(frame[1], len(container))
                        break
                    if not text.startswith("]", i):
                        raise _Fatal(i, "expected ',' or ']' after an array element")
                stack.pop()
                value, path, start, i = container, frame[1], frame[2], i + 1

    def key(self, frame: list[Any], i: int, *, after_comma: bool = False) -> tuple[PathT | None, int]:
        """Read ``"key":`` at ``i`` for the object of ``frame``: (the member's path, offset of its value)."""
        text = self.text
        if not text.startswith('"', i):
            if after_comma and text.startswith("}", i):
                raise _Fatal(i, "trailing comma before '}'")
            raise _Fatal(i, "expected a double-quoted object key")
        key_start = i
        key, i = self.string(i)
        if key in frame[0]:
            self.problems.append(
                (
                    Problem.DUPLICATE_KEY,
                    key_start,
                    f"duplicate key {_clip(key)!r}: the later value silently replaces the earlier one",
                )
            )
        i = self.ws(i)
        if not text.startswith(":", i):
            raise _Fatal(i, "expected ':' after an object key")
        frame[3] = key
        child = self.child(frame[1], key)
        if child is not None:
            self.keys[child] = key_start
        return child, i + 1

    def nonfinite(self, i: int) -> tuple[float, int]:
        text = self.text
        for literal, value in (("NaN", float("nan")), ("Infinity", float("inf")), ("-Infinity", float("-inf"))):
            if text.startswith(literal, i):
                self.problems.append(
                    (Problem.NAN_OR_INFINITY, i, f"{literal} is not valid JSON; strict parsers reject the record")
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
            if value in (_INF, -_INF):
                self.problems.append(
                    (Problem.NAN_OR_INFINITY, i, f"number {_clip(token)} overflows a double and becomes infinity")
                )
            return value, m.end()
        try:
            number = int(token)
        except ValueError:
            # Longer than Python's int-from-string limit (sys.set_int_max_str_digits), so
            # json.loads raises on it too. Keep the magnitude as a float so the record can
            # still be checked.
            digits = len(token) - (token[0] == "-")
            self.problems.append(
                (
                    Problem.UNSAFE_INTEGER,
                    i,
                    f"integer {_clip(token)} of {digits:,} digits is beyond ±2^53 and too long for "
                    "Python's json module, which refuses to read it",
                )
            )
            return float(token), m.end()
        if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
            self.problems.append(
                (
                    Problem.UNSAFE_INTEGER,
                    i,
                    f"integer {_clip(token)} is beyond ±2^53 and loses precision in many parsers",
                )
            )
        return number, m.end()

    def string(self, i: int) -> tuple[str, int]:
        try:
            value, end = _scanstring(self.text, i + 1, True)
        except json.JSONDecodeError as e:
            raise _Fatal(e.pos, _string_message(e.msg)) from None
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                self.problems.append((Problem.LONE_SURROGATE, self._lone_surrogate(i, end), _LONE_MESSAGE))
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
            self.problems.append((Problem.NESTING_TOO_DEEP, i, f"value nested deeper than {self.max_depth} levels"))
        return None, self.skip(i)


_LONE_MESSAGE = "lone UTF-16 surrogate escape: the string cannot be encoded as UTF-8"
_INF = float("inf")
# Deep enough for any text that fits in memory: the parser keeps its own stack.
_NO_LIMIT = 1 << 62
_CLIP = 40


def _clip(token: str) -> str:
    """``token`` shortened for a message: a 5,000-digit number must not fill the terminal."""
    if len(token) <= _CLIP:
        return token
    return f"{token[: _CLIP // 2]}...{token[-8:]}"


def _string_message(message: str) -> str:
    """ftdata's message for an error the string scanner reported."""
    if message.startswith("Unterminated string"):
        return "unterminated string"
    if message.startswith("Invalid control character"):
        return "unescaped control character in string (escape it as \\uXXXX)"
    if message.startswith("Invalid \\uXXXX"):
        return "invalid \\uXXXX escape"
    if message.startswith("Invalid \\escape"):
        return "invalid escape sequence in string"
    return "invalid string"


def parse(text: str, *, max_depth: int = 64) -> StrictResult:
    """Parse ``text`` as one JSON value, collecting every problem with its offset.

    A syntax error stops the parse (``fatal``); recoverable problems (duplicate keys,
    NaN, unsafe integers, lone surrogates, deep nesting) are collected and parsing goes on.
    """
    p = _Parser(text, max_depth, None)
    try:
        value, i = p.run(0)
        i = p.ws(i)
        if i < p.n:
            raise _Fatal(i, "extra data after the JSON value")
    except _Fatal as e:
        return StrictResult(None, [*p.problems, (Problem.INVALID_JSON, e.offset, e.message)], True)
    return StrictResult(value, p.problems)


def syntax_error(text: str) -> str | None:
    """ftdata's description of the first syntax error in ``text`` (``"unterminated string
    at column 12"``), or None when ``text`` is one valid JSON value.

    For rules that check JSON held inside a string (tool-call arguments, a JSON reply), so
    that their messages never quote a third-party parser, whose wording changes between
    versions.
    """
    result = parse(text, max_depth=_NO_LIMIT)
    if not result.fatal:
        return None
    for kind, offset, message in result.problems:
        if kind is Problem.INVALID_JSON:
            line, column = line_col(text, offset)
            where = f"line {line + 1}, column {column + 1}" if line else f"column {column + 1}"
            return f"{message} at {where}"
    return "invalid JSON"  # pragma: no cover - a fatal result always carries its error


def locate(text: str, paths: Iterable[PathT], *, max_depth: int = 64) -> dict[PathT, Span]:
    """Find where the values at ``paths`` are in ``text``: {path: (key_start, start, end)}.

    Offsets are character offsets. Paths that are not there are left out.
    """
    targets = set(paths)
    if not targets:
        return {}
    p = _Parser(text, max_depth, targets)
    with contextlib.suppress(_Found, _Fatal):
        p.run(0)
    return p.spans


def line_col(text: str, offset: int) -> tuple[int, int]:
    """0-based line and 0-based column (in characters) of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start
