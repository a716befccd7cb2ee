"""The plan: Settings compiled once into what a run needs, with named parts.

``compile_plan`` resolves selection, profile, severities and options, and binds each
rule's options, loading what a rule reads (a JSON Schema file) so that checks do no I/O;
``Plan.preflight`` checks what the selected rules need (an extra, a tokenizer, a model, a
schema file) before any data is read. Plans are frozen and picklable: the one value
every executor sends with a shard.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ftdata import registry
from ftdata.config import SHARED_OPTIONS, SPLIT_OPTIONS, ConfigError, Settings
from ftdata.findings import RULE_ERROR, Severity
from ftdata.profiles import get_profile
from ftdata.requirements import Loader, RequirementError

if TYPE_CHECKING:
    from ftdata.records import Record

#: Records a batched collector is handed at a time: a few dozen records' arrays stay in
#: the CPU cache (measured: 64 texts shingle at half the cost per record of one at a
#: time, 2,048 at more than one at a time).
BATCH_RECORDS = 64
#: Collected values a collector's ``finish`` stage is handed at a time: MinHash
#: signatures cost least per record with about a million shingles per call (measured:
#: 64 records' worth costs some 1.7 times as much per record), while the values waiting
#: stay a few megabytes.
FINISH_RECORDS = 4096


@dataclass(frozen=True, slots=True)
class ReaderOptions:
    """What the reader needs to know (bounds it enforces while parsing)."""

    max_line_bytes: int
    max_depth: int


@dataclass(frozen=True, slots=True)
class BoundRule:
    """A selected rule with its severity and its options bound."""

    rule: registry.Rule
    severity: Severity
    options: Mapping[str, Any]
    check: Callable[..., Any]
    collect: Callable[..., Any] | None = None
    #: ``collect`` for many records at once (the same values, in order), when the rule's
    #: collector offers one (see :attr:`Plan.batch_calls`).
    collect_batch: Callable[..., Any] | None = None
    #: A second stage over many collected values at once, when the rule's collector offers
    #: one (see :attr:`Plan.finish_calls`).
    collect_finish: Callable[..., Any] | None = None
    #: Why a resource the rule needs could not be loaded (raised by ``Plan.preflight``).
    unmet: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        return self.rule.code


class Fold(Protocol):
    """A fold over the records of one file: ``add`` sees every record of the streaming
    pass in order (normalised; unreadable ones too), ``merge`` takes in the fold of the
    shard that follows. Not a rule: it reports nothing, and what it gathers is returned
    on the file's stats (``FileStats.folds``)."""

    def add(self, record: Record) -> None: ...

    def merge(self, later: Any) -> None: ...


@dataclass(frozen=True)
class Plan:
    """What one run checks. ``reader`` maps a reader problem (its rule's name) to the code
    and severity it is reported with; problems of unselected reader rules are dropped."""

    settings: Settings
    reader: Mapping[str, tuple[str, Severity]]
    records: tuple[BoundRule, ...]
    dataset: tuple[BoundRule, ...]
    files: tuple[BoundRule, ...]
    reader_options: ReaderOptions
    #: Factories of :class:`Fold` objects that see every record of the streaming pass
    #: (the audit's figures): picklable, so each shard gets its own and merges them.
    folds: tuple[Callable[[], Fold], ...] = ()

    # Computed once per plan (the pass reads them for every record); a plan is frozen, so
    # they cannot go stale.
    @functools.cached_property
    def format(self) -> str | None:
        """The format spec records are normalised with: the forced format (None: detect)
        and the field mapping, as one picklable string (see ftdata.formats.fields)."""
        return self.settings.format_spec

    @functools.cached_property
    def collectors(self) -> tuple[BoundRule, ...]:
        """Dataset and files rules that gather a value per record during the pass."""
        return tuple(b for b in (*self.dataset, *self.files) if b.collect is not None)

    @functools.cached_property
    def record_checks(self) -> tuple[tuple[Callable[..., Any], str, Severity], ...]:
        """Each record rule as (check, code, severity): what the pass calls per record."""
        return tuple((b.check, b.rule.code, b.severity) for b in self.records)

    @functools.cached_property
    def collect_calls(self) -> tuple[tuple[Callable[..., Any], tuple[str, ...]], ...]:
        """Each collector function with the codes that collect with it: rules that share
        one (FT201-FT204, the system prompt) share one call per record."""
        by_function: dict[Callable[..., Any], list[str]] = {}
        batched = {code for _, codes in self.batch_calls for code in codes}
        for b in self.collectors:
            if b.collect is not None and b.rule.code not in batched:
                by_function.setdefault(b.collect, []).append(b.rule.code)
        return tuple((collect, tuple(codes)) for collect, codes in by_function.items())

    @functools.cached_property
    def batch_calls(self) -> tuple[tuple[Callable[..., Any], tuple[str, ...]], ...]:
        """Collectors that take records a batch at a time, with their codes. A rule's
        collector may offer ``batch(records, **options) -> list`` (one value per record,
        equal to what it gives one record at a time) when array work over a few dozen
        records costs less than per record; the pass then hands it the parsed records in
        batches of :data:`BATCH_RECORDS`. A collector wrapped since the plan was compiled
        (a per-record cache) is called one record at a time."""
        calls = []
        for b in self.collectors:
            own = b.collect is b.rule.collect or (isinstance(b.collect, partial) and b.collect.func is b.rule.collect)
            if b.collect_batch is not None and own:
                calls.append((b.collect_batch, (b.rule.code,)))
        return tuple(calls)

    @functools.cached_property
    def finish_calls(self) -> Mapping[str, Callable[..., Any]]:
        """The ``finish`` stage of each collector that offers one, by code. A collector may
        offer ``finish(values, **options) -> list``: given the values it collected (never
        None), up to :data:`FINISH_RECORDS` at a time in record order, it returns the
        values the rule reads (one each, in order). It is for array work that pays only
        over thousands of records (MinHash signatures), done where the shard is read. The
        rule must accept its collector's values unfinished too: a stage that raises
        leaves them as they were."""
        return {b.rule.code: b.collect_finish for b in self.collectors if b.collect_finish is not None}

    @property
    def selected(self) -> tuple[BoundRule, ...]:
        return (*self.records, *self.dataset, *self.files)

    def preflight(self, *, files: int = 2) -> None:
        """Check what every selected rule needs before any data is read; one
        :class:`~ftdata.requirements.RequirementError` names every rule that cannot run.
        ``files``: how many files the plan is run on; with fewer than two the cross-file
        rules never run, so what they need is not checked (nor loaded)."""
        selected = self.selected if files >= 2 else (*self.records, *self.dataset)
        problems: dict[str, list[str]] = {}
        # the costly checks (loading an embedding model) only once the cheap ones pass: a
        # run that cannot start says so at once
        for costly in (False, True):
            for bound in selected:
                options = {**bound.rule.options, **bound.options}
                causes: list[str | None] = [] if costly else list(bound.unmet)  # loaders: tried when compiled
                causes += [
                    need.check(options)
                    for need in bound.rule.requires
                    if not isinstance(need, Loader) and getattr(need, "costly", False) == costly
                ]
                for cause in causes:
                    if cause:
                        problems.setdefault(cause, []).append(bound.code)
            if problems:
                break
        if problems:
            lines = [
                f"{', '.join(codes)} cannot run: {cause} (or leave them out: --ignore {','.join(codes)})"
                for cause, codes in problems.items()
            ]
            raise RequirementError("; ".join(lines))


_CACHE: dict[bytes, Plan] = {}


def compile_plan(settings: Settings) -> Plan:
    """The plan for ``settings`` (compiled once per distinct settings); ConfigError when invalid."""
    key = settings_key(settings) + _option_files(settings)
    plan = _CACHE.get(key)
    if plan is None:
        if len(_CACHE) > 64:
            _CACHE.clear()
        plan = _CACHE[key] = _compile(settings)
    return plan


def _option_files(settings: Settings) -> bytes:
    """The version (size, mtime) of every file an option names (a JSON Schema a rule
    loads when the plan is compiled), so an edited file compiles a new plan."""
    stamps = []
    for options in settings.options.values():
        for value in options.values():
            if type(value) is str and value and len(value) < 4096:
                try:
                    st = os.stat(value)
                except (OSError, ValueError):
                    continue
                stamps.append(f"{value}\0{st.st_size}\0{st.st_mtime_ns}")
    return "\n".join(stamps).encode("utf-8", "surrogatepass")


def settings_key(settings: Settings, leave_out: tuple[str, ...] = ()) -> bytes:
    """``settings`` as canonical bytes (sorted JSON), without the fields in ``leave_out``:
    equal bytes, equal plans."""
    values = dataclasses.asdict(settings)
    for name in leave_out:
        values.pop(name, None)
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=repr)


def _compile(settings: Settings) -> Plan:
    profile = get_profile(settings.profile) if settings.profile else None
    try:
        extend = (*(profile.extend_select if profile else ()), *settings.extend_select)
        rules = registry.select(settings.select, settings.ignore, extend)
    except KeyError as e:
        raise ConfigError(f"unknown rule selector {e.args[0]!r}") from None
    severity: dict[str, Severity] = {}
    options: dict[str, dict[str, Any]] = {}
    layers: list[tuple[Mapping[str, str], Mapping[str, Mapping[str, Any]]]] = []
    if profile:
        layers.append((profile.severity, profile.options))
    layers.append((settings.severity, settings.options))
    for sev_layer, opt_layer in layers:
        for key, level in sev_layer.items():
            severity[_code(key)] = Severity.parse(level)
        for key, opts in opt_layer.items():
            options.setdefault(_code(key), {}).update(opts)
    shared = {name: getattr(settings, name) for name in SHARED_OPTIONS if getattr(settings, name) is not None}
    from_splits: dict[str, dict[str, Any]] = {}
    for key, value in settings.splits.items():
        for code, option in SPLIT_OPTIONS.get(key, ()):
            from_splits.setdefault(code, {})[option] = value

    def bind(rule: registry.Rule) -> BoundRule:
        known = rule.options
        given = {**{k: v for k, v in shared.items() if k in known}, **from_splits.get(rule.code, {})}
        given.update(options.get(rule.code, {}))
        try:
            opts = rule.check_options(given)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        # What a rule reads (a schema file) is read here, once, not in the check.
        loaded: dict[str, Any] = {}
        unmet: list[str] = []
        for need in rule.requires:
            if isinstance(need, Loader):
                try:
                    loaded.update(need.load({**rule.options, **opts}))
                except RequirementError as e:
                    unmet.append(str(e))
        bound_options = {**opts, **loaded}
        check = partial(rule.func, **bound_options) if bound_options else rule.func
        collect = collect_batch = collect_finish = None
        if rule.collect is not None:
            accepted = inspect.signature(rule.collect).parameters
            wanted = {k: v for k, v in opts.items() if k in accepted}
            collect = partial(rule.collect, **wanted) if wanted else rule.collect
            batch = getattr(rule.collect, "batch", None)
            if callable(batch):
                collect_batch = partial(batch, **wanted) if wanted else batch
            finish = getattr(rule.collect, "finish", None)
            if callable(finish):
                taken = inspect.signature(finish).parameters
                given_finish = {k: v for k, v in opts.items() if k in taken}
                collect_finish = partial(finish, **given_finish) if given_finish else finish
        severity_of = severity.get(rule.code, rule.severity)
        return BoundRule(rule, severity_of, opts, check, collect, collect_batch, collect_finish, tuple(unmet))

    reader: dict[str, tuple[str, Severity]] = {}
    records: list[BoundRule] = []
    dataset: list[BoundRule] = []
    files: list[BoundRule] = []
    by_scope = {registry.Scope.RECORD: records, registry.Scope.DATASET: dataset, registry.Scope.FILES: files}
    for rule in rules:
        bound = bind(rule)
        if rule.scope is registry.Scope.READER:
            reader[rule.name] = (rule.code, bound.severity)
        else:
            by_scope[rule.scope].append(bound)
    # FT000 cannot be deselected: a rule that could not run always makes the run incomplete.
    reader[registry.get(RULE_ERROR).name] = (RULE_ERROR, Severity.ERROR)  # always on, always an error
    return Plan(settings, reader, tuple(records), tuple(dataset), tuple(files), _reader_options(options))


def _reader_options(options: Mapping[str, Mapping[str, Any]]) -> ReaderOptions:
    """Each reader rule declares which of its options bound the reader; they apply even
    when the rule itself is not selected (the reader must stop somewhere)."""
    values: dict[str, Any] = {}
    for rule in registry.all_rules():
        for option, field_name in rule.reader_options.items():
            given = options.get(rule.code, {})
            value = given[option] if option in given else rule.options[option]
            if option in given:
                try:
                    rule.check_options({option: value})
                except ValueError as e:
                    raise ConfigError(str(e)) from None
            values[field_name] = value
    fields = {f.name for f in dataclasses.fields(ReaderOptions)}
    missing = fields - values.keys()
    if missing:  # pragma: no cover - a registry without the FT0xx rules
        raise ConfigError(f"no rule declares the reader options {sorted(missing)}")
    return ReaderOptions(**{k: v for k, v in values.items() if k in fields})


def _code(key: str) -> str:
    try:
        return registry.get(key).code
    except KeyError:
        raise ConfigError(f"unknown rule {key!r}") from None
