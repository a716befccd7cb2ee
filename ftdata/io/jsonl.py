"""The JSON Lines reader: one record a line, or a byte range of lines for a shard."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO

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
        if last_wanted is not None:
            return  # a look-up: the counts of a partial read mean nothing
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
