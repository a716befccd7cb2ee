"""FT403 with ``near`` above 0 on an executor (a Ray cluster): the groups of near-identical
prompts merged as the local rule merges them, without every prompt on the driver; and the
reading back of records from their blocks that the distributed lint stages share.

The local rule groups records by prompt key, takes the prompt text of the first record of
each group, finds the pairs of those texts whose Jaccard similarity of word 3-grams reaches
``near`` (MinHash, LSH bands, exact verification), merges the groups of each connected
component (a merged group is its groups one after the other, in order of their first
records) and judges every merged group answered differently. Here, the stages of that, each
a task over one partition or one block, their files under ``FT403-near/`` in the lint's
work directory (the scan has already written FT403's rows by prompt key):

- *firsts*, one task per partition (:func:`group_firsts`): the first record of each prompt
  key of the partition (all its rows meet there), written by the block that holds it;
- *sign*, one task per block (:func:`sign_block`): the block's first records read again,
  their prompt text shingled and signed with the local rule's parameters, written as the
  rows and band keys of the MinHash stages of dedup (:func:`~ftdata.distributed.near.write_sets`);
- *buckets* and *verify*: dedup's own stages over those rows (candidate pairs of each
  bucket, as the local rule forms them; exact Jaccard of each pair where its records live);
- the driver joins the verified edges (a few) into connected components, each named by its
  smallest first record, and writes them (``roots.parquet``);
- *merge*, one task per partition (:func:`regroup`): each prompt group that is merged with
  another or answered differently, re-partitioned by its component's root;
- *judge*, one task per partition of roots (:func:`judge_merged`): the merged groups, their
  groups in order of their first records, judged by the local rule's functions, each issue
  made by its ``conflict_issue``.

Nothing of the local rule is left to the driver: the options FT403 takes are checked there
before any task runs, as locally. A resumed lint (a work directory) skips every task that
finished (a marker, or the judged partition's result, written last).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ftdata import io
from ftdata.distributed.job import Job, check_stamp
from ftdata.distributed.workdir import read_table, write_atomic, write_result, write_table
from ftdata.findings import Issue
from ftdata.formats import normalise
from ftdata.records import Record

if TYPE_CHECKING:
    from ftdata.distributed.conflicts import ConflictJob, ConflictStage

#: The rule this stage runs, and its folder in the work directory.
CODE = "FT403"
FOLDER = "FT403-near"


@dataclass(frozen=True, slots=True)
class RecordLines:
    """Names records as a file's dataset view does, from the lines of the records read."""

    lines: Mapping[int, int]

    def where(self, index: int) -> str:
        line = self.lines.get(index)
        return f"the record on line {line}" if line is not None else f"record {index}"


def fetch_records(job: ConflictJob, wanted: set[int]) -> tuple[dict[int, Record], dict[int, int]]:
    """The records at the global indices ``wanted``, normalised as the lint reads them
    again, and the line of each; only the blocks that hold them are read, and only up to
    the last one wanted (the others are counted, not parsed)."""
    path = Path(job.path)
    check_stamp(path, job.stamp)
    offsets = np.asarray(job.offsets, dtype=np.int64)
    indices = np.asarray(sorted(wanted), dtype=np.int64)
    blocks = np.searchsorted(offsets, indices, side="right") - 1
    records: dict[int, Record] = {}
    lines: dict[int, int] = {}
    for b in np.unique(blocks).tolist():
        local = set((indices[blocks == b] - offsets[b]).tolist())
        items = io.read_jsonl(
            path,
            io.ReadStats(),
            source=job.path,
            start=job.starts[b],
            end=job.ends[b],
            max_line_bytes=job.max_line_bytes,
            max_depth=job.max_depth,
            wanted=local,
        )
        for item in items:
            if type(item) is Record and item.index in local:
                if type(item.data) is dict:
                    normalise(item, job.format)
                at = int(offsets[b]) + item.index
                records[at] = item
                if item.line is not None:
                    lines[at] = item.line + job.line_offsets[b]
    check_stamp(path, job.stamp)
    return records, lines


def prompt_job(job: ConflictJob, near: float) -> Job:
    """The MinHash stages' view of the prompts: FT403's ``near`` as the threshold, the
    local rule's shingles, permutations, seed and bands, this stage's folder."""
    from ftdata.rules.duplicates import NEAR_PROMPT_N, NEAR_PROMPT_PERMUTATIONS, NEAR_PROMPT_SEED, NEAR_PROMPT_SHINGLE
    from ftdata.similarity.minhash import choose_bands

    bands, rows = choose_bands(NEAR_PROMPT_PERMUTATIONS, near)
    return Job(
        job.path,
        str(Path(job.work) / FOLDER),
        "minhash",
        "prompt",
        "first",
        False,
        NEAR_PROMPT_SHINGLE,
        NEAR_PROMPT_N,
        NEAR_PROMPT_PERMUTATIONS,
        NEAR_PROMPT_SEED,
        near,
        bands,
        rows,
        job.format,
        len(job.starts),
        job.partitions,
        offsets=job.offsets,
    )


def _folder(job: ConflictJob, name: str) -> Path:
    folder = Path(job.work) / FOLDER / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _prompt_groups(job: ConflictJob, partition: int) -> dict[int, list[tuple[int, int]]]:
    """FT403's groups of one prompt key in ``partition``, as the local rule groups them."""
    from ftdata.distributed.conflicts import partition_rows
    from ftdata.rules.duplicates import group_by_prompt

    index, columns = partition_rows(job, CODE, partition, ("prompt", "answer"))
    return group_by_prompt(zip(index, zip(*columns, strict=True), strict=True))


def group_firsts(partition: int, *, job: ConflictJob) -> int:
    """Write the first record of each prompt group of ``partition``, one file per block
    that holds them; returns how many (-1: an earlier run wrote them)."""
    folder = _folder(job, "firsts")
    done = folder / f"p{partition}.done"
    if done.exists():
        return -1
    firsts = np.asarray(sorted(g[0][0] for g in _prompt_groups(job, partition).values()), dtype=np.int64)
    owner = np.searchsorted(np.asarray(job.offsets, dtype=np.int64), firsts, side="right") - 1
    for b in range(len(job.starts)):
        write_table(folder / f"p{partition}.b{b}.parquet", {"index": firsts[owner == b]})
    write_atomic(done, b"")
    return int(firsts.size)


def sign_block(block: int, *, job: ConflictJob, near: float) -> int:
    """Shingle and sign the prompt texts of the first records that lie in ``block``, read
    again from it, and write them as the MinHash stages' rows; returns how many (-1: an
    earlier run signed them)."""
    from ftdata.distributed.near import write_sets
    from ftdata.rules.duplicates import near_prompt_text
    from ftdata.similarity.minhash import shingle_sets, signatures

    folder = _folder(job, "scan")
    done = folder / f"b{block}.done"
    if done.exists():
        return -1
    prompts = prompt_job(job, near)
    table = read_table([Path(job.work) / FOLDER / "firsts" / f"p{p}.b{block}.parquet" for p in range(job.partitions)])
    wanted = np.sort(table.column("index").to_numpy()) if table is not None else np.zeros(0, np.int64)
    records, _ = fetch_records(job, set(wanted.tolist()))
    # A first record that cannot be read again is left out, as the local rule leaves it out.
    index = np.asarray([i for i in wanted.tolist() if i in records], dtype=np.int64)
    texts = [near_prompt_text(records[i]) for i in index.tolist()]
    sets = shingle_sets(texts, kind=prompts.shingle, n=prompts.n)
    sig = signatures(sets, num_perm=prompts.num_perm, seed=prompts.seed)
    found = [sets.unique(k).astype(np.uint32, copy=False) for k in range(len(sets))]
    lengths = np.asarray([len(t) for t in texts], dtype=np.int64)
    write_sets(prompts, block, index - job.offsets[block], found, lengths, sig)
    write_atomic(done, b"")
    return int(index.size)


def bucket_prompts(partition: int, *, job: ConflictJob, near: float) -> int:
    """Dedup's bucket stage over the prompts' band rows of ``partition``."""
    from ftdata.distributed.minhash import bucket_partition, buckets_dir

    prompts = prompt_job(job, near)
    buckets_dir(prompts).mkdir(parents=True, exist_ok=True)
    return bucket_partition(partition, prompts)


def verify_prompts(block: int, *, job: ConflictJob, near: float) -> int:
    """Dedup's verify stage over the prompts' candidate pairs whose first record is in ``block``."""
    from ftdata.distributed.minhash import verify_block, verify_path

    prompts = prompt_job(job, near)
    verify_path(prompts, block).parent.mkdir(parents=True, exist_ok=True)
    return verify_block(block, prompts)


def _roots_path(job: ConflictJob) -> Path:
    return Path(job.work) / FOLDER / "roots.parquet"


def regroup(partition: int, *, job: ConflictJob) -> int:
    """Write the rows of the prompt groups of ``partition`` that FT403 may judge (merged
    with another group, or answered differently) by the partition of their merged group's
    root (the smallest first record of its groups); returns how many rows (-1: an earlier
    run wrote them)."""
    folder = _folder(job, "merged")
    done = folder / f"p{partition}.done"
    if done.exists():
        return -1
    table = read_table([_roots_path(job)])
    roots = dict(zip(table.column("first").to_pylist(), table.column("root").to_pylist(), strict=True))
    columns: dict[str, list[int]] = {"root": [], "first": [], "index": [], "answer": []}
    for group in _prompt_groups(job, partition).values():
        first = group[0][0]
        if first not in roots and len({a for _, a in group}) < 2:
            continue  # alone and answered one way: the local rule does not judge it either
        root = roots.get(first, first)
        for index, answer in group:
            columns["root"].append(root)
            columns["first"].append(first)
            columns["index"].append(index)
            columns["answer"].append(answer)
    arrays = {name: np.asarray(values, dtype=np.int64) for name, values in columns.items()}
    part = arrays["root"] % job.partitions
    for q in range(job.partitions):
        write_table(folder / f"p{partition}.q{q}.parquet", {name: a[part == q] for name, a in arrays.items()})
    write_atomic(done, b"")
    return int(part.size)


def _judged_key(job: ConflictJob, partition: int, options: Mapping[str, Any]) -> bytes:
    return job.task_key(CODE, FOLDER, partition, sorted(options.items()))


def judge_merged(partition: int, *, job: ConflictJob, options: Mapping[str, Any]) -> list[Issue]:
    """FT403's issues for the merged groups whose root falls in ``partition``, in order of
    their first records (kept in the work directory too when the run resumes)."""
    from ftdata.rules.duplicates import (
        answered_differently,
        conflict_issue,
        judge_groups,
        merge_prompt_groups,
        replies_needed,
        reported_kinds,
    )

    folder = Path(job.work) / FOLDER / "merged"
    table = read_table([folder / f"p{p}.q{partition}.parquet" for p in range(job.partitions)])
    issues: list[Issue] = []
    if table is not None and table.num_rows:
        root, first, index, answer = (table.column(c).to_numpy() for c in ("root", "first", "index", "answer"))
        order = np.lexsort((index, first, root))
        by_first: dict[int, list[tuple[int, int]]] = {}
        root_of: dict[int, int] = {}
        for r, f, i, a in zip(*(x[order].tolist() for x in (root, first, index, answer)), strict=True):
            by_first.setdefault(f, []).append((i, a))
            root_of[f] = r
        groups = answered_differently(merge_prompt_groups(by_first, root_of.__getitem__))
        if groups:
            records, lines = fetch_records(job, replies_needed(groups))
            where = RecordLines(lines).where
            near, paraphrase = float(options["near"]), float(options["paraphrase"])
            wanted = reported_kinds(str(options["report"]))
            for members, answers, words in judge_groups(groups, records):
                issue = conflict_issue(
                    members, answers, words, paraphrase=paraphrase, wanted=wanted, near=near, where=where
                )
                if issue is not None:
                    issues.append(issue)
    if job.key:
        write_result(job.judged_path(CODE, partition), issues, _judged_key(job, partition, options))
    return issues


def _run(stage: ConflictStage, fn: Any, items: list[int], done: list[bool], name: str) -> None:
    """Run ``fn`` on the ``items`` not ``done`` yet, counting both under ``name``."""
    todo = [item for item, finished in zip(items, done, strict=True) if not finished]
    counts = stage.counts
    counts[f"{name} resumed"] = counts.get(f"{name} resumed", 0) + len(items) - len(todo)
    counts[f"{name} run"] = counts.get(f"{name} run", 0) + len(todo)
    for _ in stage.executor.map(fn, todo):
        pass


def near_prompt_issues(stage: ConflictStage, options: Mapping[str, Any]) -> list[Issue]:
    """FT403's issues with ``options`` (``near`` above 0), in the order of the local rule,
    once the scan has written FT403's rows (``stage.job`` knows where each block starts)."""
    from ftdata.distributed.dedup import components
    from ftdata.distributed.minhash import buckets_dir, verify_path
    from ftdata.distributed.workdir import read_result

    job = stage.job
    assert job is not None
    near = float(options["near"])
    prompts = prompt_job(job, near)
    root = Path(job.work) / FOLDER
    stage.work.stage(FOLDER)
    parts, blocks = list(range(job.partitions)), list(range(len(job.starts)))
    marked = [(root / "firsts" / f"p{p}.done").exists() for p in parts]
    _run(stage, partial(group_firsts, job=job), parts, marked, "prompt partitions grouped")
    marked = [(root / "scan" / f"b{b}.done").exists() for b in blocks]
    _run(stage, partial(sign_block, job=job, near=near), blocks, marked, "prompt blocks signed")
    marked = [(buckets_dir(prompts) / f"p{p}.done").exists() for p in parts]
    _run(stage, partial(bucket_prompts, job=job, near=near), parts, marked, "prompt partitions bucketed")
    marked = [verify_path(prompts, b).exists() for b in blocks]
    _run(stage, partial(verify_prompts, job=job, near=near), blocks, marked, "prompt blocks verified")
    firsts: list[int] = []
    roots: list[int] = []
    for cluster in components(prompts):
        firsts.extend(cluster.members)
        roots.extend([cluster.members[0]] * len(cluster.members))
    write_table(_roots_path(job), {"first": np.asarray(firsts, np.int64), "root": np.asarray(roots, np.int64)})
    marked = [(root / "merged" / f"p{p}.done").exists() for p in parts]
    _run(stage, partial(regroup, job=job), parts, marked, "prompt partitions merged")
    found: dict[int, list[Issue]] = {}
    if job.key:
        for p in parts:
            ok, value = read_result(job.judged_path(CODE, p), _judged_key(job, p, options))
            if ok:
                found[p] = value
    todo = [p for p in parts if p not in found]
    stage.counts["partitions resumed"] += len(found)
    stage.counts["partitions judged"] += len(todo)
    results = stage.executor.map(partial(judge_merged, job=job, options=dict(options)), todo)
    found.update(zip(todo, results, strict=True))
    stage.work.finish(FOLDER)
    stage.work.finish(CODE)
    issues = [issue for p in parts for issue in found[p]]
    issues.sort(key=lambda issue: issue.index if issue.index is not None else -1)
    return issues
