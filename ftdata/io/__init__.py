"""Reading data files line-aware, and writing files atomically.

Reading never raises on bad data: every problem becomes a (kind, path, message, offset)
on the record it belongs to, or a :class:`FileProblem` for the file, where the kind is a
:class:`ftdata.problems.Problem` (whose value is the name of the rule that reports it).

- :mod:`~ftdata.io.parse`: one record's bytes to a value (orjson, then the strict parser).
- :mod:`~ftdata.io.jsonl`: JSON Lines, whole files or the byte range of a shard.
- :mod:`~ftdata.io.documents`: ``.json`` arrays and streams of objects, memory-mapped.
- :mod:`~ftdata.io.read`: ``read(path, stats)``, whichever container a file is;
  ``records_at(items, wanted)`` picks the records at some indices and reads no further.
- :mod:`~ftdata.io.files`: ``FileProblem``, ``ReadStats``, which files are data files.
- :mod:`~ftdata.io.write`: ``atomic_write``.
"""

from __future__ import annotations

from ftdata.io.documents import array_items, read_json_document, stream_items
from ftdata.io.files import (
    BOM,
    DATA_SUFFIXES,
    JSONL_SUFFIXES,
    PROBLEM_KINDS,
    FileProblem,
    ReadStats,
    iter_data_files,
)
from ftdata.io.jsonl import read_jsonl
from ftdata.io.parse import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_LINE_BYTES,
    PARSERS,
    json_kind,
    parse_record,
    parse_record_fast,
)
from ftdata.io.read import container_of, read, records_at
from ftdata.io.write import atomic_write

__all__ = [
    "BOM",
    "DATA_SUFFIXES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_LINE_BYTES",
    "JSONL_SUFFIXES",
    "PARSERS",
    "PROBLEM_KINDS",
    "FileProblem",
    "ReadStats",
    "array_items",
    "atomic_write",
    "container_of",
    "iter_data_files",
    "json_kind",
    "parse_record",
    "parse_record_fast",
    "read",
    "read_json_document",
    "read_jsonl",
    "records_at",
    "stream_items",
]
