"""The front door of reading: which container a file is, and its records in order."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

import orjson

from ftdata.io.documents import balanced, read_json_document
from ftdata.io.files import BOM, FileProblem, ReadStats
from ftdata.io.jsonl import read_jsonl
from ftdata.io.parse import DEFAULT_MAX_DEPTH, DEFAULT_MAX_LINE_BYTES
from ftdata.records import Record


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
        return "jsonl" if balanced(first) else "json-stream"
    return "jsonl"


def read(
    path: Path,
    stats: ReadStats,
    *,
    source: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    parse: str = "strict",
    wanted: Collection[int] | None = None,
) -> Iterator[Record | FileProblem]:
    """Records and file problems of a JSONL or JSON-array file. ``parse`` is ``strict``
    (the linter's), ``fast`` (orjson only) or ``none`` (raw bytes only). ``wanted`` says
    which records the caller will look at: a JSON Lines read then parses and yields only
    those (see :func:`read_jsonl`); other containers are read whole."""
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
    return read_jsonl(
        path, stats, source=name, max_line_bytes=max_line_bytes, max_depth=max_depth, parse=parse, wanted=wanted
    )


def records_at(items: Iterable[Record | FileProblem], wanted: Iterable[int]) -> dict[int, Record]:
    """The records of ``items`` (a :func:`read`) at the ``wanted`` indices, by index;
    reading stops at the last one, and nothing is read when none is wanted."""
    wanted = set(wanted)
    found: dict[int, Record] = {}
    if not wanted:
        return found
    last = max(wanted)
    for item in items:
        if type(item) is Record:
            if item.index in wanted:
                found[item.index] = item
            if item.index >= last:
                break
    return found
