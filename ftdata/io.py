"""Line-aware readers for JSONL and JSON-array files, and an atomic writer.

Reading never raises on bad data: every problem becomes a (kind, path, message, offset)
on the record it belongs to, or a :class:`FileProblem` for the file, where the kind is a
:class:`ftdata.problems.Problem` (whose value is the name of the rule that reports it). Records are parsed
with orjson; anything it refuses or that looks suspicious afterwards is parsed again by
:mod:`ftdata.jsonstrict`, which says exactly what is wrong and where.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from ftdata import jsonstrict, problems
from ftdata.problems import Problem as Kind
from ftdata.records import Problem, Record

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64
BOM = b"\xef\xbb\xbf"
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")
DATA_SUFFIXES = (*JSONL_SUFFIXES, ".json")

#: Every problem kind the readers emit; each is the name of a registered rule.
PROBLEM_KINDS = problems.READER

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_KEY_END = re.compile(rb'"[ \t\r\n]*:')
_LOOSE_KEY_END = re.compile(rb'"[ \t\r\n]+:')
_ESCAPED_KEY_END = re.compile(rb'\\"[ \t\r\n]*:')
_MAX_SAFE = 9007199254740992
_BIG_FLOAT = 9007199254740992.0
_NO_PROBLEMS: list[Problem] = []
# Strings, brackets and commas: enough to find value boundaries without parsing.
_ARRAY_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


@dataclass(slots=True)
class FileProblem:
    """A problem of the file rather than of one record (a blank line, CRLF endings)."""

    kind: Kind
    line: int
    column: int
    message: str


@dataclass(slots=True)
class ReadStats:
    """Filled in by a reader as it goes."""

    lines: int = 0
    records: int = 0
    crlf_lines: int = 0
    first_crlf_line: int = 0
    missing_final_newline: bool = False
    container: str = "jsonl"


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
        if t is dict or t is list:
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


def _keys_match(raw: bytes, nkeys: int) -> bool:
    """True when ``raw`` writes exactly ``nkeys`` object keys, i.e. has no duplicate key.

    In valid JSON an unescaped quote followed by a colon ends a key; an escaped quote
    followed by a colon is text inside a string. Let T be the keys written, D the
    duplicates (T = nkeys + D), K the keys written as ``"key":`` and E the in-string
    ``\\":`` sequences; ``raw.count(b'":')`` is K + E. With no key written as ``"key" :``,
    K = T, so a count equal to ``nkeys`` means D + E = 0. Otherwise count exactly.
    """
    loose = _LOOSE_KEY_END.search(raw) is not None
    if not loose and raw.count(b'":') == nkeys:
        return True
    if b'\\\\"' in raw:
        return False  # an escaped backslash before a quote: let the strict parser decide
    if loose:
        written = len(_KEY_END.findall(raw)) - len(_ESCAPED_KEY_END.findall(raw))
    else:
        written = raw.count(b'":') - raw.count(b'\\":')
    return written == nkeys


def parse_record(raw: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> tuple[Any, list[Problem]]:
    """Parse one record's bytes: (value or None, problems with character offsets)."""
    try:
        data = _loads(raw)
    except _JSONDecodeError:
        return _strict(raw, max_depth)
    if type(data) is dict:
        nkeys = _walk(data, 1, max_depth) if max_depth <= _RECURSIVE_WALK else _walk_deep(data, max_depth)
        if nkeys < 0 or not _keys_match(raw, nkeys):
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


def container_of(path: Path) -> str:
    """How a file holds its records: ``"jsonl"`` (one a line), ``"json-array"`` (a ``.json``
    file holding an array) or ``"json-stream"`` (a ``.json`` file holding one object, or
    several, spread over many lines)."""
    if path.suffix.lower() != ".json":
        return "jsonl"
    with open(path, "rb") as f:
        head = f.read(1 << 16)
        while head and not head.lstrip(b"\xef\xbb\xbf \t\r\n"):
            more = f.read(1 << 16)
            if not more:
                break
            head = more
        if head.removeprefix(BOM).lstrip().startswith(b"["):
            return "json-array"
        f.seek(0)
        first = f.readline(1 << 20).removeprefix(BOM).strip()
        while not first:
            line = f.readline(1 << 20)
            if not line:
                return "jsonl"
            first = line.strip()
    try:
        orjson.loads(first)
    except orjson.JSONDecodeError:
        # Not one complete value on the first line: a multi-line document, unless the line
        # is simply broken; a balanced first line means JSON Lines with an error in it.
        return "jsonl" if _balanced(first) else "json-stream"
    return "jsonl"


def _balanced(line: bytes) -> bool:
    depth = 0
    for m in _ARRAY_TOKEN.finditer(line):
        c = line[m.start()]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
    return depth == 0


def read_jsonl(
    path: Path,
    stats: ReadStats,
    *,
    source: str,
    start: int = 0,
    end: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    parse: str = "strict",
) -> Iterator[Record | FileProblem]:
    """Records of a JSON Lines file (or of the byte range ``[start, end)``, which must
    begin at a line start). Line numbers and indices count from the range's start."""
    parse_one = PARSERS[parse]
    limit = max_line_bytes + 1
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        f.seek(start)
        offset = start
        lineno = 0
        index = 0
        readline = f.readline
        last = b""
        while end is None or offset < end:
            line = readline(limit)
            if not line:
                break
            lineno += 1
            size = len(line)
            if size == limit and not line.endswith(b"\n"):
                size += _skip_line(f)
                rec = Record(index, None, source=source, line=lineno, offset=offset)
                rec.problems.append(
                    (Kind.LINE_TOO_LONG, (), f"line of {size:,} bytes exceeds the limit of {max_line_bytes:,} bytes", 0)
                )
                index += 1
                offset += size
                last = b"\n"
                yield rec
                continue
            last = line
            body = line
            if body.endswith(b"\n"):
                body = body[:-1]
                if body.endswith(b"\r"):
                    body = body[:-1]
                    stats.crlf_lines += 1
                    if not stats.first_crlf_line:
                        stats.first_crlf_line = lineno
            body_offset = offset
            if offset == 0 and body.startswith(BOM):
                yield FileProblem(Kind.UTF8_BOM, 1, 1, "file starts with a UTF-8 byte order mark")
                body = body[3:]
                body_offset = 3
            if not body or body.isspace():
                yield FileProblem(Kind.BLANK_LINE, lineno, 1, "blank line")
                offset += size
                continue
            data, problems = parse_one(body, max_depth=max_depth)
            rec = Record(index, data, source=source, line=lineno, raw=body, offset=body_offset)
            if problems:
                if lineno == 1 and body.lstrip().startswith(b"[") and data is None:
                    problems = [
                        (
                            k,
                            p,
                            m + " (the file looks like a JSON array: name it .json)" if k is Kind.INVALID_JSON else m,
                            o,
                        )
                        for k, p, m, o in problems
                    ]
                rec.problems.extend(problems)
            index += 1
            offset += size
            yield rec
        stats.lines = lineno
        stats.records = index
        at_eof = offset >= file_size
        stats.missing_final_newline = at_eof and bool(last) and not last.endswith(b"\n")


def _skip_line(f: IO[bytes]) -> int:
    skipped = 0
    while True:
        chunk = f.readline(1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def read_json_document(
    path: Path,
    stats: ReadStats,
    *,
    source: str,
    container: str = "json-array",
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    parse: str = "strict",
) -> Iterator[Record | FileProblem]:
    """Records of a ``.json`` file holding an array (or a stream of pretty-printed
    objects), each with its line and column; the file is memory-mapped, not loaded."""
    items = array_items if container == "json-array" else stream_items
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            stats.container = container
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            yield from items(buf, stats, source, max_depth=max_depth, max_record_bytes=max_line_bytes, parse=parse)


class _Elements:
    """Turns byte spans of a buffer into Records, keeping the running line count."""

    def __init__(
        self, buf: bytes | mmap.mmap, source: str, max_depth: int, max_record_bytes: int, parse: str = "strict"
    ) -> None:
        self.parse_one = PARSERS[parse]
        self.buf = buf
        self.source = source
        self.max_depth = max_depth
        self.max_record_bytes = max_record_bytes
        self.line = 1
        self.counted = 0
        self.col_at = 0
        self.col = 1
        self.index = 0

    def position(self, at: int) -> tuple[int, int]:
        """1-based line and column (in characters) of byte ``at``, for ``at`` not before
        the previous call's. Counts only the bytes since that call, so a minified array
        on one long line costs linear time."""
        buf = self.buf
        if at < self.counted:  # not expected: count from the start
            line_start = buf.rfind(b"\n", 0, at) + 1
            return 1 + buf[:at].count(b"\n"), len(buf[line_start:at].decode("utf-8", "replace")) + 1
        newlines = buf[self.counted : at].count(b"\n")
        if newlines:
            self.line += newlines
            self.col_at = buf.rfind(b"\n", self.counted, at) + 1
            self.col = 1
        self.counted = at
        self.col += len(buf[self.col_at : at].decode("utf-8", "replace"))
        self.col_at = at
        return self.line, self.col

    def record(self, begin: int, stop: int, empty_message: str | None = None) -> Record | None:
        """The record whose text is ``buf[begin:stop]`` (surrounding whitespace ignored).
        An empty span is an invalid-json record with ``empty_message``, or nothing."""
        chunk = self.buf[begin:stop]
        body = chunk.strip()
        at = begin + len(chunk) - len(chunk.lstrip())
        line, column = self.position(at)
        index = self.index
        if not body:
            if empty_message is None:
                return None
            self.index += 1
            return _invalid_json_record(index, self.source, line, column, at, empty_message)
        self.index += 1
        if len(body) > self.max_record_bytes:
            rec = Record(index, None, source=self.source, line=line, column=column, offset=at)
            message = f"record of {len(body):,} bytes exceeds the limit of {self.max_record_bytes:,} bytes"
            rec.problems.append((Kind.LINE_TOO_LONG, (), message, 0))
            return rec
        data, problems = self.parse_one(body, max_depth=self.max_depth)
        rec = Record(index, data, source=self.source, line=line, column=column, raw=body, offset=at)
        rec.problems.extend(problems)
        return rec

    def problem(self, at: int, message: str) -> FileProblem:
        line_no = 1 + self.buf[:at].count(b"\n")
        col = at - (self.buf.rfind(b"\n", 0, at) + 1) + 1
        return FileProblem(Kind.INVALID_JSON, line_no, col, message)


def _prologue(buf: bytes | mmap.mmap, stats: ReadStats) -> Iterator[FileProblem]:
    if buf[:3] == BOM:
        yield FileProblem(Kind.UTF8_BOM, 1, 1, "file starts with a UTF-8 byte order mark")
    crlf = buf.find(b"\r\n")
    if crlf != -1:
        stats.first_crlf_line = buf[:crlf].count(b"\n") + 1
        stats.crlf_lines = _count(buf, b"\r\n", len(buf))


def _finish(buf: bytes | mmap.mmap, stats: ReadStats, elements: _Elements) -> None:
    size = len(buf)
    stats.records = elements.index
    stats.lines = buf[:size].count(b"\n") + (0 if buf[size - 1 : size] == b"\n" else 1)


def array_items(
    buf: bytes | mmap.mmap,
    stats: ReadStats,
    source: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_record_bytes: int = DEFAULT_MAX_LINE_BYTES,
    parse: str = "strict",
) -> Iterator[Record | FileProblem]:
    """Records of a JSON array held in ``buf`` (bytes or a memory map).

    A malformed element costs that element only: when an element does not parse, reading
    resumes at the next element that does (see :func:`_resync`), so the records after it
    keep their index, line and column. Where elements split does not depend on ``parse``.
    """
    stats.container = "json-array"
    yield from _prologue(buf, stats)
    elements = _Elements(buf, source, max_depth, max_record_bytes, parse)
    pos = buf.find(b"[", 3 if buf[:3] == BOM else 0)
    if pos == -1:
        yield FileProblem(Kind.INVALID_JSON, 1, 1, "expected a JSON array of records")
        return
    size = len(buf)
    start = pos + 1
    after_comma = False
    closed_at = -1
    while True:
        stop, ender = _element_end(buf, start)
        if ender == _COMMA:
            message: str | None = "missing value between commas"
        else:
            message = "trailing comma before ']'" if after_comma and ender == _CLOSE_ARRAY else None
        rec = elements.record(start, stop, message)
        if rec is not None and rec.data is None and rec.raw != b"":
            cut = _resync(buf, start, stop, max_record_bytes)
            if cut is not None:
                comma, following = cut
                elements.index -= 1  # the same element again, cut where the next one begins
                yield elements.record(start, comma)  # type: ignore[misc]
                start = following
                after_comma = True
                continue
        if rec is not None:
            yield rec
        if ender == _COMMA:
            start = stop + 1
            after_comma = True
            continue
        if ender == _CLOSE_ARRAY:
            closed_at = stop + 1
        break
    if closed_at == -1:
        yield FileProblem(
            Kind.INVALID_JSON, 1 + buf[:size].count(b"\n"), 1, "unexpected end of file: the JSON array is not closed"
        )
    else:
        rest = buf[closed_at:size]
        if rest.strip():
            yield elements.problem(closed_at + len(rest) - len(rest.lstrip()), "extra data after the JSON array")
    _finish(buf, stats, elements)


_COMMA = 0x2C
_CLOSE_ARRAY = 0x5D
_NON_SPACE = re.compile(rb"[^ \t\r\n]")
# Where the next element may begin after a broken one: a comma, then an object starting a
# line (pretty-printed and one-per-line arrays; the indentation is checked), or anywhere
# (a minified array on one line).
_LINE_CANDIDATE = re.compile(rb",[ \t]*\r?\n(?:[ \t]*\r?\n)*([ \t]*)\{")
_ANY_CANDIDATE = re.compile(rb",[ \t\r\n]*\{")


def _element_end(buf: bytes | mmap.mmap, start: int, limit: int | None = None) -> tuple[int, int]:
    """Where the array element beginning at ``start`` ends: (offset, byte) of the ``,`` or
    ``]`` after it, or ``(len(buf), -1)`` when the buffer ends first, or ``(-1, -1)`` when
    no end lies within ``limit`` bytes. Strings and brackets are tracked; a closer with
    nothing open (a stray ``}``, or a ``]`` followed by a comma) belongs to the element,
    which is then broken, rather than closing the array."""
    depth = 0
    for m in _ARRAY_TOKEN.finditer(buf, start):
        at = m.start()
        if limit is not None and at - start > limit:
            return -1, -1
        c = buf[at]
        if c == 0x22:  # a string
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            if depth:
                depth -= 1
            elif c == _CLOSE_ARRAY:
                after = _NON_SPACE.search(buf, at + 1)
                if after is None or buf[after.start()] != _COMMA:
                    return at, c
        elif not depth:
            return at, c
    return len(buf), -1


def _broken(body: bytes) -> int | None:
    """None when ``body`` is one JSON value (possibly with recoverable problems such as a
    duplicate key); otherwise the byte offset in ``body`` after which the element that
    follows a syntax error may begin."""
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


def _resync(buf: bytes | mmap.mmap, start: int, stop: int, max_record_bytes: int) -> tuple[int, int] | None:
    """For the element ``buf[start:stop]``: when it does not parse, (the comma ending it,
    the start of the element after it); None when it parses or no later element begins
    within it.

    A broken element (an unclosed bracket, an odd quote) makes the bracket-and-string
    scan run past the elements that follow it; the next element begins after the
    syntax error, at a comma and an object. Where the broken element starts a line, the
    next one is the first object starting a line at the same or a smaller indentation
    (what is nested inside an element is indented deeper or on its own line). In a
    minified array it is the first such object that parses.
    """
    chunk = buf[start:stop]
    body = chunk.strip()
    at = start + len(chunk) - len(chunk.lstrip())
    error = _broken(body)
    if error is None:
        return None
    line_start = buf.rfind(b"\n", 0, at) + 1
    prefix = buf[line_start:at]
    by_line = prefix.strip() in (b"", b"[")
    pattern = _LINE_CANDIDATE if by_line else _ANY_CANDIDATE
    # The error may be reported at the next element itself (an unclosed object goes on to
    # it), so look from the last comma before the error.
    begin_search = max(at + 1, buf.rfind(b",", at, at + error + 1))
    for m in pattern.finditer(buf, begin_search, stop):
        begin = m.end() - 1
        if by_line:
            # Nested values sit deeper or on the same line: the first object starting a
            # line at the element's indentation is the next element, even a broken one.
            if len(m.group(1)) <= len(prefix):
                return m.start(), begin
            continue
        end, ender = _element_end(buf, begin, max_record_bytes)
        if ender in (_COMMA, _CLOSE_ARRAY) and _broken(buf[begin:end].strip()) is None:
            return m.start(), begin
    return None


def stream_items(
    buf: bytes | mmap.mmap,
    stats: ReadStats,
    source: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_record_bytes: int = DEFAULT_MAX_LINE_BYTES,
    parse: str = "strict",
) -> Iterator[Record | FileProblem]:
    """Records of a ``.json`` file holding one object, or several written one after another
    and spread over many lines (a pretty-printed export). As in an array, a malformed
    object costs that object only (see :func:`_resync_stream`)."""
    stats.container = "json-stream"
    yield from _prologue(buf, stats)
    elements = _Elements(buf, source, max_depth, max_record_bytes, parse)
    size = len(buf)
    depth = 0
    start = end = 3 if buf[:3] == BOM else 0
    pos: int | None = start
    while pos is not None:
        resume: int | None = None
        for m in _ARRAY_TOKEN.finditer(buf, pos):
            c = buf[m.start()]
            if depth == 0:
                gap = buf[end : m.start()]
                if gap.strip():
                    yield elements.problem(end + len(gap) - len(gap.lstrip()), "unexpected data between records")
                start = m.start()
                if c == 0x22:
                    yield elements.record(start, m.end())  # type: ignore[misc]
                    end = m.end()
                    continue
            if c in _OPEN:
                depth += 1
            elif c in _CLOSE:
                depth -= 1
                if depth == 0:
                    resume = _cut_stream(buf, start, m.end())
                    if resume is not None:
                        break
                    yield elements.record(start, m.end())  # type: ignore[misc]
                    end = m.end()
                elif depth < 0:
                    yield elements.problem(m.start(), f"unexpected {chr(c)!r}")
                    depth = 0
                    end = m.end()
        if resume is None and depth > 0:
            resume = _cut_stream(buf, start, size)
        if resume is not None:
            yield elements.record(start, resume)  # type: ignore[misc]
            depth = 0
            pos = end = resume
            continue
        pos = None
    if depth > 0:
        rec = elements.record(start, size)
        if rec is not None:
            yield rec
    elif buf[end:size].strip():
        rest = buf[end:size]
        yield elements.problem(end + len(rest) - len(rest.lstrip()), "unexpected data after the last record")
    _finish(buf, stats, elements)


# An object starting a line: where the next record of a stream may begin.
_STREAM_CANDIDATE = re.compile(rb"\n([ \t]*)\{")


def _cut_stream(buf: bytes | mmap.mmap, start: int, stop: int) -> int | None:
    """For the record ``buf[start:stop]`` of a stream: None when it parses; otherwise where
    the next record begins: the first later object starting a line at the record's own
    indentation or less (an unclosed bracket or an odd quote makes the scan run past the
    records after it). Never cuts a record that parses."""
    error = _broken(buf[start:stop])
    if error is None:
        return None
    line_start = buf.rfind(b"\n", 0, start) + 1
    prefix = buf[line_start:start]
    if prefix.strip():
        return None
    # From the line of the error: the next record may begin on it (after an unclosed one).
    for m in _STREAM_CANDIDATE.finditer(buf, max(start + 1, buf.rfind(b"\n", start, start + error + 1)), stop):
        if len(m.group(1)) <= len(prefix):
            return m.start() + 1
    return None


def _invalid_json_record(index: int, source: str, line: int, column: int, offset: int, message: str) -> Record:
    rec = Record(index, None, source=source, line=line, column=column, raw=b"", offset=offset)
    rec.problems.append((Kind.INVALID_JSON, (), message, 0))
    return rec


def _count(buf: bytes | mmap.mmap, needle: bytes, size: int) -> int:
    count = 0
    step = 1 << 24
    for begin in range(0, size, step):
        count += buf[begin : min(size, begin + step + len(needle) - 1)].count(needle)
    return count


def read(
    path: Path,
    stats: ReadStats,
    *,
    source: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    parse: str = "strict",
) -> Iterator[Record | FileProblem]:
    """Records and file problems of a JSONL or JSON-array file. ``parse`` is ``strict``
    (the linter's), ``fast`` (orjson only) or ``none`` (raw bytes only)."""
    name = source or str(path)
    container = container_of(path)
    if container != "jsonl":
        return read_json_document(
            path,
            stats,
            source=name,
            container=container,
            max_depth=max_depth,
            max_line_bytes=max_line_bytes,
            parse=parse,
        )
    return read_jsonl(path, stats, source=name, max_line_bytes=max_line_bytes, max_depth=max_depth, parse=parse)


def iter_data_files(paths: list[Path]) -> Iterator[Path]:
    """Files to lint: the given files, and data files found under given directories."""
    for p in paths:
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if child.is_file() and child.suffix.lower() in DATA_SUFFIXES and not _hidden(child, p):
                    yield child
        else:
            yield p


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file in the same folder, fsync it, then
    ``os.replace`` it into place; on error the temporary file goes and ``path`` is untouched.
    An existing file's permissions are kept."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        except FileNotFoundError:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent or ".", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
