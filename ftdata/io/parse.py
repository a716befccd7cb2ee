"""One record's bytes to a value and its problems: the fast path and the strict one.

Records are parsed with orjson; anything it refuses or that looks suspicious afterwards
(a duplicate key, nesting too deep, an integer beyond +-2^53) is parsed again by
:mod:`ftdata.jsonstrict`, which says exactly what is wrong and where.
"""

from __future__ import annotations

from typing import Any

import orjson

from ftdata import jsonstrict
from ftdata.problems import Problem as Kind
from ftdata.records import Problem

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64

_loads = orjson.loads
_dumps = orjson.dumps
_JSONDecodeError = orjson.JSONDecodeError
_JSONEncodeError = orjson.JSONEncodeError
_MAX_SAFE = 9007199254740992
_BIG_FLOAT = 9007199254740992.0
_NO_PROBLEMS: list[Problem] = []


def _walk(node: Any, depth: int, max_depth: int) -> int:
    """Number of object keys in a parsed value, or -1 when the strict parser must look at
    it: nesting deeper than ``max_depth``, or a number that may be an integer beyond ±2^53.
    Recursion stops at ``max_depth``."""
    if depth > max_depth:
        return -1
    if type(node) is dict:
        n = len(node)
        values: Any = node.values()
    else:
        n = 0
        values = node
    for v in values:
        t = type(v)
        if t is str:
            continue
        if t is dict:
            # An object is walked here rather than by a call: records are lists of small
            # objects (messages, parts) whose values are mostly text.
            if depth >= max_depth:
                return -1
            n += len(v)
            for w in v.values():
                t = type(w)
                if t is str:
                    continue
                if t is dict or t is list:
                    k = _walk(w, depth + 2, max_depth)
                    if k < 0:
                        return -1
                    n += k
                elif t is int:
                    if w > _MAX_SAFE or w < -_MAX_SAFE:
                        return -1
                elif t is float and (w >= _BIG_FLOAT or w <= -_BIG_FLOAT):
                    return -1
        elif t is list:
            k = _walk(v, depth + 1, max_depth)
            if k < 0:
                return -1
            n += k
        elif t is int:
            if v > _MAX_SAFE or v < -_MAX_SAFE:
                return -1
        elif t is float and (v >= _BIG_FLOAT or v <= -_BIG_FLOAT):
            return -1
    return n


# Deeper limits than this are walked with an explicit stack: recursion would reach
# Python's limit (orjson itself accepts nesting up to 1,024 levels).
_RECURSIVE_WALK = 200


def _walk_deep(node: Any, max_depth: int) -> int:
    """:func:`_walk` for any ``max_depth``, without recursion."""
    n = 0
    stack = [(node, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return -1
        if type(node) is dict:
            n += len(node)
            values: Any = node.values()
        else:
            values = node
        for v in values:
            t = type(v)
            if t is dict or t is list:
                stack.append((v, depth + 1))
            elif t is int:
                if v > _MAX_SAFE or v < -_MAX_SAFE:
                    return -1
            elif t is float and (v >= _BIG_FLOAT or v <= -_BIG_FLOAT):
                return -1
    return n


def _no_duplicates(raw: bytes, data: dict[str, Any], nkeys: int) -> bool:
    """True when ``raw`` (which orjson parsed to ``data``, holding ``nkeys`` keys in all)
    certainly writes no key twice; False when only the strict parser can tell.

    Cheapest first. Every key written is followed by one structural colon, so with T keys
    written (T = ``nkeys`` + duplicates) and C colons inside strings, ``raw`` holds T + C
    colons: as many as ``nkeys`` means no duplicate (and no colon in any text).

    Else count quotes. A quote byte in valid JSON is a string's delimiter or an escaped
    quote (``\\"``) inside one; orjson writes every quote in the text as ``\\"``. So
    ``raw`` holds the quotes of ``orjson.dumps(data)``, less one per quote it writes as
    ``\\u0022``, plus at least two per dropped duplicate (its key's delimiters). With
    ``u`` the ``\\u0022`` sequences of ``raw`` (an escaped backslash may precede one, so
    u only bounds the escapes from above), quotes + u equal the dump's exactly when no
    key was dropped and every ``\\u0022`` is an escape.
    """
    if raw.count(b":") == nkeys:
        return True
    try:
        dumped = _dumps(data)
    except _JSONEncodeError:  # nested beyond orjson's writer (255 levels)
        return False
    return raw.count(b'"') + raw.count(b"\\u0022") == dumped.count(b'"')


def parse_record(raw: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> tuple[Any, list[Problem]]:
    """Parse one record's bytes: (value or None, problems with character offsets).

    orjson refuses what the strict parser reports as invalid JSON, NaN and Infinity,
    numbers that overflow a double and lone surrogates; what it accepts may still hold a
    duplicate key, nesting deeper than ``max_depth`` or an integer beyond ±2^53, and only
    then (or when the cheap tests cannot rule it out) is the line parsed again strictly.
    """
    try:
        data = _loads(raw)
    except _JSONDecodeError:
        return _strict(raw, max_depth)
    if type(data) is dict:
        nkeys = _walk(data, 1, max_depth) if max_depth <= _RECURSIVE_WALK else _walk_deep(data, max_depth)
        if nkeys < 0 or not _no_duplicates(raw, data, nkeys):
            return _strict(raw, max_depth)
        return data, _NO_PROBLEMS
    start = len(raw) - len(raw.lstrip())
    return data, [_not_an_object(data, start)]


def parse_record_fast(raw: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> tuple[Any, list[Problem]]:
    """Parse with orjson only, without looking for duplicate keys or unsafe integers (for
    tools that only need the value); a line orjson refuses still gets the strict parser's
    message."""
    try:
        data = _loads(raw)
    except _JSONDecodeError:
        return _strict(raw, max_depth)
    if type(data) is dict:
        return data, _NO_PROBLEMS
    start = len(raw) - len(raw.lstrip())
    return data, [_not_an_object(data, start)]


def _not_an_object(value: Any, offset: int | None) -> Problem:
    return (Kind.NOT_AN_OBJECT, (), f"record is a JSON {json_kind(value)}, not an object", offset)


def _unparsed(raw: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> tuple[Any, list[Problem]]:
    return None, _NO_PROBLEMS


#: How readers parse each record: ``strict`` (every problem found), ``fast`` (orjson only)
#: or ``none`` (bytes only, for copying records).
PARSERS = {"strict": parse_record, "fast": parse_record_fast, "none": _unparsed}


def json_kind(value: Any) -> str:
    """The JSON type of a parsed value other than an object, as messages name it."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _strict(raw: bytes, max_depth: int) -> tuple[Any, list[Problem]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        column = len(raw[: e.start].decode("utf-8", "replace"))
        bad = raw[e.start : e.start + 4].hex(" ")
        return None, [(Kind.INVALID_UTF8, (), f"invalid UTF-8 byte sequence ({bad})", column)]
    result = jsonstrict.parse(text, max_depth=max_depth)
    problems: list[Problem] = [(kind, (), message, offset) for kind, offset, message in result.problems]
    value = result.value
    if not result.fatal and type(value) is not dict:
        start = len(text) - len(text.lstrip())
        problems.append(_not_an_object(value, start))
    if any(p[0] in _UNUSABLE for p in problems):
        value = None
    return value, problems


# After these, the value would not survive a round trip through a strict parser.
_UNUSABLE = frozenset({Kind.INVALID_JSON, Kind.INVALID_UTF8, Kind.NESTING_TOO_DEEP})


def broken_at(body: bytes) -> int | None:
    """None when ``body`` is one JSON value (possibly with recoverable problems such as a
    duplicate key); otherwise the byte offset in ``body`` after which the value that
    follows a syntax error may begin (where a reader of many values resumes)."""
    try:
        _loads(body)
        return None
    except _JSONDecodeError:
        pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        text = body[: e.start].decode("utf-8")
        return len(text.encode("utf-8"))
    result = jsonstrict.parse(text, max_depth=_SPLIT_DEPTH)
    if not result.fatal:
        return None
    offset = next((o for k, o, _ in result.problems if k is Kind.INVALID_JSON), 0)
    return len(text[:offset].encode("utf-8"))


# Deep parts are skipped unparsed; deep enough that no real record is skipped.
_SPLIT_DEPTH = 1 << 16
