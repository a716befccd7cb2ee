"""Running a plan over one source: the streaming pass (sharded for large JSON Lines files),
then the dataset rules, whose findings are located in one more read of the file.

Every later read of a file checks that it is still the file the pass read (size, mtime,
inode): a file replaced mid-run is an error, never a mix of two files.
"""

from __future__ import annotations

import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from ftdata import io
from ftdata.engine.cache import LintCache, open_entry
from ftdata.engine.dataset import FORMAT_CODES, DatasetHandle, DatasetView
from ftdata.engine.locate import at_record_start, stamp
from ftdata.engine.merge import merge, supersede
from ftdata.engine.notes import NotApplied, not_applied
from ftdata.engine.plan import BoundRule, Plan
from ftdata.engine.scan import (
    RULE_ERRORS_SHOWN,
    Shard,
    ShardResult,
    check_record,
    file_finding,
    flush_batches,
    rule_failed,
    scan_items,
    scan_shard,
    shards,
    start_folds,
)
from ftdata.executors import Executor, for_jobs
from ftdata.findings import RULE_ERROR, Finding, Issue, Severity, SourceStats
from ftdata.formats import normalise
from ftdata.outputs import InputChangedError
from ftdata.problems import Problem
from ftdata.progress import Progress
from ftdata.records import Record
from ftdata.requirements import PerSource, RequirementError, Source, answered

#: Files at least this large are checked by several processes when more than one CPU is free.
PARALLEL_MIN_BYTES = 32 * 1024 * 1024


class DatasetStages(Protocol):
    """Dataset rules run as distributed stages for one sharded file, as a cluster
    executor's ``dataset_stages(plan, shards)`` offers them: ``scanner`` wraps the shard
    function (a staged rule's column goes to the stage, not back to the driver),
    ``issues`` gives a rule's issues in the order of the local rule (None: the rule runs
    on the driver) and ``close`` removes the stage's intermediates."""

    def scanner(self, scan: Callable[[Shard], Any]) -> Callable[[Shard], Any]: ...

    def issues(self, bound: BoundRule) -> list[Issue] | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FileStats(SourceStats):
    """:class:`SourceStats` with the notes of the run on that source."""

    not_applied: tuple[NotApplied, ...] = ()


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What identifies one version of a file on disk."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)

    def check(self, path: Path) -> None:
        """Raise :class:`InputChangedError` when ``path`` is no longer this version."""
        try:
            now = FileStamp.of(path)
        except OSError as e:
            raise InputChangedError(f"{path} disappeared while it was being checked: {e}") from None
        if now != self:
            raise InputChangedError(f"{path} changed while it was being checked; run again on a stable copy")


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def lint_file(
    path: Path,
    plan: Plan,
    *,
    source: str | None = None,
    jobs: int | None = None,
    executor: Executor | None = None,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
    views: dict[str, DatasetView] | None = None,
    progress: Progress | None = None,
    cache: LintCache | None = None,
) -> tuple[list[Finding], SourceStats]:
    """Lint one JSONL or JSON file. JSONL files of at least ``parallel_min_bytes`` are cut
    into shards run by ``executor`` (default: a process pool of ``jobs`` workers, the CPUs
    available); an executor that offers ``dataset_stages`` (a cluster) runs some dataset
    rules as distributed stages (see :class:`DatasetStages`). ``views`` receives the
    file's view for each cross-file (FILES) rule; ``progress`` hears of the bytes read and
    of the long dataset rules. With ``cache``, an unchanged file's findings come from it
    (see ftdata.engine.cache); a run with folds does not use it."""
    with ExitStack() as cleanup:
        return _lint_file(path, plan, source, jobs, executor, parallel_min_bytes, views, progress, cache, cleanup)


def _lint_file(
    path: Path,
    plan: Plan,
    source: str | None,
    jobs: int | None,
    executor: Executor | None,
    parallel_min_bytes: int,
    views: dict[str, DatasetView] | None,
    progress: Progress | None,
    cache: LintCache | None,
    cleanup: ExitStack,
) -> tuple[list[Finding], SourceStats]:
    name = source or str(path)
    version = FileStamp.of(path)
    ticket = open_entry(cache, plan, path, name, version.check) if cache is not None and not plan.folds else None
    if ticket is not None and ticket.hit is not None:
        if views is not None and plan.files:
            reread = _Rereader(path, plan, name, version)
            handle = DatasetHandle(
                name, formats=ticket.hit.formats, reread=reread.records, fetch=reread.fetch, lines=reread.lines
            )
            views.update({b.code: DatasetView(handle, ticket.hit.columns.get(b.code)) for b in plan.files})
        return ticket.hit.findings, ticket.hit.stats
    plan = ticket.plan if ticket is not None else plan
    size = version.size
    container = io.container_of(path)
    jobs = default_jobs() if jobs is None else max(1, jobs)
    stage = f"reading {path.name}"
    # an executor may say how many shards it wants and from what size (a cluster: any)
    min_bytes = getattr(executor, "min_bytes", parallel_min_bytes)
    stages: DatasetStages | None = None
    if container == "jsonl" and (executor is not None or jobs > 1) and size >= min_bytes:
        parts = shards(path, name, size, getattr(executor, "parts", None) or jobs * 4)
        runner = executor or for_jobs(jobs)
        results: list[ShardResult] = []
        done = 0
        scan = ticket.scanner() if ticket is not None else partial(scan_shard, plan=plan)
        offer = getattr(executor, "dataset_stages", None)
        stages = offer(plan, parts) if offer is not None else None
        if stages is not None:
            cleanup.callback(stages.close)
            scan = stages.scanner(scan)
        for part, result in zip(parts, runner.map(scan, parts), strict=True):
            results.append(ticket.take(result) if ticket is not None else result)
            done += (size if part.end is None else part.end) - part.start
            if progress is not None:
                progress(stage, done, size)
        state = merge(results, name, plan.settings.max_errors)
    else:
        state = ShardResult(name)
        options = plan.reader_options
        items = io.read(
            path, state.stats, source=name, max_line_bytes=options.max_line_bytes, max_depth=options.max_depth
        )
        tick = None
        if progress is not None:
            tick = lambda offset: progress(stage, offset, size)  # noqa: E731
        scan_items(items, plan, state, tick)
    version.check(path)
    _file_findings(plan, state, name)
    if not state.truncated:
        reread = _Rereader(path, plan, name, version)
        dataset = DatasetHandle(
            name,
            formats=state.formats,
            reread=reread.records,
            fetch=reread.fetch,
            lines=reread.lines,
            progress=progress,
            embedder=getattr(executor, "embedder", lambda: None)(),  # a cluster's model-holding workers
        )
        state.findings.extend(dataset_findings(plan, dataset, state, reread.raw, path=path, stages=stages))
        if views is not None:
            for bound in plan.files:
                views[bound.code] = DatasetView(dataset, state.collected.get(bound.code))
    _failure_summary(state)
    stats = _stats(state, plan)
    if ticket is not None:
        ticket.save(state, stats)
    return state.findings, stats


def _file_findings(plan: Plan, state: ShardResult, name: str) -> None:
    stats = state.stats
    if stats.crlf_lines:
        message = f"file uses CRLF line endings ({stats.crlf_lines:,} of {stats.lines:,} lines)"
        f = file_finding(plan, "crlf-line-ending", name, stats.first_crlf_line, 1, message)
        if f:
            state.findings.append(f)
    if stats.missing_final_newline and stats.container == "jsonl" and not state.truncated:
        f = file_finding(plan, "missing-final-newline", name, stats.lines, 1, "file does not end with a newline")
        if f:
            state.findings.append(f)


def _failure_summary(state: ShardResult) -> None:
    for code, count in sorted(state.rule_failures.items()):
        if count > RULE_ERRORS_SHOWN:
            message = f"rule {code} failed on {count:,} records in all (the first {RULE_ERRORS_SHOWN} are reported)"
            state.findings.append(Finding(RULE_ERROR, Severity.ERROR, message, state.source))


def _stats(state: ShardResult, plan: Plan) -> FileStats:
    formats = format_counts(state.formats)
    return FileStats(
        state.source,
        state.stats.records,
        state.stats.lines,
        tuple(sorted(formats.items())),
        state.truncated,
        state.unreadable,
        folds=tuple(state.folds),
        not_applied=not_applied(plan, formats),
    )


def format_counts(codes: bytearray) -> Counter[str]:
    names = {code: name for name, code in FORMAT_CODES.items()}
    return Counter({name: codes.count(code) for code in set(codes) if (name := names[code]) is not None})


class _Rereader:
    """Later reads of a file for its dataset rules, each checked against the first pass."""

    def __init__(self, path: Path, plan: Plan, source: str, version: FileStamp) -> None:
        self.path, self.plan, self.source, self.version = path, plan, source, version

    def _items(self, wanted: set[int] | None = None) -> Iterator[Record | io.FileProblem]:
        self.version.check(self.path)
        options = self.plan.reader_options
        yield from io.read(
            self.path,
            io.ReadStats(),
            source=self.source,
            max_line_bytes=options.max_line_bytes,
            max_depth=options.max_depth,
            wanted=wanted,
        )
        self.version.check(self.path)

    def records(self) -> Iterator[Record]:
        for item in self._items():
            if type(item) is Record and type(item.data) is dict:
                normalise(item, self.plan.format)
                yield item

    def raw(self, wanted: set[int]) -> dict[int, Record]:
        """The records at the ``wanted`` indices as read (raw bytes, line and column)."""
        return io.records_at(self._items(wanted), wanted) if wanted else {}

    def fetch(self, wanted: Iterable[int]) -> dict[int, Record]:
        found = self.raw(set(wanted))
        for rec in found.values():
            if type(rec.data) is dict:
                normalise(rec, self.plan.format)
        return found

    def lines(self) -> array:
        """The line of every record, from a light pass (JSON Lines) or a full read."""
        lines = array("l")
        if io.container_of(self.path) == "jsonl":
            self.version.check(self.path)
            with open(self.path, "rb") as f:
                for number, raw in enumerate(f, start=1):
                    if raw.strip():
                        lines.append(number)
            return lines
        for item in self._items():
            if type(item) is Record:
                lines.append(item.line or 0)
        return lines


def dataset_findings(
    plan: Plan,
    dataset: DatasetHandle,
    state: ShardResult,
    fetch: Callable[[set[int]], dict[int, Record]] | None,
    *,
    path: Path | None = None,
    stages: DatasetStages | None = None,
) -> Iterator[Finding]:
    """Run the dataset rules; records named by their issues are located in one more read.
    ``path`` is the source file, for which :class:`PerSource` requirements are
    answered; without one (records in memory) the rules that have them do not run (see
    :func:`unanswered`). ``stages`` is asked first for each rule's issues (a cluster's
    distributed stage); the rules it does not run run here. A rule that raises yields an
    FT000 finding and the others still run."""
    located: list[tuple[BoundRule, Issue]] = []
    line = 1 if fetch is not None else None
    for bound in plan.dataset:
        view = DatasetView(dataset, state.collected.get(bound.code))
        needs = _per_source(bound)
        if needs and path is None:
            continue
        try:
            staged = stages.issues(bound) if stages is not None else None
            if staged is not None:
                located.extend((bound, issue) for issue in staged)
                continue
            answers = answered(bound, Source(path, plan.settings.dataset_info), view.collected)  # type: ignore[arg-type]
            check = partial(bound.check, **answers) if answers else bound.check
            located.extend((bound, issue) for issue in check(view) or ())
        except (InputChangedError, RequirementError):
            raise
        except Exception as e:
            yield at_record_start(RULE_ERROR, Severity.ERROR, rule_failed(bound.code, e), state.source, line)
    located = supersede(located)
    records = fetch({i.index for _, i in located if i.index is not None}) if fetch is not None else {}
    for bound, issue in located:
        rec = records.get(issue.index) if issue.index is not None else None
        if rec is not None:
            yield next(stamp(rec, [(bound.code, bound.severity, issue)]))
        else:
            yield at_record_start(bound.code, bound.severity, issue, state.source, line)


def _per_source(bound: BoundRule) -> list[PerSource]:
    return [need for need in bound.rule.requires if isinstance(need, PerSource)]


def unanswered(plan: Plan, state: ShardResult) -> tuple[NotApplied, ...]:
    """Notes for the dataset rules that could not run without a folder (records in
    memory), one per reason, counting the records that gave them something to check."""
    by_reason: dict[str, tuple[tuple[str, ...], int]] = {}
    for bound in plan.dataset:
        column, needs = state.collected.get(bound.code), _per_source(bound)
        if column and needs:
            codes, records = by_reason.get(needs[0].unanswered, ((), 0))
            by_reason[needs[0].unanswered] = ((*codes, bound.code), max(records, len(column)))
    return tuple(NotApplied(codes, "", records, reason) for reason, (codes, records) in by_reason.items())


def files_findings(plan: Plan, group: list[tuple[str, dict[str, DatasetView]]]) -> Iterator[Finding]:
    """Run the cross-file rules over the files of one dataset: (source, views) pairs."""
    for bound in plan.files:
        views = [v[bound.code] for _, v in group if bound.code in v]
        if len(views) < 2:
            continue
        sources = [name for name, v in group if bound.code in v]
        try:
            found = list(bound.check(views) or ())
        except InputChangedError:
            raise
        except Exception as e:
            yield at_record_start(RULE_ERROR, Severity.ERROR, rule_failed(bound.code, e), sources[0], 1)
            continue
        for position, issue in found:
            view = views[position]
            at = view.line_of(issue.index) if issue.index is not None else 1
            yield at_record_start(bound.code, bound.severity, issue, sources[position], at or 1)


def lint_records(
    records: Iterable[Any], plan: Plan, *, source: str = "<memory>", progress: Progress | None = None
) -> tuple[list[Finding], SourceStats]:
    """Lint in-memory records (dicts, or anything JSON-like)."""
    state = ShardResult(source)
    start_folds(plan, state)
    kept: list[Record] = []
    max_errors = plan.settings.max_errors
    for index, data in enumerate(records):
        rec = Record(index, data, source=source)
        if type(data) is not dict:
            rec.problems.append(
                (Problem.NOT_AN_OBJECT, (), f"record is a JSON {io.json_kind(data)}, not an object", None)
            )
        check_record(rec, plan, state)
        kept.append(rec)
        if max_errors is not None and state.errors >= max_errors:
            state.truncated = True
            break
    flush_batches(plan, state)
    if not state.truncated:
        dataset = DatasetHandle(source, formats=state.formats, records=kept, progress=progress)
        by_index = {r.index: r for r in kept}
        state.findings.extend(dataset_findings(plan, dataset, state, lambda wanted: {i: by_index[i] for i in wanted}))
    _failure_summary(state)
    formats = format_counts(state.formats)
    stats = FileStats(
        source,
        len(kept),
        0,
        tuple(sorted(formats.items())),
        state.truncated,
        state.unreadable,
        folds=tuple(state.folds),
        not_applied=(*not_applied(plan, formats), *unanswered(plan, state)),
    )
    return state.findings, stats
