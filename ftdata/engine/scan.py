"""The streaming pass: reader problems and record rules for every record, and the values
dataset rules collect. ``scan_shard`` is the one function every executor runs."""

from __future__ import annotations

import gc
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftdata import io
from ftdata.engine.dataset import FORMAT_CODES, Column
from ftdata.engine.locate import Pending, stamp
from ftdata.engine.plan import BATCH_RECORDS, FINISH_RECORDS, Plan
from ftdata.findings import RULE_ERROR, Finding, Issue, Severity
from ftdata.formats import normalise
from ftdata.problems import Problem
from ftdata.records import Record

#: Failures of one rule reported record by record before they are only counted.
RULE_ERRORS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Shard:
    """A byte range of a JSON Lines file (``end`` None: to the end), or a whole file."""

    path: str
    source: str
    start: int = 0
    end: int | None = None


@dataclass
class ShardResult:
    """What one pass over one shard accumulates: findings, the format of every record,
    collected columns, reader statistics and rule failures."""

    source: str
    findings: list[Finding] = field(default_factory=list)
    errors: int = 0
    formats: bytearray = field(default_factory=bytearray)
    collected: dict[str, Column] = field(default_factory=dict)
    stats: io.ReadStats = field(default_factory=io.ReadStats)
    truncated: bool = False
    rule_failures: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0
    folds: list[Any] = field(default_factory=list)  # one per ``Plan.folds``, in order
    #: Parsed records waiting for the batched collectors (see ``flush_batches``).
    waiting: list[Record] = field(default_factory=list)
    #: Collected values waiting for their collector's ``finish`` stage, by code.
    unfinished: dict[str, Column] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)
        if finding.severity >= Severity.ERROR:
            self.errors += 1


def rule_failed(code: str, e: BaseException) -> Issue:
    """The FT000 issue for rule ``code`` raising ``e``."""
    return Issue(f"rule {code} failed: {type(e).__name__}: {e}")


def check_record(rec: Record, plan: Plan, result: ShardResult) -> None:
    """Normalise one record and run every selected record rule and collector on it."""
    spec, checks, collects = plan.format, plan.record_checks, plan.collect_calls
    data = rec.data
    parsed = type(data) is dict
    if parsed:
        normalise(rec, spec)
    pending: list[Pending] = []
    if rec.problems:
        reader = plan.reader
        for kind, path, message, offset in rec.problems:
            entry = reader.get(kind)
            if entry is not None:
                pending.append((entry[0], entry[1], Issue(message, path, offset=offset)))
    if parsed:
        for check, code, severity in checks:
            try:
                issues = check(rec)
                if issues:
                    pending.extend((code, severity, issue) for issue in issues)
            except Exception as e:  # a broken rule must not stop the run; it makes it incomplete
                _failure(result, pending, code, e)
        if collects:
            collected, finishes = result.collected, plan.finish_calls
            index = rec.index
            for collect, codes in collects:
                try:
                    value = collect(rec)
                except Exception as e:
                    for code in codes:
                        _failure(result, pending, code, e)
                    continue
                if value is not None:
                    for code in codes:
                        into = result.unfinished if code in finishes else collected
                        column = into.get(code)
                        if column is None:
                            column = into[code] = Column()
                        column.append(index, value)
                        if into is result.unfinished and len(column) >= FINISH_RECORDS:
                            finish_values(plan, result, final=False)
        if plan.batch_calls:
            result.waiting.append(rec)
            if len(result.waiting) >= BATCH_RECORDS:
                flush_batches(plan, result, final=False)
    for fold in result.folds:
        fold.add(rec)
    if not rec.readable:
        result.unreadable += 1
    result.formats.append(FORMAT_CODES.get(rec.format, 0))
    if pending:
        for finding in stamp(rec, pending):
            result.add(finding)


def flush_batches(plan: Plan, result: ShardResult, *, final: bool = True) -> None:
    """Run the batched collectors on the records waiting, and add their values to the
    columns in record order. A batch that raises is run again one record at a time with
    the rule's own collector, so that a failure is reported on its record (FT000). With
    ``final`` (the end of the pass), every value still waiting for a ``finish`` stage
    goes through it too (see :func:`finish_values`)."""
    records, result.waiting = result.waiting, []
    finishes = plan.finish_calls
    for batch, codes in plan.batch_calls if records else ():
        try:
            values = batch(records)
        except Exception:
            values = [_collect_one(plan, result, codes, rec) for rec in records]
        for code in codes:
            into = result.unfinished if code in finishes else result.collected
            column = into.get(code)
            for rec, value in zip(records, values, strict=True):
                if value is not None:
                    if column is None:
                        column = into[code] = Column()
                    column.append(rec.index, value)
    if result.unfinished:
        finish_values(plan, result, final=final)


def finish_values(plan: Plan, result: ShardResult, *, final: bool) -> None:
    """Move the values waiting for a collector's ``finish`` stage (see
    :attr:`Plan.finish_calls`) to their columns through it: those of a code with
    :data:`FINISH_RECORDS` waiting, or all with ``final``. A stage that raises leaves its
    values as they were collected, which the rule accepts (it then does the work itself)."""
    for code, waiting in list(result.unfinished.items()):
        if not final and len(waiting) < FINISH_RECORDS:
            continue
        del result.unfinished[code]
        values = waiting.values
        try:
            finished = plan.finish_calls[code](values)
            if len(finished) != len(values):
                raise ValueError(f"finish gave {len(finished)} values for {len(values)}")
        except Exception:
            finished = values
        waiting.values = list(finished)
        column = result.collected.get(code)
        if column is None:
            result.collected[code] = waiting
        else:
            column.extend(waiting)


def _collect_one(plan: Plan, result: ShardResult, codes: tuple[str, ...], rec: Record) -> Any:
    collect = next(b.collect for b in plan.collectors if b.rule.code == codes[0])
    assert collect is not None
    try:
        return collect(rec)
    except Exception as e:
        pending: list[Pending] = []
        for code in codes:
            _failure(result, pending, code, e)
        for finding in stamp(rec, pending):
            result.add(finding)
        return None


def _failure(result: ShardResult, pending: list[Pending], code: str, e: BaseException) -> None:
    result.rule_failures[code] += 1
    if result.rule_failures[code] <= RULE_ERRORS_SHOWN:
        pending.append((RULE_ERROR, Severity.ERROR, rule_failed(code, e)))


def start_folds(plan: Plan, result: ShardResult) -> None:
    """Give ``result`` a fresh fold for each of ``plan.folds`` (once)."""
    if plan.folds and not result.folds:
        result.folds = [make() for make in plan.folds]


def scan_items(
    items: Iterable[Record | io.FileProblem],
    plan: Plan,
    result: ShardResult,
    tick: Callable[[int], None] | None = None,
) -> None:
    """Check every record of ``items``; stop at ``max_errors`` errors."""
    max_errors = plan.settings.max_errors
    start_folds(plan, result)
    items = _single_documents(items, plan, result)
    # Records, their normalised views and findings hold no reference cycles, so reference
    # counting frees them; the cyclic collector would only rescan young objects.
    enabled = gc.isenabled()
    gc.disable()
    try:
        for item in items:
            if type(item) is Record:
                if tick is not None and not item.index & 0x1FFF:  # every 8,192 records: the byte offset
                    tick(item.offset or 0)
                check_record(item, plan, result)
                if max_errors is not None and result.errors >= max_errors:
                    result.truncated = True
                    break
            else:
                assert isinstance(item, io.FileProblem)
                finding = file_finding(plan, item.kind, result.source, item.line, item.column, item.message)
                if finding is not None:
                    result.add(finding)
        flush_batches(plan, result)
    finally:
        if enabled:
            gc.enable()


def _single_documents(
    items: Iterable[Record | io.FileProblem], plan: Plan, result: ShardResult
) -> Iterator[Record | io.FileProblem]:
    """``items``, except that a ``.json`` file holding one JSON object in no format (a
    ``package.json``) is reported once as not a dataset (FT014) instead of as a record in
    no format. The first record of a JSON stream is held until the next item shows
    whether it is the only one."""
    iterator = iter(items)
    for item in iterator:
        if type(item) is not Record or item.index != 0 or not _single_document_file(result):
            yield item
            continue
        following = next(iterator, None)
        if following is None and type(item.data) is dict and _in_no_format(item, plan):
            finding = file_finding(
                plan,
                Problem.NOT_A_DATASET,
                result.source,
                item.line,
                item.column,
                "file holds a single JSON object in no dataset format, not a list of records: "
                f"not a dataset (keys {', '.join(repr(k) for k in list(item.data)[:6])})",
            )
            if finding is not None:
                result.add(finding)
            result.unreadable += 1
            result.formats.append(0)
            return
        yield item
        if following is not None:
            yield following
        yield from iterator
        return


def _single_document_file(result: ShardResult) -> bool:
    """Whether the file may hold one JSON document: a ``.json`` file not holding an array
    (one object on one line reads as JSON Lines)."""
    container = result.stats.container
    return container == "json-stream" or (container != "json-array" and result.source.lower().endswith(".json"))


def _in_no_format(rec: Record, plan: Plan) -> bool:
    probe = Record(rec.index, rec.data, source=rec.source)
    normalise(probe, plan.format)
    return probe.format is None


def file_finding(
    plan: Plan, kind: str, source: str, line: int | None, column: int | None, message: str
) -> Finding | None:
    """A finding of the file itself (not of one record), when its reader rule is selected."""
    entry = plan.reader.get(kind)
    if entry is None:
        return None
    return Finding(entry[0], entry[1], message, source, line, column, None, (), (), "")


def scan_shard(shard: Shard, plan: Plan) -> ShardResult:
    """Read and check one shard. Pure in what it returns, picklable in what it takes: the
    function a serial, process or cluster executor runs."""
    result = ShardResult(shard.source)
    options = plan.reader_options
    items = io.read_jsonl(
        Path(shard.path),
        result.stats,
        source=shard.source,
        start=shard.start,
        end=shard.end,
        max_line_bytes=options.max_line_bytes,
        max_depth=options.max_depth,
    )
    scan_items(items, plan, result)
    return result


def cut(path: Path, size: int, parts: int) -> list[int]:
    """Offsets that cut a JSON Lines file into ``parts`` ranges, each at a line start."""
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, parts):
            f.seek(max(cuts[-1], size * k // parts))
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                nl = chunk.find(b"\n")
                if nl != -1:
                    f.seek(nl + 1 - len(chunk), os.SEEK_CUR)
                    break
            pos = f.tell()
            if pos >= size:
                break
            if pos > cuts[-1]:
                cuts.append(pos)
    return cuts


def shards(path: Path, source: str, size: int, parts: int) -> list[Shard]:
    """The shards of a JSON Lines file for ``parts`` workers' worth of ranges."""
    offsets = cut(path, size, parts)
    # Absolute: a cluster's workers do not share the driver's working folder.
    where = str(path.absolute())
    return [Shard(where, source, a, b) for a, b in zip(offsets, [*offsets[1:], None], strict=True)]
