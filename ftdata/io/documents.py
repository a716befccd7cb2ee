"""Readers of ``.json`` documents: an array of records, or a stream of objects written one
after another; a malformed element costs that element only."""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ftdata.io.files import BOM, FileProblem, ReadStats
from ftdata.io.parse import DEFAULT_MAX_DEPTH, DEFAULT_MAX_LINE_BYTES, PARSERS, broken_at
from ftdata.problems import Problem as Kind
from ftdata.records import Record

# Strings, brackets and commas: enough to find value boundaries without parsing.
_ARRAY_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


def balanced(line: bytes) -> bool:
    """Whether ``line`` closes every bracket it opens (strings skipped)."""
    depth = 0
    for m in _ARRAY_TOKEN.finditer(line):
        c = line[m.start()]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
    return depth == 0


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
    error = broken_at(body)
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
        if ender in (_COMMA, _CLOSE_ARRAY) and broken_at(buf[begin:end].strip()) is None:
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
    object costs that object only (see :func:`_cut_stream`)."""
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
    error = broken_at(buf[start:stop])
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
