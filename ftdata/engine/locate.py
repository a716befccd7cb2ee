"""Stamping: an Issue of one record becomes a Finding with its code, severity, line and
column. Paths into the record are located in its raw text by the strict parser."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import orjson

from ftdata import jsonstrict
from ftdata.findings import Finding, Issue, PathT, Severity
from ftdata.jsonlocate import locate_parsed
from ftdata.records import Record

#: What a record's checks leave for stamping: the rule's code, its severity, the issue.
Pending = tuple[str, Severity, Issue]


def fingerprint(rec: Record) -> str:
    """A short hash of the record's bytes (or canonical JSON in memory), for baselines."""
    if rec.raw is not None:
        payload = rec.raw.strip()
    elif rec.data is not None:
        data = rec.original if rec.original is not None else rec.data  # as given, not as mapped
        try:
            payload = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            payload = repr(rec.data).encode("utf-8", "backslashreplace")
    else:
        payload = b""
    return hashlib.sha256(payload).hexdigest()[:16]


def stamp(rec: Record, pending: Sequence[Pending]) -> Iterator[Finding]:
    """The Findings of one record's issues, each at the line and column of its path (or
    of the reader's character offset), else at the record's start. A record read through
    a field mapping has its paths translated back to the keys as written, so a finding on
    ``prompt`` points at (and names) the file's ``question``."""
    text = None
    spans: dict[PathT, jsonstrict.Span] = {}
    fields = rec.fields
    paths = [fields.source_path(i.path) if fields is not None else i.path for _, _, i in pending]
    if rec.raw is not None and rec.line is not None:
        wanted = {
            path[:n]
            for (_, _, i), path in zip(pending, paths, strict=True)
            if i.offset is None and path
            for n in range(1, len(path) + 1)
        }
        if wanted:
            text = rec.raw.decode("utf-8", "replace")
            # A record that parsed holds valid JSON (or the strict parser's recoverable
            # defects), which the tokenizer reads far faster than the strict parser.
            find = locate_parsed if type(rec.data) is dict else jsonstrict.locate
            spans = find(text, wanted)
    digest = fingerprint(rec)
    for (code, sev, issue), path in zip(pending, paths, strict=True):
        line = rec.line
        column = rec.column if line is not None else None
        if line is not None and rec.raw is not None:
            at = issue.offset
            if at is None and path:
                for n in range(len(path), 0, -1):
                    span = spans.get(path[:n])
                    if span is not None:
                        at = span[0] if issue.key and n == len(path) and span[0] is not None else span[1]
                        break
            if at is not None:
                if text is None:
                    text = rec.raw.decode("utf-8", "replace")
                dl, dc = jsonstrict.line_col(text, at)
                line = (line or 1) + dl
                column = rec.column + dc if dl == 0 else dc + 1
        index = rec.index if issue.index is None else issue.index
        yield Finding(
            code,
            sev,
            issue.message,
            rec.source,
            line,
            column,
            index,
            path,
            issue.related,
            digest,
            score=issue.score,
            other=issue.other,
        )


def at_record_start(code: str, sev: Severity, issue: Issue, source: str, line: int | None) -> Finding:
    """A Finding for an issue whose record could not be read again: at its line, column 1."""
    column = 1 if line is not None else None
    return Finding(
        code,
        sev,
        issue.message,
        source,
        line,
        column,
        issue.index,
        issue.path,
        issue.related,
        score=issue.score,
        other=issue.other,
    )
