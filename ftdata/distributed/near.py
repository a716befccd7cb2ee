"""FT404 (near duplicates) of a lint on an executor (a Ray cluster): the issues of the local
rule, issue for issue, without the shingle sets of every record on the driver.

The stages of a MinHash ``ftdata dedup`` (:mod:`ftdata.distributed.minhash`), their files
under ``FT404/`` in the lint's work directory:

- *scan*, inside the lint's shard scan (:func:`write_rows`): each block's FT404 values as
  the rule's collector gives them (shingle set, text length, and the signature its
  ``finish`` computed where the block is read) become the block's rows (index, length,
  shingles) and one row per band key, split into partitions by key so that equal band
  keys of every block meet;
- *buckets*, one task per partition (:func:`bucket`, run as ``judge_partition`` of
  FT404): the candidate pairs of each bucket, as the local rule forms them;
- *verify*, one task per block (:func:`verify`): the exact Jaccard similarity of the
  block's candidate pairs, from the rows of the blocks that hold the records, then, over
  the whole conversation, the reply check on the records of the verified pairs, read
  again from their blocks as the local rule reads them again;
- the driver joins the verified edges (a few) into connected components, as dedup does,
  one task per block reads the lines of the records kept, and the issues are made by the
  local rule's own function.

Options the local rule refuses or fails on (an unknown ``scope``, ``shingle`` or ``keep``,
``n`` out of range, more ``bands`` than ``num_perm``) are not staged: FT404 then runs on the
driver and fails as it does locally. A resumed lint (a work directory) reads back the
scanned blocks with the other staged rules' rows, and skips the partitions bucketed and the
blocks verified before it stopped: the lint's folder is named by the stamp of the input
and the plan (FT404's options with it), so that no other run's files are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ftdata.distributed.dedup import components
from ftdata.distributed.job import Job
from ftdata.distributed.minhash import bucket_partition, buckets_dir, verify_block, verify_path
from ftdata.distributed.workdir import write_table
from ftdata.findings import Issue

if TYPE_CHECKING:
    from ftdata.distributed.conflicts import ConflictJob, ConflictStage
    from ftdata.engine.dataset import Column
    from ftdata.engine.plan import Plan

#: The rule this stage runs.
NEAR = "FT404"


def layout(options: Mapping[str, Any]) -> tuple[int, int]:
    """The (bands, rows) of FT404 with ``options``, as the local rule picks them."""
    from ftdata.similarity.minhash import choose_bands

    num_perm, bands = int(options["num_perm"]), int(options["bands"] or 0)
    if not bands:
        return choose_bands(num_perm, float(options["threshold"]))
    return bands, max(1, num_perm // bands)


def staged(options: Mapping[str, Any]) -> bool:
    """Whether FT404 with ``options`` runs as this stage: not when the local rule refuses
    them or fails on them (it then runs on the driver, and fails as locally)."""
    from ftdata.similarity.clusters import KEEP_POLICIES
    from ftdata.similarity.shingles import record_shingles
    from ftdata.similarity.text import SCOPES

    try:
        record_shingles("", kind=str(options["shingle"]), n=int(options["n"]))
        bands, rows = layout(options)
        fits = 0 < float(options["threshold"]) <= 1 and 0 < bands * rows <= int(options["num_perm"])
    except (KeyError, TypeError, ValueError):
        return False
    return fits and options["scope"] in SCOPES and options["keep"] in KEEP_POLICIES


def near_options(plan: Plan) -> tuple[tuple[str, Any], ...]:
    """FT404's options in ``plan`` sorted by name, when it runs as this stage; else empty."""
    for bound in plan.dataset:
        if bound.code == NEAR:
            options = {**bound.rule.options, **bound.options}
            return tuple(sorted(options.items())) if staged(options) else ()
    return ()


def minhash_job(job: ConflictJob) -> Job:
    """The MinHash stages' view of the lint's ``job``: FT404's options, its folder."""
    options = dict(job.near)
    bands, rows = layout(options)
    scope = str(options["scope"])
    return Job(
        job.path,
        str(Path(job.work) / NEAR),
        "minhash",
        scope,
        str(options["keep"]),
        False,
        str(options["shingle"]),
        int(options["n"]),
        int(options["num_perm"]),
        int(options["seed"]),
        float(options["threshold"]),
        bands,
        rows,
        job.format,
        len(job.starts),
        job.partitions,
        offsets=job.offsets,
        # The local rule compares replies only over the whole conversation.
        answer_threshold=float(options["answer_threshold"]) if scope == "conversation" else 0.0,
    )


def write_rows(job: ConflictJob, block: int, column: Column | None) -> None:
    """Write block ``block``'s FT404 rows (``column``: what the collector collected there)
    and its band keys, split into ``job.partitions`` files by key."""
    from ftdata.rules.duplicates import near_sets

    near = minhash_job(job)
    values = list(column.values) if column is not None else []
    index = np.asarray(column.indices if column is not None else [], dtype=np.int64)
    sets = near_sets(values)
    if values:
        sig = sets.signatures(near.num_perm, near.seed)
    else:
        sig = np.zeros((0, near.num_perm), dtype=np.uint32)
    found = [sets[k] for k in range(len(sets))]
    write_sets(near, block, index, found, np.asarray(sets.lengths(), dtype=np.int64), sig)


def write_sets(
    near: Job, block: int, index: np.ndarray, sets: list[np.ndarray], lengths: np.ndarray, sig: np.ndarray
) -> None:
    """Write block ``block``'s rows for the MinHash stages of ``near`` (its records' local
    ``index``, sorted, their shingle ``sets``, text ``lengths`` and signatures ``sig``) and
    one row per band key, split into ``near.partitions`` files by key."""
    import pyarrow as pa

    from ftdata.similarity.minhash import band_keys

    sizes = np.asarray([0] + [s.size for s in sets], dtype=np.int64)
    flat = np.concatenate(sets) if sets else np.zeros(0, dtype=np.uint32)
    shingles = pa.ListArray.from_arrays(pa.array(np.cumsum(sizes).astype(np.int32)), pa.array(flat, pa.uint32()))
    folder = near.scan_dir
    folder.mkdir(parents=True, exist_ok=True)
    write_table(folder / f"b{block}.rows.parquet", {"index": index, "length": lengths, "shingles": shingles})
    valid = np.flatnonzero(sig[:, 0] != 0xFFFFFFFF)  # an empty set shares no band (as locally)
    keys = [band_keys(sig, band, near.rows, valid) for band in range(near.bands)]
    key = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
    bands = np.repeat(np.arange(near.bands, dtype=np.int32), valid.size)
    owners = np.tile(index[valid], near.bands)
    part = (key % np.uint64(near.partitions)).astype(np.int64)
    for p in range(near.partitions):
        mine = part == p
        rows = {"band": bands[mine], "key": key[mine], "index": owners[mine]}
        rows["block"] = np.full(int(mine.sum()), block, dtype=np.int32)
        write_table(folder / f"b{block}.p{p}.bands.parquet", rows)


def bucket(partition: int, job: ConflictJob) -> list[Issue]:
    """Write the candidate pairs of the band buckets of ``partition``; its issues come
    once every block is verified (none here)."""
    near = minhash_job(job)
    buckets_dir(near).mkdir(parents=True, exist_ok=True)
    bucket_partition(partition, near)
    return []


def verify(block: int, *, job: ConflictJob) -> int:
    """Write the verified near-duplicate pairs whose first record is in ``block``; returns
    how many (-1: an earlier run verified them)."""
    near = minhash_job(job)
    verify_path(near, block).parent.mkdir(parents=True, exist_ok=True)
    return verify_block(block, near, replies=partial(_replies, job))


def _replies(job: ConflictJob, wanted: np.ndarray) -> dict[int, np.ndarray | None]:
    """The reply shingle sets of the records ``wanted``, read again from their blocks."""
    from ftdata.distributed.conflicts_near import fetch_records
    from ftdata.rules.duplicates import near_reply_sets

    options = dict(job.near)
    records, _ = fetch_records(job, set(wanted.tolist()))
    return near_reply_sets(records, shingle=str(options["shingle"]), n=int(options["n"]))


def record_lines(block: int, *, job: ConflictJob, wanted: tuple[int, ...]) -> dict[int, int]:
    """The lines of the records ``wanted`` (global indices) that lie in ``block``."""
    from ftdata.distributed.conflicts_near import fetch_records

    start = job.offsets[block]
    end = job.offsets[block + 1] if block + 1 < len(job.offsets) else None
    return fetch_records(job, {i for i in wanted if i >= start and (end is None or i < end)})[1]


def near_issues(stage: ConflictStage) -> list[Issue]:
    """FT404's issues, in the order of the local rule, once the scan has written its rows
    (``stage.job`` knows where each block's records start)."""
    from ftdata.distributed.conflicts import judge_partition
    from ftdata.distributed.conflicts_near import RecordLines
    from ftdata.rules.duplicates import near_duplicate_issues

    job = stage.job
    assert job is not None
    near = minhash_job(job)
    stage.work.stage(NEAR)
    done = [(buckets_dir(near) / f"p{p}.done").exists() for p in range(job.partitions)]
    todo = [p for p in range(job.partitions) if not done[p]]
    stage.counts["partitions resumed"] += job.partitions - len(todo)
    stage.counts["partitions judged"] += len(todo)
    for _ in stage.executor.map(partial(judge_partition, job=job, code=NEAR, options=dict(job.near)), todo):
        pass
    todo = [b for b in range(near.blocks) if not verify_path(near, b).exists()]
    stage.counts["blocks resumed"] = stage.counts.get("blocks resumed", 0) + near.blocks - len(todo)
    stage.counts["blocks verified"] = stage.counts.get("blocks verified", 0) + len(todo)
    for _ in stage.executor.map(partial(verify, job=job), todo):
        pass
    clusters = components(near)
    kept = tuple(sorted({c.representative for c in clusters}))
    holding = sorted(set(near.block_of(np.asarray(kept, dtype=np.int64)).tolist())) if kept else []
    lines: dict[int, int] = {}
    for found in stage.executor.map(partial(record_lines, job=job, wanted=kept), holding):
        lines.update(found)
    stage.work.finish(NEAR)
    return list(near_duplicate_issues(RecordLines(lines), clusters))
