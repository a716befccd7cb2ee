"""``ftdata split`` on an executor (a Ray cluster): the records are read, normalised and
keyed by tasks over the newline-aligned blocks of the file; the driver joins the blocks'
columns in block order and places the records with the local split's own
:func:`~ftdata.curation.split.assign`, so the split files and manifest are those of a
local run, byte for byte, whatever the number of blocks or workers.

What crosses the cluster is what a local split keeps of each record (line, stratum
value, an 8-byte content hash, one key per record-keyed grouping and, for near or
semantic duplicate groupings, the compared text); the grouping, the MinHash or
embedding comparison and the placement run on the driver, as locally.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ftdata import io
from ftdata.curation.grouping import Key, SplitColumns, collect_columns
from ftdata.distributed.dedup import file_blocks
from ftdata.distributed.job import Block, check_stamp, stamp_of
from ftdata.executors import Executor
from ftdata.formats import normalise
from ftdata.outputs import Fingerprint
from ftdata.records import Record


@dataclass(frozen=True)
class Reading:
    """What each block task is told (sent to the object store once)."""

    path: str
    format: str | None
    #: The groupings, precomputed labels left out (they are joined on the driver).
    groupings: tuple[Any, ...]
    stratum: Key | None
    seed: int
    scope: str


def read_block(block: Block, reading: Reading) -> tuple[SplitColumns, int]:
    """The split columns of ``block`` (indices inside the block) and how many lines it
    read. Raises InputChangedError when the file is no longer the one the run started
    on, before or after reading."""
    path = Path(reading.path)
    check_stamp(path, block.stamp)
    stats = io.ReadStats()
    columns = collect_columns(
        _block_records(path, block, reading, stats),
        groupings=reading.groupings,
        stratum=reading.stratum,
        seed=reading.seed,
        scope=reading.scope,
    )
    check_stamp(path, block.stamp)
    return columns, stats.lines


def _block_records(path: Path, block: Block, reading: Reading, stats: io.ReadStats) -> Iterator[Record]:
    if io.container_of(path) == "jsonl":
        items = io.read_jsonl(path, stats, source=str(path), start=block.start, end=block.end, parse="fast")
    else:
        items = io.read(path, stats, parse="fast")
    for item in items:
        if isinstance(item, Record):
            if type(item.data) is dict:
                normalise(item, reading.format)
            yield item


def split_columns(
    source: str | os.PathLike[str],
    *,
    executor: Executor,
    groupings: Sequence[Any],
    stratum: Key | None,
    seed: int,
    scope: str,
    format: str | None = None,
    blocks: int | None = None,
) -> tuple[SplitColumns, Fingerprint]:
    """The columns :func:`~ftdata.curation.split.assign` places, of the whole file
    ``source``, read by ``executor`` over ``blocks`` byte ranges (default: the executor's
    ``parts``, else 4; a JSON array is one block), and the input's fingerprint taken
    before any block was read (the writer checks it again before committing)."""
    path = Path(source)
    fingerprint = Fingerprint.of(path)
    stamp = stamp_of(path)
    parts = blocks or getattr(executor, "parts", None) or 4
    cuts = [Block(b.number, b.start, b.end, stamp=stamp) for b in file_blocks(path, fingerprint.size, parts)]
    reading = Reading(
        str(path.absolute()), format, tuple(() if isinstance(g, list) else g for g in groupings), stratum, seed, scope
    )
    found = list(executor.map(partial(read_block, reading=reading), cuts))
    check_stamp(path, stamp)
    return SplitColumns.joined(found), fingerprint


def on_cluster(
    source: str | os.PathLike[str],
    *,
    engine: str = "ray",
    address: str | None = None,
    blocks: int | None = None,
    **options: Any,
) -> tuple[SplitColumns, Fingerprint]:
    """:func:`split_columns` on the Ray cluster at ``address`` (``auto``,
    ``ray://HOST:PORT``; None: the one this process joined, else a new local one)."""
    from ftdata.executors import for_engine

    executor = for_engine(engine, address=address)
    if executor is None:
        raise ValueError(f"engine {engine!r} runs no cluster")
    return split_columns(source, executor=executor, blocks=blocks, **options)
