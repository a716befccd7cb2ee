"""``ftdata dedup`` on an executor (a Ray cluster): the same outputs, byte for byte, as
:func:`ftdata.curation.dedup.dedup` on one machine, for ``exact`` and ``minhash``.

Stages, each a pure function over a block or a partition, run by ``executor.map``, with
their intermediates under the work directory and a ``_SUCCESS`` marker when finished:
``scan`` (read, key, shingle and sign each block), then ``groups`` (exact: group the keys
of each partition) or ``buckets`` (MinHash: candidate pairs of each partition's band
buckets) and ``verify`` (exact Jaccard of each block's candidate pairs, and over the whole
conversation FT404's reply check, before any component is built). The driver then
joins the verified edges into connected components, orders everything by record index
and writes the four outputs with the writer of the local command.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ftdata import io
from ftdata.curation.dedup import (
    DEFAULT_THRESHOLDS,
    UNREADABLE,
    DedupResult,
    Unreadable,
    assemble,
    manifest_options,
    output_paths,
    write_outputs,
)
from ftdata.distributed.exact import group_partition, groups_path, read_clusters
from ftdata.distributed.job import Block, Job, check_stamp, stamp_of
from ftdata.distributed.minhash import bucket_partition, verify_block, verify_path
from ftdata.distributed.scan import scan_block
from ftdata.distributed.workdir import WorkDir, read_table
from ftdata.executors import Executor
from ftdata.outputs import Fingerprint, check_layout, check_outputs
from ftdata.similarity.clusters import Cluster, build_clusters

#: The methods that run as distributed stages (semantic dedup runs on one machine).
METHODS = ("exact", "minhash")
#: Called after each stage with its name (tests interrupt a run there).
StageHook = Callable[[str], None]


def dedup(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    executor: Executor,
    method: str = "exact",
    keep: str = "first",
    threshold: float | None = None,
    scope: str = "conversation",
    casefold: bool = False,
    shingle: str = "word",
    n: int = 5,
    num_perm: int = 128,
    bands: int | None = None,
    seed: int = 0,
    answer_threshold: float = 0.5,
    format: str | None = None,
    unreadable: str = "keep",
    blocks: int | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    after_stage: StageHook | None = None,
) -> DedupResult:
    """Deduplicate the file ``source`` into ``output`` (and the rejects, clusters and
    manifest beside it), the stages run by ``executor``; options as
    :func:`ftdata.curation.dedup.dedup`. ``blocks`` is how many byte ranges a JSON Lines
    input is cut into (default: the executor's ``parts``, else 4); a JSON array is one
    block. ``work_dir`` keeps the intermediates (default: a temporary folder removed at the
    end); a run stopped part way resumes there from its last finished stage when started
    again with the same input and options."""
    if method not in METHODS:
        raise ValueError(f"{method} dedup runs on one machine only (distributed methods: {', '.join(METHODS)})")
    if unreadable not in UNREADABLE:
        raise ValueError(f"unknown unreadable policy {unreadable!r} (expected keep or reject)")
    if keep not in ("first", "longest"):
        raise ValueError(f"unknown keep policy {keep!r} (expected first or longest)")
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    if not 0 < limit <= 1:
        raise ValueError("threshold must be in (0, 1]")
    if method == "minhash":
        from ftdata import registry

        registry.get("FT404").check_options({"answer_threshold": answer_threshold})  # the local run's message
    path = Path(source)
    paths = output_paths(output)
    check_outputs([path], paths.values())
    check_layout(paths["kept"], io.container_of(path), source=path)
    fingerprint = Fingerprint.of(path)
    parts = blocks or getattr(executor, "parts", None) or 4
    stamp = stamp_of(path)
    cuts = file_blocks(path, fingerprint.size, parts, stamp)
    rows = 0
    asked = bands
    if method == "minhash":
        from ftdata.similarity.minhash import choose_bands

        if bands:
            rows = max(1, num_perm // bands)
        else:
            bands, rows = choose_bands(num_perm, limit)
    job = Job(
        str(path.absolute()),  # the workers' working folder is not the driver's
        "",
        method,
        scope,
        keep,
        casefold,
        shingle,
        n,
        num_perm,
        seed,
        limit,
        bands or 0,
        rows,
        format,
        len(cuts),
        len(cuts),
        # Set only where it decides the result, so that no other run is told apart by it.
        answer_threshold=float(answer_threshold) if method == "minhash" and scope == "conversation" else 0.0,
    )
    temporary = work_dir is None
    root = Path(tempfile.mkdtemp(prefix="ftdata-dedup-")) if temporary else Path(work_dir)  # type: ignore[arg-type]
    try:
        identity = {"input": fingerprint.sha256, "size": fingerprint.size, "job": job_identity(replace(job, path=""))}
        work = WorkDir(root, identity)
        job = replace(job, work=str(root))
        result, lines = _run(job, work, cuts, executor, unreadable, after_stage or (lambda stage: None))
        options = manifest_options(
            method, limit, scope=scope, keep=keep, casefold=casefold, unreadable=unreadable, format=format,
            shingle=shingle, n=n, num_perm=num_perm, bands=asked, seed=seed, model="",
            answer_threshold=answer_threshold,
        )  # fmt: skip
        result.outputs = write_outputs(path, paths, result, lines, options=options, fingerprint=fingerprint)
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    return result


def on_cluster(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    address: str | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    blocks: int | None = None,
    **options: Any,
) -> DedupResult:
    """:func:`dedup` on the Ray cluster at ``address`` (``auto``, ``ray://HOST:PORT``; None:
    the one this process joined, else a new local one); ``options`` as :func:`dedup`."""
    from ftdata.executors import for_engine

    method = options.get("method", "exact")
    if method == "semantic":  # the lint pass on the cluster, FT405's vectors from its actors
        from ftdata.curation.dedup import dedup as one_pass

        return one_pass(source, output, executor=for_engine("ray", address=address), **options)
    if method not in METHODS:
        raise ValueError(f"{method} dedup runs on one machine only: use the local engine (Ray runs exact and minhash)")
    executor = for_engine("ray", address=address)
    assert executor is not None
    return dedup(source, output, executor=executor, blocks=blocks, work_dir=work_dir, **options)


def file_blocks(path: Path, size: int, parts: int, stamp: tuple[int, ...] = ()) -> list[Block]:
    """Newline-aligned byte ranges of a JSON Lines file (one block for anything else),
    each to be read only while the file still has ``stamp``."""
    from ftdata.engine.scan import cut

    if io.container_of(path) != "jsonl" or size == 0 or parts <= 1:
        return [Block(0, stamp=stamp)]
    offsets = cut(path, size, parts)
    ends = [*offsets[1:], None]
    return [Block(k, a, b, stamp=stamp) for k, (a, b) in enumerate(zip(offsets, ends, strict=True))]


def job_identity(job: Job) -> dict[str, Any]:
    """The options of ``job`` that decide its intermediates (what ``job.json`` holds)."""
    from dataclasses import asdict

    return {k: v for k, v in asdict(job).items() if k not in ("path", "work", "offsets")}


def run_stage(
    work: WorkDir, name: str, executor: Executor, fn: Callable[..., Any], items: Sequence[Any], job: Job
) -> list[Any]:
    """Run stage ``name`` unless an earlier run finished it; tasks finished by an earlier
    run return at once."""
    if work.done(name):
        return []
    work.stage(name)
    results = list(executor.map(partial(fn, job=job), items))
    work.finish(name)
    return results


def _run(
    job: Job, work: WorkDir, cuts: list[Block], executor: Executor, unreadable: str, after_stage: StageHook
) -> tuple[DedupResult, dict[int, int | None]]:
    import orjson

    from ftdata.distributed.scan import meta_path

    work.stage("scan")
    run_stage(work, "scan", executor, scan_block, cuts, job)
    after_stage("scan")
    # Refuse early, before the shuffles: the writer would refuse it too, at the end.
    check_stamp(Path(job.path), cuts[0].stamp)
    metas = [orjson.loads(meta_path(job, b.number).read_bytes()) for b in cuts]
    counts = np.asarray([m["records"] for m in metas], dtype=np.int64)
    line_counts = np.asarray([m["lines"] for m in metas], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    line_offsets = np.concatenate(([0], np.cumsum(line_counts)))
    job = replace(job, offsets=tuple(int(x) for x in offsets[:-1]))
    records = int(offsets[-1])
    if job.method == "exact":
        run_stage(work, "groups", executor, group_partition, range(job.partitions), job)
        after_stage("groups")
        clusters = read_clusters([groups_path(job, p) for p in range(job.partitions)])
    else:
        run_stage(work, "buckets", executor, bucket_partition, range(job.partitions), job)
        after_stage("buckets")
        run_stage(work, "verify", executor, verify_block, range(job.blocks), job)
        after_stage("verify")
        clusters = components(job)
    members = np.asarray(sorted({m for c in clusters for m in c.members}), dtype=np.int64)
    found = row_values(job, "line", members)
    lines: dict[int, int | None] = {}
    for m, b, line in zip(members.tolist(), job.block_of(members).tolist(), found.tolist(), strict=True):
        lines[m] = None if line < 0 else line + int(line_offsets[b])
    unread = _unreadable(job, cuts, line_offsets)
    result = assemble(
        records, clusters, lines, unread, method=job.method, threshold=job.threshold, unreadable=unreadable
    )
    return result, lines


def row_values(job: Job, column: str, indices: np.ndarray) -> np.ndarray:
    """``column`` of the scan rows of the records ``indices`` (global, sorted)."""
    found = np.zeros(indices.size, dtype=np.int64)
    if not indices.size:
        return found
    blocks = job.block_of(indices)
    for b in np.unique(blocks).tolist():
        table = read_table([job.scan_dir / f"b{b}.rows.parquet"], ["index", column])
        local = table.column("index").to_numpy()
        mine = blocks == b
        found[mine] = table.column(column).to_numpy()[np.searchsorted(local, indices[mine] - job.offsets[b])]
    return found


def components(job: Job) -> list[Cluster]:
    """Connected components of the verified edges, as FT404 builds them."""
    table = read_table([verify_path(job, b) for b in range(job.blocks)])
    i, j = table.column("i").to_numpy(), table.column("j").to_numpy()
    sims = table.column("similarity").to_numpy()
    involved = np.unique(np.concatenate((i, j)))
    lengths = row_values(job, "length", involved).tolist() if job.keep != "first" else None
    pi, pj = np.searchsorted(involved, i), np.searchsorted(involved, j)
    edges = zip(pi.tolist(), pj.tolist(), sims.tolist(), strict=True)
    local = build_clusters(int(involved.size), edges, keep=job.keep, lengths=lengths)
    return [
        Cluster(int(involved[c.representative]), tuple(int(involved[m]) for m in c.members), c.similarity)
        for c in local
    ]


def _unreadable(job: Job, cuts: list[Block], line_offsets: np.ndarray) -> list[Unreadable]:
    found: list[Unreadable] = []
    for b in cuts:
        table = read_table([job.scan_dir / f"b{b.number}.unreadable.parquet"])
        for index, line, rule, detail in zip(
            *(table.column(c).to_pylist() for c in ("index", "line", "rule", "detail")), strict=True
        ):
            at = None if line is None else line + int(line_offsets[b.number])
            found.append(Unreadable(index + job.offsets[b.number], at, rule, detail))
    return found
