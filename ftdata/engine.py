"""The lint engine: one streaming pass for reader and record checks, then dataset rules.

A plan is compiled once from Settings (selected rules, bound options, severities). Each
source is read as a stream; large JSONL files are cut at line boundaries into ranges
that worker processes check with the same code, and the results are merged in order.
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import os
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from ftdata import io, jsonstrict, registry
from ftdata.config import SHARED_OPTIONS, SPLIT_OPTIONS, ConfigError, Settings
from ftdata.dataset import FORMAT_CODES, Column, Dataset, DatasetView
from ftdata.findings import Finding, Issue, PathT, Severity, SourceStats
from ftdata.formats import normalise
from ftdata.profiles import get_profile
from ftdata.progress import Progress
from ftdata.records import Record

#: Files at least this large are checked by several processes when more than one CPU is free.
PARALLEL_MIN_BYTES = 32 * 1024 * 1024

# (code, severity, message, path, char offset, point at key, related)
_Pending = tuple[str, Severity, str, PathT, int | None, bool, tuple[int, ...]]


@dataclass
class Plan:
    """Settings compiled into what the hot loop needs."""

    settings: Settings
    source_rules: dict[str, tuple[str, Severity]]
    record_rules: list[tuple[str, Severity, Callable[[Record], Any]]]
    dataset_rules: list[tuple[registry.Rule, Severity, Callable[[DatasetView], Any]]]
    collectors: list[tuple[str, Callable[[Record], Any]]]
    files_rules: list[tuple[registry.Rule, Severity, Callable[..., Any]]]
    rule_error: tuple[str, Severity] | None
    max_line_bytes: int = io.DEFAULT_MAX_LINE_BYTES
    max_depth: int = io.DEFAULT_MAX_DEPTH

    @property
    def format(self) -> str | None:
        return self.settings.format


def compile_plan(settings: Settings) -> Plan:
    """Resolve selection, profile, severities and options; ConfigError when invalid."""
    profile = get_profile(settings.profile) if settings.profile else None
    try:
        extend = (*(profile.extend_select if profile else ()), *settings.extend_select)
        rules = registry.select(settings.select, settings.ignore, extend)
    except KeyError as e:
        raise ConfigError(f"unknown rule selector {e.args[0]!r}") from None
    severity: dict[str, Severity] = {}
    options: dict[str, dict[str, Any]] = {}
    layers = [(profile.severity, profile.options)] if profile else []
    layers.append((settings.severity, settings.options))
    for sev_layer, opt_layer in layers:
        for key, level in sev_layer.items():
            severity[_code(key)] = Severity.parse(level)
        for key, opts in opt_layer.items():
            options.setdefault(_code(key), {}).update(opts)
    plan = Plan(settings, {}, [], [], [], [], None)
    shared = {name: getattr(settings, name) for name in SHARED_OPTIONS if getattr(settings, name) is not None}
    from_splits: dict[str, dict[str, Any]] = {}
    for key, value in settings.splits.items():
        for code, option in SPLIT_OPTIONS.get(key, ()):
            from_splits.setdefault(code, {})[option] = value
    for rule in rules:
        sev = severity.get(rule.code, rule.severity)
        given = options.get(rule.code, {})
        known = rule.options
        given = {**{k: v for k, v in shared.items() if k in known}, **from_splits.get(rule.code, {}), **given}
        try:
            opts = rule.check_options(given)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if rule.scope is registry.Scope.SOURCE:
            plan.source_rules[rule.name] = (rule.code, sev)
            if rule.name == "line-too-long":
                plan.max_line_bytes = opts.get("max_bytes", plan.max_line_bytes)
            elif rule.name == "nesting-too-deep":
                plan.max_depth = opts.get("max_depth", plan.max_depth)
            elif rule.name == "rule-error":
                plan.rule_error = (rule.code, sev)
        elif rule.scope is registry.Scope.RECORD:
            plan.record_rules.append((rule.code, sev, partial(rule.func, **opts) if opts else rule.func))
        else:
            bound = partial(rule.func, **opts) if opts else rule.func
            if rule.scope is registry.Scope.FILES:
                plan.files_rules.append((rule, sev, bound))
            else:
                plan.dataset_rules.append((rule, sev, bound))
            if rule.collect is not None:
                accepted = inspect.signature(rule.collect).parameters
                shared = {k: v for k, v in opts.items() if k in accepted}
                plan.collectors.append((rule.code, partial(rule.collect, **shared) if shared else rule.collect))
    # Options of reader rules apply even when the rule itself is not selected.
    for name, attr, key in (
        ("line-too-long", "max_line_bytes", "max_bytes"),
        ("nesting-too-deep", "max_depth", "max_depth"),
    ):
        code = registry.get(name).code
        if key in options.get(code, {}):
            setattr(plan, attr, options[code][key])
    return plan


def _code(key: str) -> str:
    try:
        return registry.get(key).code
    except KeyError:
        raise ConfigError(f"unknown rule {key!r}") from None


@dataclass
class _State:
    """What one pass over one source (or one range of it) accumulates."""

    source: str
    findings: list[Finding] = field(default_factory=list)
    errors: int = 0
    formats: bytearray = field(default_factory=bytearray)
    collected: dict[str, Column] = field(default_factory=dict)
    stats: io.ReadStats = field(default_factory=io.ReadStats)
    truncated: bool = False


def check_record(rec: Record, plan: Plan, state: _State) -> None:
    """Normalise one record and run every selected record rule and collector on it."""
    if type(rec.data) is dict:
        normalise(rec, plan.format)
    pending: list[_Pending] = []
    if rec.problems:
        source_rules = plan.source_rules
        for kind, path, message, offset in rec.problems:
            entry = source_rules.get(kind)
            if entry is not None:
                pending.append((entry[0], entry[1], message, path, offset, False, ()))
    if type(rec.data) is dict:
        for code, sev, fn in plan.record_rules:
            try:
                issues = fn(rec)
                if issues:
                    for issue in issues:
                        pending.append((code, sev, issue.message, issue.path, None, issue.key, issue.related))
            except Exception as e:  # a broken rule must not stop the run
                if plan.rule_error is not None:
                    ecode, esev = plan.rule_error
                    pending.append((ecode, esev, f"rule {code} failed: {type(e).__name__}: {e}", (), None, False, ()))
        for code, collect in plan.collectors:
            value = collect(rec)
            if value is not None:
                column = state.collected.get(code)
                if column is None:
                    column = state.collected[code] = Column()
                column.append(rec.index, value)
    state.formats.append(FORMAT_CODES.get(rec.format, 0))
    if pending:
        for finding in stamp(rec, pending):
            state.findings.append(finding)
            if finding.severity >= Severity.ERROR:
                state.errors += 1


def fingerprint(rec: Record) -> str:
    if rec.raw is not None:
        payload = rec.raw.strip()
    elif rec.data is not None:
        try:
            payload = orjson.dumps(rec.data, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            payload = repr(rec.data).encode()
    else:
        payload = b""
    return hashlib.sha256(payload).hexdigest()[:16]


def stamp(rec: Record, pending: list[_Pending]) -> Iterator[Finding]:
    """Turn pending issues of one record into Findings with line and column."""
    text = None
    spans: dict[PathT, jsonstrict.Span] = {}
    if rec.raw is not None and rec.line is not None:
        wanted = {p[3][:n] for p in pending if p[4] is None and p[3] for n in range(1, len(p[3]) + 1)}
        if wanted:
            text = rec.raw.decode("utf-8", "replace")
            spans = jsonstrict.locate(text, wanted)
    digest = fingerprint(rec)
    for code, sev, message, path, offset, key, related in pending:
        line = rec.line
        column = rec.column if line is not None else None
        if line is not None and rec.raw is not None:
            at = offset
            if at is None and path:
                for n in range(len(path), 0, -1):
                    span = spans.get(path[:n])
                    if span is not None:
                        at = span[0] if key and n == len(path) and span[0] is not None else span[1]
                        break
            if at is not None:
                if text is None:
                    text = rec.raw.decode("utf-8", "replace")
                dl, dc = jsonstrict.line_col(text, at)
                line = rec.line + dl
                column = rec.column + dc if dl == 0 else dc + 1
        yield Finding(code, sev, message, rec.source, line, column, rec.index, path, related, digest)


def _file_finding(
    plan: Plan, kind: str, source: str, line: int | None, column: int | None, message: str
) -> Finding | None:
    entry = plan.source_rules.get(kind)
    if entry is None:
        return None
    return Finding(entry[0], entry[1], message, source, line, column, None, (), (), "")


def _scan(
    items: Iterable[Record | io.FileProblem],
    plan: Plan,
    state: _State,
    max_errors: int | None,
    tick: Callable[[int], None] | None = None,
) -> None:
    # Records, their normalised views and findings hold no reference cycles, so reference
    # counting frees them; the cyclic collector would only rescan young objects.
    enabled = gc.isenabled()
    gc.disable()
    try:
        _scan_items(items, plan, state, max_errors, tick)
    finally:
        if enabled:
            gc.enable()


def _scan_items(
    items: Iterable[Record | io.FileProblem],
    plan: Plan,
    state: _State,
    max_errors: int | None,
    tick: Callable[[int], None] | None,
) -> None:
    for item in items:
        if type(item) is Record:
            if tick is not None and not item.index & 0x1FFF:  # every 8,192 records: the byte offset
                tick(item.offset or 0)
            check_record(item, plan, state)
            if max_errors is not None and state.errors >= max_errors:
                state.truncated = True
                break
        else:
            finding = _file_finding(plan, item.kind, state.source, item.line, item.column, item.message)
            if finding is not None:
                state.findings.append(finding)
                if finding.severity >= Severity.ERROR:
                    state.errors += 1


def _lint_range(path: str, source: str, settings: Settings, start: int, end: int | None) -> _State:
    """Check one byte range of a JSONL file (worker process entry point)."""
    plan = compile_plan(settings)
    state = _State(source)
    items = io.read_jsonl(
        Path(path),
        state.stats,
        source=source,
        start=start,
        end=end,
        max_line_bytes=plan.max_line_bytes,
        max_depth=plan.max_depth,
    )
    _scan(items, plan, state, settings.max_errors)
    return state


def _boundaries(path: Path, size: int, parts: int) -> list[int]:
    """Offsets that cut the file into ``parts`` ranges, each beginning at a line start."""
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


def _merge(parts: list[_State], source: str, max_errors: int | None) -> _State:
    total = _State(source)
    line_shift = index_shift = 0
    for part in parts:
        for f in part.findings:
            if total.truncated:
                break
            if line_shift or index_shift:
                f = replace(
                    f,
                    line=f.line + line_shift if f.line is not None else None,
                    index=f.index + index_shift if f.index is not None else None,
                )
            total.findings.append(f)
            if f.severity >= Severity.ERROR:
                total.errors += 1
                if max_errors is not None and total.errors >= max_errors:
                    total.truncated = True
        total.formats += part.formats
        for code, column in part.collected.items():
            total.collected.setdefault(code, Column()).extend(column, index_shift)
        s = part.stats
        if s.crlf_lines and not total.stats.crlf_lines:
            total.stats.first_crlf_line = s.first_crlf_line + line_shift
        total.stats.crlf_lines += s.crlf_lines
        total.stats.missing_final_newline = s.missing_final_newline
        line_shift += s.lines
        index_shift += s.records
        total.truncated = total.truncated or part.truncated
        if part.truncated:
            break
    total.stats.lines = line_shift
    total.stats.records = index_shift
    return total


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def lint_file(
    path: Path,
    settings: Settings,
    *,
    source: str | None = None,
    jobs: int | None = None,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
    views: dict[str, DatasetView] | None = None,
    progress: Progress | None = None,
) -> tuple[list[Finding], SourceStats]:
    """Lint one JSONL or JSON-array file. JSONL files of at least ``parallel_min_bytes``
    are checked in ``jobs`` processes (default: the CPUs available). When ``views`` is
    given, it receives the file's view for each cross-file (FILES) rule. ``progress``
    hears of the bytes read and of the long dataset rules."""
    plan = compile_plan(settings)
    name = source or str(path)
    container = io.container_of(path)
    size = path.stat().st_size
    jobs = default_jobs() if jobs is None else max(1, jobs)
    if container == "jsonl" and jobs > 1 and size >= parallel_min_bytes:
        cuts = _boundaries(path, size, jobs * 4)
        ranges = list(zip(cuts, [*cuts[1:], None], strict=True))
        with ProcessPoolExecutor(max_workers=jobs, mp_context=_mp_context()) as pool:
            futures = {pool.submit(_lint_range, str(path), name, settings, a, b): k for k, (a, b) in enumerate(ranges)}
            states: list[Any] = [None] * len(ranges)
            read = 0
            for future in as_completed(futures):
                k = futures[future]
                states[k] = future.result()
                start, end = ranges[k]
                read += (size if end is None else end) - start
                if progress is not None:
                    progress(f"reading {path.name}", read, size)
            state = _merge(states, name, settings.max_errors)
    else:
        state = _State(name)
        items = io.read(path, state.stats, source=name, max_line_bytes=plan.max_line_bytes, max_depth=plan.max_depth)
        tick = None
        if progress is not None:
            stage = f"reading {path.name}"
            tick = lambda offset: progress(stage, offset, size)  # noqa: E731
        _scan(items, plan, state, settings.max_errors, tick)
    stats = state.stats
    if stats.crlf_lines:
        f = _file_finding(
            plan,
            "crlf-line-ending",
            name,
            stats.first_crlf_line,
            1,
            f"file uses CRLF line endings ({stats.crlf_lines:,} of {stats.lines:,} lines)",
        )
        if f:
            state.findings.append(f)
    if stats.missing_final_newline and stats.container == "jsonl" and not state.truncated:
        f = _file_finding(plan, "missing-final-newline", name, stats.lines, 1, "file does not end with a newline")
        if f:
            state.findings.append(f)
    if not state.truncated:
        dataset = Dataset(
            name,
            formats=state.formats,
            reread=partial(_reread, path, plan, name),
            fetch=partial(_fetch_records, path, plan, name),
            lines=partial(_record_lines, path, plan, name),
            progress=progress,
        )
        state.findings.extend(_dataset_findings(plan, dataset, state, partial(_raw_records, path, plan, name)))
        if views is not None:
            for rule, _, _ in plan.files_rules:
                views[rule.code] = DatasetView(dataset, state.collected.get(rule.code))
    formats = _format_counts(state.formats)
    return state.findings, SourceStats(
        name, stats.records, stats.lines, tuple(sorted(formats.items())), state.truncated
    )


def _mp_context() -> Any:
    """Fork where it is safe (quick to start); spawn once torch or a Rust tokenizer has
    started threads in this process, as forking them can deadlock."""
    import multiprocessing

    threaded = any(name in sys.modules for name in ("torch", "tokenizers"))
    fork = "fork" in multiprocessing.get_all_start_methods() and not threaded
    return multiprocessing.get_context("fork" if fork else "spawn")


def _format_counts(codes: bytearray) -> Counter[str]:
    names = {code: name for name, code in FORMAT_CODES.items()}
    return Counter({names[code]: codes.count(code) for code in set(codes) if names[code] is not None})


def _reread(path: Path, plan: Plan, source: str) -> Iterator[Record]:
    stats = io.ReadStats()
    for item in io.read(path, stats, source=source, max_line_bytes=plan.max_line_bytes, max_depth=plan.max_depth):
        if type(item) is Record and type(item.data) is dict:
            normalise(item, plan.format)
            yield item


def _fetch_records(path: Path, plan: Plan, source: str, wanted: set[int]) -> dict[int, Record]:
    found = _raw_records(path, plan, source, wanted)
    for rec in found.values():
        if type(rec.data) is dict:
            normalise(rec, plan.format)
    return found


def _record_lines(path: Path, plan: Plan, source: str) -> array:
    """The line of every record, from a light pass (JSON Lines) or a full read."""
    lines = array("l")
    if io.container_of(path) == "jsonl":
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if raw.strip():
                    lines.append(number)
        return lines
    for item in io.read(
        path, io.ReadStats(), source=source, max_line_bytes=plan.max_line_bytes, max_depth=plan.max_depth
    ):
        if type(item) is Record:
            lines.append(item.line or 0)
    return lines


def _raw_records(path: Path, plan: Plan, source: str, wanted: set[int]) -> dict[int, Record]:
    """The records at the ``wanted`` indices, read again (raw bytes, line and column only)."""
    found: dict[int, Record] = {}
    if not wanted:
        return found
    last = max(wanted)
    for item in io.read(
        path, io.ReadStats(), source=source, max_line_bytes=plan.max_line_bytes, max_depth=plan.max_depth
    ):
        if type(item) is Record:
            if item.index in wanted:
                found[item.index] = item
            if item.index >= last:
                break
    return found


def _dataset_findings(
    plan: Plan,
    dataset: Dataset,
    state: _State,
    fetch: Callable[[set[int]], dict[int, Record]] | None,
) -> Iterator[Finding]:
    """Run the dataset rules; records named by their issues are located in one more read."""
    located: list[tuple[str, Severity, Issue]] = []
    for rule, sev, fn in plan.dataset_rules:
        view = DatasetView(dataset, state.collected.get(rule.code))
        try:
            located.extend((rule.code, sev, issue) for issue in fn(view) or ())
        except Exception as e:
            if plan.rule_error is not None:
                code, esev = plan.rule_error
                message = f"rule {rule.code} failed: {type(e).__name__}: {e}"
                line = 1 if fetch is not None else None
                yield Finding(code, esev, message, state.source, line, line)
    records = fetch({i.index for _, _, i in located if i.index is not None}) if fetch is not None else {}
    for code, sev, issue in located:
        rec = records.get(issue.index) if issue.index is not None else None
        if rec is not None:
            yield next(stamp(rec, [(code, sev, issue.message, issue.path, None, issue.key, issue.related)]))
        else:
            line = 1 if fetch is not None else None
            yield Finding(code, sev, issue.message, state.source, line, line, issue.index, issue.path, issue.related)


def files_findings(plan: Plan, group: list[tuple[str, dict[str, DatasetView]]]) -> Iterator[Finding]:
    """Run the cross-file rules over the files of one dataset: (source, views) pairs."""
    for rule, sev, fn in plan.files_rules:
        views = [v[rule.code] for _, v in group if rule.code in v]
        if len(views) < 2:
            continue
        sources = [name for name, v in group if rule.code in v]
        for position, issue in fn(views) or ():
            view = views[position]
            line = view.line_of(issue.index) if issue.index is not None else 1
            yield Finding(
                rule.code, sev, issue.message, sources[position], line or 1, 1, issue.index, issue.path, issue.related
            )


def lint_records(
    records: Iterable[Any], settings: Settings, *, source: str = "<memory>", progress: Progress | None = None
) -> tuple[list[Finding], SourceStats]:
    """Lint in-memory records (dicts, or anything JSON-like)."""
    plan = compile_plan(settings)
    state = _State(source)
    kept: list[Record] = []
    for index, data in enumerate(records):
        rec = Record(index, data, source=source)
        if type(data) is not dict:
            rec.problems.append(("not-an-object", (), f"record is a JSON {io.json_kind(data)}, not an object", None))
        check_record(rec, plan, state)
        kept.append(rec)
        if settings.max_errors is not None and state.errors >= settings.max_errors:
            state.truncated = True
            break
    if not state.truncated:
        dataset = Dataset(source, formats=state.formats, records=kept, progress=progress)
        by_index = {r.index: r for r in kept}
        state.findings.extend(_dataset_findings(plan, dataset, state, lambda wanted: {i: by_index[i] for i in wanted}))
    formats = _format_counts(state.formats)
    return state.findings, SourceStats(source, len(kept), 0, tuple(sorted(formats.items())), state.truncated)
