"""The JSON Lines reader: one record a line, or a byte range of lines for a shard."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO, Any

from ftdata.io.files import BOM, FileProblem, ReadStats
from ftdata.io.parse import DEFAULT_MAX_DEPTH, DEFAULT_MAX_LINE_BYTES, PARSERS
from ftdata.problems import Problem as Kind
from ftdata.records import Record


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
    wanted: Collection[int] | None = None,
) -> Iterator[Record | FileProblem]:
    """Records of a JSON Lines file (or of the byte range ``[start, end)``, which must
    begin at a line start). Line numbers and indices count from the range's start. With
    ``wanted``, only the records at those indices are parsed and yielded (the others are
    counted, not parsed: a look-up of a few records costs a read, not a parse)."""
    parse_one = PARSERS[parse]
    if wanted is not None and start == 0 and end is None:
        yield from _read_wanted(path, stats, source, max_line_bytes, max_depth, parse_one, wanted)
        return
    last_wanted = max(wanted, default=-1) if wanted is not None else None
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
            if last_wanted is not None and index not in wanted:  # type: ignore[operator]
                if index > last_wanted:
                    break
                if size == limit and not line.endswith(b"\n"):
                    size += _skip_line(f)
                elif not (line[3:] if offset == 0 and line.startswith(BOM) else line).strip():
                    offset += size  # a blank line is no record
                    continue
                index += 1
                offset += size
                continue
            if size == limit and not line.endswith(b"\n"):
                size += _skip_line(f)
                rec = _too_long(index, source, lineno, offset, size, max_line_bytes)
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
                rec.problems.extend(_array_hint(problems, body) if lineno == 1 and data is None else problems)
            index += 1
            offset += size
            yield rec
        if last_wanted is not None:
            return  # a look-up: the counts of a partial read mean nothing
        stats.lines = lineno
        stats.records = index
        at_eof = offset >= file_size
        stats.missing_final_newline = at_eof and bool(last) and not last.endswith(b"\n")


def _read_wanted(
    path: Path,
    stats: ReadStats,
    source: str,
    max_line_bytes: int,
    max_depth: int,
    parse_one: Any,
    wanted: Collection[int],
) -> Iterator[Record | FileProblem]:
    """:func:`read_jsonl` of a whole file with ``wanted``: the same items, from blocks
    read at once, so that the lines before and between the wanted records cost a search
    for their newline rather than a read each."""
    last_wanted = max(wanted, default=-1)
    limit = max_line_bytes + 1
    index = lineno = 0
    base = 0  # the offset in the file of data[0]
    with open(path, "rb") as f:
        data = f.read(max(BLOCK_BYTES, len(BOM)))
        while data:
            pos = 0
            find = data.find
            while True:
                nl = find(b"\n", pos)
                if nl < 0:
                    break
                lineno += 1
                if index in wanted:
                    yield from _wanted_line(data, pos, nl, True, base + pos, nl - pos + 1, lineno, index, stats,
                                            source, limit, max_depth, parse_one)  # fmt: skip
                    index += _is_record(data, pos, nl, base + pos, limit)
                elif index > last_wanted:
                    return
                else:
                    index += _is_record(data, pos, nl, base + pos, limit)
                pos = nl + 1
            rest = data[pos:]
            if len(rest) >= limit:  # a line over the limit, read no further than its newline
                lineno += 1
                size, after = _after_line_size(f)
                if index in wanted:
                    yield _too_long(index, source, lineno, base + pos, len(rest) + size, max_line_bytes)
                elif index > last_wanted:
                    return
                index += 1
                base += len(data) + size
                data = after if after else f.read(BLOCK_BYTES)
                continue
            more = f.read(BLOCK_BYTES)
            if not more:
                if rest:  # the last line, without a newline
                    lineno += 1
                    if index in wanted:
                        yield from _wanted_line(data, pos, len(data), False, base + pos, len(rest), lineno, index,
                                                stats, source, limit, max_depth, parse_one)  # fmt: skip
                return
            base += pos
            data = rest + more


def _is_record(data: bytes, line: int, nl: int, offset: int, limit: int) -> int:
    """1 when the line ``data[line:nl]`` holds a record (a line too long does), else 0."""
    if nl - line >= limit:
        return 1
    start = line + len(BOM) if offset == 0 and data.startswith(BOM, line) else line
    return 0 if start == nl or data[start:nl].isspace() else 1


def _array_hint(problems: list[Any], body: bytes) -> list[Any]:
    """The first line's parse problems, with a hint when the file is a JSON array."""
    if not body.lstrip().startswith(b"["):
        return problems
    hint = " (the file looks like a JSON array: name it .json)"
    return [(k, p, m + hint if k is Kind.INVALID_JSON else m, o) for k, p, m, o in problems]


def _too_long(index: int, source: str, lineno: int, offset: int, size: int, max_line_bytes: int) -> Record:
    rec = Record(index, None, source=source, line=lineno, offset=offset)
    rec.problems.append(
        (Kind.LINE_TOO_LONG, (), f"line of {size:,} bytes exceeds the limit of {max_line_bytes:,} bytes", 0)
    )
    return rec


def _wanted_line(
    data: bytes,
    line: int,
    nl: int,
    ended: bool,
    offset: int,
    size: int,
    lineno: int,
    index: int,
    stats: ReadStats,
    source: str,
    limit: int,
    max_depth: int,
    parse_one: Any,
) -> Iterator[Record | FileProblem]:
    """The items of the line ``data[line:nl]`` at ``offset`` in the file, which holds the
    wanted record ``index`` if any, as :func:`read_jsonl` reads them."""
    if nl - line >= limit:
        yield _too_long(index, source, lineno, offset, size, limit - 1)
        return
    body = data[line:nl]
    if ended and body.endswith(b"\r"):
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
        return
    value, problems = parse_one(body, max_depth=max_depth)
    rec = Record(index, value, source=source, line=lineno, raw=body, offset=body_offset)
    if problems:
        rec.problems.extend(_array_hint(problems, body) if lineno == 1 and value is None else problems)
    yield rec


def _after_line_size(f: IO[bytes]) -> tuple[int, bytes]:
    """Skip the rest of the current line: the bytes skipped (its newline included) and
    what follows it in the block read last."""
    skipped = 0
    while True:
        chunk = f.read(BLOCK_BYTES)
        if not chunk:
            return skipped, b""
        nl = chunk.find(b"\n")
        if nl != -1:
            return skipped + nl + 1, chunk[nl + 1 :]
        skipped += len(chunk)


def _skip_line(f: IO[bytes]) -> int:
    skipped = 0
    while True:
        chunk = f.readline(1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


#: Bytes read at once by :func:`record_blocks`.
BLOCK_BYTES = 1 << 20
_SPACE = frozenset(b" \t\n\r\x0b\x0c")


def record_blocks(
    path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, block_bytes: int = BLOCK_BYTES
) -> Iterator[tuple[bytes, list[int], list[int]]]:
    """The raw bytes of the records of a JSON Lines file, a block of lines at a time and
    unparsed, counted as :func:`read_jsonl` counts them: ``(data, starts, ends)``, where
    record ``k`` of the block is ``data[starts[k]:ends[k]]``, the bytes ``read_jsonl``
    keeps as ``Record.raw`` (without the newline, a CR before it or a leading byte order
    mark). Blank lines are no records; a line over ``max_line_bytes`` is one, with no
    bytes (an empty span). Consecutive records of a block whose spans are one newline
    apart are consecutive lines of the file, nothing between them."""
    limit = max_line_bytes + 1
    with open(path, "rb") as f:
        data = f.read(max(block_bytes, len(BOM)))
        first = len(BOM) if data.startswith(BOM) else 0  # the mark is no part of the first record
        while data:
            starts: list[int] = []
            ends: list[int] = []
            pos = 0
            find = data.find
            while True:
                nl = find(b"\n", pos)
                if nl < 0:
                    break
                _add_line(data, pos + first, pos, nl, True, limit, starts, ends)
                first = 0
                pos = nl + 1
            rest = data[pos:]
            if len(rest) >= limit:  # a line longer than the limit: one record, no bytes
                if starts:
                    yield data, starts, ends
                    starts, ends = [], []
                rest = _after_line(f, block_bytes)
                yield b"", [0], [0]
                first = 0
                data = rest if rest else f.read(block_bytes)
                continue
            more = f.read(block_bytes)
            if not more:
                if rest:  # the last line, without a newline
                    _add_line(data, pos + first, pos, len(data), False, limit, starts, ends)
                if starts:
                    yield data, starts, ends
                return
            if starts:
                yield data, starts, ends
            data = rest + more


def _add_line(
    data: bytes, start: int, line: int, nl: int, ended: bool, limit: int, starts: list[int], ends: list[int]
) -> None:
    """Add the record of the line ``data[line:nl]`` (its body from ``start``), if any."""
    if nl - line >= limit:  # read_jsonl's readline(limit) stops short of its newline
        starts.append(start)
        ends.append(start)
        return
    end = nl - 1 if ended and nl > start and data[nl - 1] == 13 else nl
    if start == end or (data[start] in _SPACE and data[start:end].isspace()):
        return  # a blank line
    starts.append(start)
    ends.append(end)


def _after_line(f: IO[bytes], block_bytes: int) -> bytes:
    """Skip the rest of the current line; what follows it in the block read last."""
    while True:
        chunk = f.read(block_bytes)
        if not chunk:
            return b""
        nl = chunk.find(b"\n")
        if nl != -1:
            return chunk[nl + 1 :]
