"""FT401 to FT404 on an executor (a Ray cluster): the issues of the local rules, issue
for issue, without the keys of every record on the driver.

Stages, pure functions over a block or a partition, their intermediates in the work
directory: the lint's own shard scan, which then writes each rule's collected rows (FT401:
duplicate key; FT402/FT403: prompt key, answer key; FT404: MinHash band keys) split into
``partitions`` files by their first key (so that equal keys of every block meet in one
partition) and leaves them out of the result it sends back, with ``b<k>.json`` (its record
and line counts) written last to mark the block finished; then one task per partition, which
groups its rows by key, reads the records it needs (FT401: the lines of the records kept, or
every member's text for ``keep="longest"``; FT403: first replies) from their blocks, and
judges each group with the functions of the local rules. The driver gathers the issues of
the groups in the order of the local rule: by the first record of each group. FT403 with
``near`` above 0 first merges the groups of near-identical prompts in stages of its own
(:mod:`~ftdata.distributed.conflicts_near`), FT404 runs MinHash stages
(:mod:`~ftdata.distributed.near`).

With a work directory given, the lint resumes: each finished shard's result and each
judged partition's issues are kept there (see :func:`~ftdata.distributed.workdir.write_result`)
under a stamp of the input (size, mtime, inode, sha256), ftdata, the plan and the cut: a
run started again with the same input and settings reads them instead of running those
tasks again; anything else has another stamp and is computed afresh.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ftdata.distributed.conflicts_near import RecordLines, fetch_records, near_prompt_issues
from ftdata.distributed.job import stamp_of
from ftdata.distributed.near import bucket, near_issues, near_options, write_rows
from ftdata.distributed.workdir import (
    WorkDir,
    lint_folder,
    read_result,
    read_table,
    remove_temporaries,
    result_ready,
    write_atomic,
    write_result,
    write_table,
)
from ftdata.engine.plan import BoundRule, Plan
from ftdata.engine.scan import Shard, ShardResult
from ftdata.executors import Executor
from ftdata.findings import Issue

#: The rules this stage runs.
CODES = ("FT401", "FT402", "FT403")


@dataclass(frozen=True, slots=True)
class ConflictJob:
    """What every task of the stage is told (small and picklable): the file, the work
    directory, the rules whose rows are written, the byte range of each block, and once
    the scan has counted them, where each block's records and lines start."""

    path: str
    work: str
    codes: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int | None, ...]
    partitions: int
    stamp: tuple[int, ...]
    format: str | None
    max_line_bytes: int
    max_depth: int
    #: The global index of each block's first record, and the lines before it.
    offsets: tuple[int, ...] = ()
    line_offsets: tuple[int, ...] = ()
    #: The stamp of the run when it resumes (a work directory was given): every task then
    #: keeps its result under it. Empty: results go back to the driver only.
    key: bytes = b""
    near: tuple[tuple[str, Any], ...] = ()  # FT404's options, when it is staged

    def meta_path(self, block: int) -> Path:
        return Path(self.work) / "scan" / f"b{block}.json"

    def result_path(self, block: int) -> Path:
        return Path(self.work) / "scan" / f"b{block}.result"

    def judged_path(self, code: str, partition: int) -> Path:
        return Path(self.work) / code / f"p{partition}.result"

    def task_key(self, *parts: object) -> bytes:
        """The stamp of one task's result: the run's, and what tells the task apart."""
        return hashlib.blake2b(self.key + repr(parts).encode(), digest_size=32).digest()

    def rows_path(self, code: str, block: int, partition: int) -> Path:
        return Path(self.work) / code / f"b{block}.p{partition}.parquet"


def scan_and_write(shard: Shard, *, scan: Callable[[Shard], Any], job: ConflictJob, tag: str = "") -> Any:
    """Run ``scan`` (the lint's shard function, ``tag`` its name) on ``shard``, write the
    rows of ``job.codes`` by partition and return its result without them (kept in the
    work directory too, last, when the run resumes). A task run again (its worker died)
    writes the same files again, each atomically."""
    found = scan(shard)
    result: ShardResult = found[0] if isinstance(found, tuple) else found
    block = job.starts.index(shard.start)
    if job.near:
        write_rows(job, block, result.collected.pop("FT404", None))
    for code in (c for c in job.codes if c != "FT404"):
        column = result.collected.pop(code, None)
        values = column.values if column is not None else []
        index = np.frombuffer(column.indices, dtype=np.int64) if column is not None else np.zeros(0, np.int64)
        if code == "FT401":
            columns = {"key": np.fromiter(values, dtype=np.int64, count=len(values))}
        else:
            columns = {
                name: np.fromiter((v[k] for v in values), dtype=np.int64, count=len(values))
                for k, name in enumerate(("prompt", "answer"))
            }
        part = next(iter(columns.values())) % job.partitions
        job.rows_path(code, block, 0).parent.mkdir(exist_ok=True)
        for p in range(job.partitions):
            mine = part == p
            rows = {name: array[mine] for name, array in columns.items()}
            rows["index"] = index[mine]
            rows["block"] = np.full(int(mine.sum()), block, dtype=np.int32)
            write_table(job.rows_path(code, block, p), rows)
    meta = {"records": result.stats.records, "lines": result.stats.lines}
    write_atomic(job.meta_path(block), orjson.dumps(meta))
    if job.key:
        write_result(job.result_path(block), found, job.task_key(tag, shard.start, shard.end))
    return found


def judge_partition(partition: int, *, job: ConflictJob, code: str, options: Mapping[str, Any]) -> list[Issue]:
    """The issues of rule ``code`` (its options bound) for the keys of ``partition``, in the
    order of their groups' first records (FT404: none, see :func:`~ftdata.distributed.near.bucket`)."""
    if code == "FT404":
        return bucket(partition, job)
    issues = _duplicates(partition, job, options) if code == "FT401" else _judge(partition, job, code, options)
    if job.key:
        write_result(job.judged_path(code, partition), issues, job.task_key(code, partition, sorted(options.items())))
    return issues


def _judge(partition: int, job: ConflictJob, code: str, options: Mapping[str, Any]) -> list[Issue]:
    from ftdata.rules.duplicates import (
        answered_differently,
        conflict_issue,
        group_by_prompt,
        judge_groups,
        repeated_prompt_issue,
        replies_needed,
        reported_kinds,
    )

    index, columns = partition_rows(job, code, partition, ("prompt", "answer"))
    groups = answered_differently(group_by_prompt(zip(index, zip(*columns, strict=True), strict=True)).values())
    if not groups:
        return []
    records, lines = fetch_records(job, replies_needed(groups))
    where = RecordLines(lines).where
    issues = []
    paraphrase = float(options["paraphrase"])
    wanted = reported_kinds(str(options["report"])) if code == "FT403" else frozenset()
    for members, answers, words in judge_groups(groups, records):
        if code == "FT402":
            issue = repeated_prompt_issue(members, words, paraphrase=paraphrase)
        else:
            issue = conflict_issue(members, answers, words, paraphrase=paraphrase, wanted=wanted, near=0.0, where=where)
        if issue is not None:
            issues.append(issue)
    return issues


def _duplicates(partition: int, job: ConflictJob, options: Mapping[str, Any]) -> list[Issue]:
    """FT401's issues for the keys of ``partition``: its groups, as the local rule forms
    them, with the lines of the records kept read from the blocks that hold them."""
    from ftdata.rules.duplicates import duplicate_clusters, duplicate_issues, duplicate_lengths

    index, (keys,) = partition_rows(job, "FT401", partition, ("key",))
    collected = list(zip(index, keys, strict=True))
    clusters = duplicate_clusters(collected)
    if not clusters:
        return []
    keep = str(options["keep"])
    if keep == "first":
        records, lines = fetch_records(job, {c.representative for c in clusters})
    else:  # the kept record is the longest of its group: read every member
        records, lines = fetch_records(job, {m for c in clusters for m in c.members})
        scope, casefold = str(options["scope"]), bool(options["casefold"])
        lengths = duplicate_lengths(records, scope=scope, casefold=casefold)
        clusters = duplicate_clusters(collected, keep=keep, lengths=lambda _: lengths)
    return list(duplicate_issues(RecordLines(lines), clusters))


def partition_rows(
    job: ConflictJob, code: str, partition: int, names: tuple[str, ...]
) -> tuple[list[int], list[list[int]]]:
    """The global record index and the columns ``names`` of the rows of ``partition`` of
    rule ``code``, from every block, in record order."""
    table = read_table([job.rows_path(code, b, partition) for b in range(len(job.starts))])
    if table is None or table.num_rows == 0:
        return [], [[] for _ in names]
    block = table.column("block").to_numpy()
    index = np.asarray(job.offsets, dtype=np.int64)[block] + table.column("index").to_numpy()
    order = np.argsort(index, kind="stable")
    return index[order].tolist(), [table.column(name).to_numpy()[order].tolist() for name in names]


def _index(issue: Issue) -> int:
    return issue.index if issue.index is not None else -1


def _first(issue: Issue) -> int:
    return min((_index(issue), *issue.related))


def _options(bound: BoundRule) -> dict[str, Any]:
    return {**bound.rule.options, **bound.options}


class ConflictStage:
    """FT401, FT402 and FT403 of one sharded file as distributed stages: :meth:`scanner` wraps
    the lint's shard function, :meth:`issues` answers for a rule once the scan is merged,
    :meth:`close` removes the intermediates. ``work_dir`` is where they go (on storage
    every worker sees; default: a temporary folder). With ``work_dir`` the run resumes
    (see the module's doc), also with no staged rule; ``counts`` says how many shards
    (and partitions) it read back from there and how many it ran."""

    def __init__(
        self, executor: Executor, plan: Plan, parts: Sequence[Shard], *, work_dir: str | os.PathLike[str] | None
    ) -> None:
        self.executor = executor
        self.codes = tuple(staged_codes(plan))
        self.root: Path | None = None
        self.job: ConflictJob | None = None
        self.counts = {"shards resumed": 0, "shards scanned": 0, "partitions resumed": 0, "partitions judged": 0}
        if not parts or (not self.codes and work_dir is None):
            return
        path = Path(parts[0].path)
        options = plan.reader_options
        job = ConflictJob(
            str(path),
            "",
            self.codes,
            tuple(s.start for s in parts),
            tuple(s.end for s in parts),
            len(parts),
            stamp_of(path),
            plan.format,
            options.max_line_bytes,
            options.max_depth,
            near=near_options(plan),
        )
        identity: dict[str, Any] = {"path": str(path), "job": repr(job)}
        if work_dir is None:
            self.root = Path(tempfile.mkdtemp(prefix="ftdata-lint-"))
        else:
            self.root, identity = lint_folder(Path(work_dir), plan, parts[0], job)
            job = replace(job, key=bytes.fromhex(identity["key"]))
        self.job = job = replace(job, work=str(self.root))
        self.work = WorkDir(self.root, identity)
        self.work.stage("scan")
        remove_temporaries(self.root)

    def scanner(self, scan: Callable[[Shard], Any]) -> Callable[[Shard], Any]:
        """``scan`` as it runs under this stage: the rows of the stage's rules go to the
        work directory instead of back to the driver; a resumed run's finished shards are
        read back instead of run (see :class:`Resuming`)."""
        if self.job is None:
            return scan
        func = getattr(scan, "func", scan)
        tag = f"{type(func).__module__}.{getattr(func, '__qualname__', type(func).__qualname__)}"
        run = partial(scan_and_write, scan=scan, job=self.job, tag=tag)
        return Resuming(run, self, tag) if self.job.key else run

    def finished(self, shard: Shard, tag: str, run: Callable[[Shard], Any]) -> Callable[[], Any] | None:
        """The reader of ``shard``'s result kept by an earlier run, or None to run it
        (``run``, the shard function, is what the reader falls back on)."""
        job = self.job
        assert job is not None
        block = job.starts.index(shard.start)
        key = job.task_key(tag, shard.start, shard.end)
        path = job.result_path(block)
        if not result_ready(path, key) or not job.meta_path(block).exists():
            self.counts["shards scanned"] += 1
            return None
        self.counts["shards resumed"] += 1

        def read() -> Any:
            ok, value = read_result(path, key)
            return value if ok else run(shard)  # a file damaged since it was checked

        return read

    def issues(self, bound: BoundRule) -> list[Issue] | None:
        """The issues of ``bound`` in the order of the local rule, or None when the stage
        does not run it (the local rule then runs on the driver)."""
        job = self.job
        if job is None or bound.code not in self.codes:
            return None
        options = _options(bound)
        from ftdata.rules.duplicates import check_keep, reported_kinds

        if bound.code == "FT401":  # refused before any task runs, as locally
            check_keep(str(options["keep"]))
        if bound.code == "FT403":
            reported_kinds(str(options["report"]))
        if not job.offsets:
            metas = [orjson.loads(job.meta_path(b).read_bytes()) for b in range(len(job.starts))]
            self.work.finish("scan")
            records = np.cumsum([0] + [m["records"] for m in metas])[:-1]
            lines = np.cumsum([0] + [m["lines"] for m in metas])[:-1]
            job = self.job = replace(job, offsets=tuple(records.tolist()), line_offsets=tuple(lines.tolist()))
        if bound.code == "FT404":
            return near_issues(self)
        if bound.code == "FT403" and float(options["near"]) > 0:
            return near_prompt_issues(self, options)
        found: dict[int, list[Issue]] = {}
        if job.key:
            for p in range(job.partitions):
                key = job.task_key(bound.code, p, sorted(options.items()))
                ok, value = read_result(job.judged_path(bound.code, p), key)
                if ok:
                    found[p] = value
        todo = [p for p in range(job.partitions) if p not in found]
        self.counts["partitions resumed"] += len(found)
        self.counts["partitions judged"] += len(todo)
        judge = partial(judge_partition, job=job, code=bound.code, options=options)
        found.update(zip(todo, self.executor.map(judge, todo), strict=True))
        self.work.finish(bound.code)
        issues = [issue for p in range(job.partitions) for issue in found[p]]
        # A group lies in one partition; FT401 reports each member after the one kept, so its
        # group's first record is the smallest of an issue's record and its related ones.
        first = _first if bound.code == "FT401" else _index
        issues.sort(key=first)
        return issues

    def close(self) -> None:
        """Remove the intermediates, except those of a resumable run that stopped on an
        error or an interrupt (Ctrl-C): a later run resumes from them."""
        if self.root is not None:
            if self.job is not None and self.job.key and sys.exc_info()[0] is not None:
                return
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


class Resuming:
    """A resumable run's shard function: ``run`` is what the workers run, and ``known``
    gives, for a shard an earlier run finished, the reader of its result (called on the
    driver, instead of running a task; see ``RayExecutor.map``)."""

    def __init__(self, run: Callable[[Shard], Any], stage: ConflictStage, tag: str) -> None:
        self.run, self.stage, self.tag = run, stage, tag

    def __call__(self, shard: Shard) -> Any:
        return self.run(shard)

    def known(self, shard: Shard) -> Callable[[], Any] | None:
        return self.stage.finished(shard, self.tag, self.run)


def staged_codes(plan: Plan) -> Iterator[str]:
    """The rules of ``plan`` the stage runs: FT401, FT402, FT403 (with ``near``, see
    :mod:`~ftdata.distributed.conflicts_near`), and FT404 where :mod:`~ftdata.distributed.near` can."""
    for bound in plan.dataset:
        if bound.code in CODES:
            yield bound.code
    yield from ("FT404",) if near_options(plan) else ()
