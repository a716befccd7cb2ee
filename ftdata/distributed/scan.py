"""Stage one: read each block where it lies and write what the later stages compare.

Every record of a block is read and normalised as ``ftdata dedup`` reads it; the block
writes, under ``scan/``: the rows of the records it compares (index and line inside the
block, the length ``keep="longest"`` weighs, and for MinHash the shingle set, and over the
whole conversation the shingle set of the replies too), the records
it could not read with the rule that explains why, and its comparison keys split into
``partitions`` files by key (exact: the FT401 key; MinHash: one row per band key), which
the next stage groups. ``b<k>.json`` (the record and line counts) is written last: a block
that has it is finished.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ftdata import io
from ftdata.distributed.job import Block, Job, check_stamp
from ftdata.distributed.workdir import write_atomic, write_table
from ftdata.formats import normalise
from ftdata.records import Record

#: Texts shingled and signed at once inside a block.
BATCH = 2048


def meta_path(job: Job, number: int) -> Path:
    return job.scan_dir / f"b{number}.json"


def _records(job: Job, block: Block, stats: io.ReadStats) -> Iterator[Record]:
    path = Path(block.path or job.path)
    if io.container_of(path) == "jsonl":
        items = io.read_jsonl(path, stats, source=str(path), start=block.start, end=block.end)
    else:
        items = io.read(path, stats)
    for item in items:
        if type(item) is Record:
            if type(item.data) is dict:
                normalise(item, job.format)
            yield item


def scan_block(block: Block, job: Job) -> dict[str, int]:
    """Read block ``block`` of the input and write its rows, unreadable records and
    partitioned keys; returns (and records in ``b<k>.json``) its record and line counts.
    A block finished by an earlier run is not read again."""
    done = meta_path(job, block.number)
    if done.exists():
        return orjson.loads(done.read_bytes())
    from ftdata.curation.dedup import why_unreadable
    from ftdata.similarity.minhash import reply_bytes
    from ftdata.similarity.text import scope_text

    source = Path(block.path or job.path)
    check_stamp(source, block.stamp)
    key_of = None
    if job.method == "exact":
        from ftdata import registry

        collect = registry.get(job.key_rule).collect
        assert collect is not None
        options = dict(job.key_options) or {"casefold": job.casefold, "scope": job.scope}
        key_of = partial(collect, **options)
    rows: dict[str, list[Any]] = {"index": [], "line": [], "length": [], "key": []}
    texts: list[str] = []
    replies: list[bytes] | None = [] if job.replies else None
    unread: dict[str, list[Any]] = {"index": [], "line": [], "rule": [], "detail": []}
    records = 0
    stats = io.ReadStats()
    for rec in _records(job, block, stats):
        records += 1
        if not rec.readable:
            rule, detail = why_unreadable(rec)
            for name, value in zip(unread, (rec.index, rec.line, rule, detail), strict=True):
                unread[name].append(value)
            continue
        if key_of is not None:
            key = key_of(rec)
            if key is None:
                continue
            length = len(scope_text(rec, job.scope, casefold=job.casefold, roles=True)) if job.keep != "first" else 0
            rows["key"].append(key)
        else:
            text = scope_text(rec, job.scope, casefold=True)
            if not text.strip():  # an empty text would match every other
                continue
            texts.append(text)
            if replies is not None:
                replies.append(reply_bytes(rec))
            length = len(text)
        rows["index"].append(rec.index)
        rows["line"].append(rec.line)
        rows["length"].append(length)
    # A block read while the file changed must not be marked done, nor resumed from.
    check_stamp(source, block.stamp)
    folder = job.scan_dir
    index = np.asarray(rows["index"], dtype=np.int64)
    table: dict[str, Any] = {
        "index": index,
        "line": np.asarray([-1 if x is None else x for x in rows["line"]], dtype=np.int64),
        "length": np.asarray(rows["length"], dtype=np.int64),
    }
    if key_of is not None:
        keys = np.asarray(rows["key"], dtype=np.uint64)
        _partitioned(job, block, "keys", {"key": keys, "index": index}, keys)
    else:
        shingles, band_rows = _minhash(job, texts, index)
        table["shingles"] = shingles
        if replies is not None:
            table["replies"] = _reply_column(job, replies)
        _partitioned(job, block, "bands", band_rows, band_rows["key"])
    write_table(folder / f"b{block.number}.rows.parquet", table)
    write_table(folder / f"b{block.number}.unreadable.parquet", _unread_columns(unread))
    meta = {"records": records, "lines": stats.lines}
    write_atomic(done, orjson.dumps(meta))
    return meta


def _unread_columns(unread: dict[str, list[Any]]) -> dict[str, Any]:
    import pyarrow as pa

    return {
        "index": pa.array(unread["index"], type=pa.int64()),
        "line": pa.array(unread["line"], type=pa.int64()),
        "rule": pa.array(unread["rule"], type=pa.string()),
        "detail": pa.array(unread["detail"], type=pa.string()),
    }


def _reply_column(job: Job, texts: list[bytes]) -> Any:
    """The reply shingle sets of the rows (a list column, each set sorted; null for a
    record without a reply), as FT404 shingles them."""
    import pyarrow as pa

    from ftdata.similarity.minhash import reply_shingles

    sets = reply_shingles(texts, shingle=job.shingle, n=job.n)
    sizes = np.asarray([0 if s is None else s.size for s in sets], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int32)
    present = [s for s in sets if s is not None]
    values = np.concatenate(present) if present else np.zeros(0, dtype=np.uint32)
    missing = pa.array(np.asarray([s is None for s in sets], dtype=bool))
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.astype(np.uint32)), mask=missing)


def _partitioned(job: Job, block: Block, kind: str, columns: dict[str, np.ndarray], keys: np.ndarray) -> None:
    """Write ``columns`` split into ``job.partitions`` files by ``keys``, so that equal
    keys of every block meet in one partition."""
    part = (keys % np.uint64(job.partitions)).astype(np.int64)
    for p in range(job.partitions):
        mask = part == p
        chosen = {name: values[mask] for name, values in columns.items()}
        chosen["block"] = np.full(int(mask.sum()), block.number, dtype=np.int32)
        write_table(job.scan_dir / f"b{block.number}.p{p}.{kind}.parquet", chosen)


def _minhash(job: Job, texts: list[str], index: np.ndarray) -> tuple[Any, dict[str, np.ndarray]]:
    """The shingle sets of ``texts`` (a list column, each set sorted) and one row per
    band key of their signatures (band, key, index), keyed as ``candidate_pairs`` keys
    its buckets."""
    import pyarrow as pa

    from ftdata.similarity.minhash import band_keys, shingle_sets, signatures

    sets, lengths, bands, keys, owners = [], [0], [], [], []
    for k in range(0, len(texts), BATCH):
        batch = shingle_sets(texts[k : k + BATCH], kind=job.shingle, n=job.n)
        sig = signatures(batch, num_perm=job.num_perm, seed=job.seed)
        for t in range(len(batch)):
            unique = batch.unique(t)
            sets.append(unique)
            lengths.append(unique.size)
        valid = np.flatnonzero(sig[:, 0] != 0xFFFFFFFF)
        for band in range(job.bands):
            keys.append(band_keys(sig, band, job.rows, valid))
            bands.append(np.full(valid.size, band, dtype=np.int32))
            owners.append(index[valid + k])
    offsets = np.cumsum(np.asarray(lengths, dtype=np.int64)).astype(np.int32)
    values = np.concatenate(sets) if sets else np.zeros(0, dtype=np.uint32)
    shingles = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.astype(np.uint32)))
    band_rows = {
        "band": np.concatenate(bands) if bands else np.zeros(0, dtype=np.int32),
        "key": np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64),
        "index": np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64),
    }
    return shingles, band_rows
