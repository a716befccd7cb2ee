"""The front doors: ``ftdata.lint`` (and, lazily, the curation verbs re-exported from
``ftdata``). Each resolves settings, compiles one plan per distinct settings, checks what
the selected rules need, then runs the engine."""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdata.baseline import apply_baseline
from ftdata.config import ConfigError, Settings, find_config, load_config, validate
from ftdata.engine.cache import LintCache, resolve_cache
from ftdata.engine.dataset import DatasetView
from ftdata.engine.plan import Fold, Plan, compile_plan
from ftdata.engine.run import files_findings, lint_file, lint_records
from ftdata.executors import Executor, for_engine
from ftdata.findings import Finding, Report, SourceStats
from ftdata.io import iter_data_files
from ftdata.progress import Progress
from ftdata.splitnames import dataset_groups

if TYPE_CHECKING:  # pragma: no cover
    from ftdata.curation.fix import FixResult

PathLike = str | os.PathLike[str]


def lint(
    source: PathLike | Iterable[PathLike] | Iterable[Mapping[str, Any]],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    extend_select: Iterable[str] | None = None,
    profile: str | None = None,
    format: str | None = None,
    fields: Mapping[str, str] | None = None,
    dataset_info: PathLike | bool | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    severity: Mapping[str, str] | None = None,
    max_errors: int | None = None,
    tokenizer: str | None = None,
    max_length: int | None = None,
    baseline: PathLike | None = None,
    config: PathLike | bool = True,
    jobs: int | None = None,
    executor: Executor | None = None,
    engine: str | None = None,
    address: str | None = None,
    work_dir: PathLike | None = None,
    folds: Sequence[Callable[[], Fold]] = (),
    progress: Progress | None = None,
    cache: bool | PathLike = False,
) -> Report:
    """Lint a dataset and return a :class:`~ftdata.findings.Report`.

    ``source`` is a path (a file, or a folder searched for .jsonl/.ndjson/.json files), a
    list of paths, or in-memory records (a list of dicts). ``select``/``ignore``/
    ``extend_select`` take rule codes, code prefixes or names; ``profile`` is one of
    ``openai``, ``together``, ``mistral``, ``trl``; ``format`` forces a format; ``options``
    maps a rule to its options and ``severity`` a rule to a severity. ``tokenizer`` and
    ``max_length`` fill the options of that name of every token rule (FT5xx).

    ``fields`` maps the file's own keys onto a type's (``{"question": "prompt",
    "answer": "completion"}``; sources may be dotted paths, see docs/formats.md), on top
    of ``[tool.ftdata.fields]``. A LLaMA-Factory ``dataset_info.json`` next to a file (or
    the one ``dataset_info`` names; False: none) gives that file's format and columns;
    ``fields`` wins over it. Findings on mapped keys point at the keys as written.

    For files, ``[tool.ftdata]`` in the nearest pyproject.toml (or ftdata.toml) applies
    unless ``config=False``; pass a path to use that file instead. Keyword arguments win
    over the file. ``progress(stage, done, total)`` hears how far reading and the long
    dataset rules (near duplicates, embeddings) are; ``executor`` runs the shards of large
    files (default: ``jobs`` processes, or a Ray cluster when ``engine="ray"``, at
    ``address`` or the local one; both also come from ``[tool.ftdata]``; ``work_dir``:
    where the cluster's dataset stages keep their intermediates, on storage every node
    sees, default a temporary folder). Each of
    ``folds`` makes a :class:`~ftdata.engine.plan.Fold` that sees every record of the
    pass (how the audit gathers its figures in the same read); the filled folds of a
    file are its ``report.sources[i].folds``.

    ``cache=True`` keeps each file's findings in ``.ftdata_cache`` of the project root
    (or ``cache-dir`` of ``[tool.ftdata]``, or ``FTDATA_CACHE_DIR``), a path keeps them
    there: a file unchanged since a run with the same settings is only hashed, and the
    report is the same. Off by default here (the CLI turns it on): a library call should
    not leave a folder behind in whatever directory its caller runs in, and a notebook
    often lints data that is about to change in memory anyway. ``FTDATA_NO_CACHE=1``
    turns it off everywhere. A run with ``folds`` does not use it.

    Before any data is read, what the selected rules need (an extra, a tokenizer, a model,
    a schema) is checked: :class:`~ftdata.requirements.RequirementError` (a ConfigError)
    names the rules and the fix. A rule that raises while running does not stop the run:
    it becomes an FT000 finding and the report is ``incomplete``. Raises ConfigError on
    invalid settings and ``OSError`` when a file cannot be read (or changes while it is
    read); never on bad data.
    """
    overrides = {
        **_selection(select, ignore, extend_select, profile, format),
        "fields": dict(fields) if fields else None,
        "options": options,
        "severity": severity,
        "max_errors": max_errors,
        "tokenizer": tokenizer,
        "max_length": max_length,
        "engine": engine,
        "address": address,
    }
    paths = _as_paths(source)
    findings: list[Finding] = []
    stats: list[SourceStats] = []
    fail_on = "error"
    if paths is None:
        plan = _plan(settings_for(config, None).override(**overrides), folds)
        plan.preflight(files=1)
        found, st = lint_records(source, plan, progress=progress)  # type: ignore[arg-type]
        findings.extend(found)
        stats.append(st)
        fail_on = plan.settings.fail_on
    else:
        known: dict[Path, Settings] = {}
        files = list(iter_data_files(paths))
        plans = {
            path: _plan(_for_file(settings_for(config, path.parent, known).override(**overrides), path, dataset_info))
            for path in files
        }
        if folds:
            with_folds = {id(p): dataclasses.replace(p, folds=tuple(folds)) for p in plans.values()}
            plans = {path: with_folds[id(p)] for path, p in plans.items()}
        sharing = collections.Counter(id(p) for p in plans.values())
        checked: set[int] = set()
        for plan in plans.values():
            if id(plan) not in checked:
                checked.add(id(plan))
                plan.preflight(files=sharing[id(plan)])
        if files:
            fail_on = plans[files[0]].settings.fail_on
        views: dict[Path, dict[str, DatasetView]] = {}
        if executor is None and files:
            first = plans[files[0]].settings
            executor = for_engine(first.engine, address=first.address, jobs=jobs, work_dir=work_dir)
        caches: dict[Path | None, LintCache | None] = {}
        for path in files:
            plan = plans[path]
            views[path] = {}
            where = Path(plan.settings.path) if plan.settings.path else None
            if where not in caches:
                caches[where] = resolve_cache(cache, plan.settings)
            found, st = lint_file(
                path,
                plan,
                source=str(path),
                jobs=jobs,
                executor=executor,
                views=views[path],
                progress=progress,
                cache=caches[where],
            )
            settings = plan.settings
            if settings.baseline and baseline is None:
                base = Path(settings.baseline)
                if settings.path and not base.is_absolute():
                    base = Path(settings.path).parent / base
                found = _apply_baseline(found, base)
            findings.extend(_not_a_dataset(found, plan))
            stats.append(st)
        for group in dataset_groups(files):
            findings.extend(files_findings(plans[group[0]], [(str(p), views[p]) for p in group]))
        for used in caches.values():
            if used is not None and used.wrote:
                used.prune()
    if baseline is not None:
        findings = _apply_baseline(findings, baseline)
    return Report(findings, stats, fail_on=fail_on)


def fix(
    source: PathLike | Iterable[PathLike],
    *,
    write: bool = True,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    extend_select: Iterable[str] | None = None,
    profile: str | None = None,
    format: str | None = None,
    config: PathLike | bool = True,
) -> list[FixResult]:
    """Apply the safe fixes of the selected fixable rules to every file of ``source``
    (each file replaced atomically; with ``write=False`` only computed). Returns the
    result of every file that changes (``applied`` counts the fixes per rule) and of every
    file left alone because it is not UTF-8 JSON text (``skipped`` says why)."""
    from ftdata import registry
    from ftdata.curation.fix import fix_file, write_fix

    paths = _as_paths(source)
    if paths is None:
        raise TypeError("fix works on files: give a path or a list of paths")
    overrides = _selection(select, ignore, extend_select, profile, format)
    results = []
    for path in iter_data_files(paths):
        plan = _plan(settings_for(config, path.parent).override(**overrides))
        enabled = {b.rule.name for b in plan.records if b.rule.fixable}
        enabled.update(name for name in plan.reader if registry.get(name).fixable)
        result = fix_file(path, enabled=frozenset(enabled), format=plan.format)
        if result.skipped is not None:
            results.append(result)
        elif result.changed:
            if write:
                write_fix(result)
            results.append(result)
    return results


def _selection(
    select: Iterable[str] | None,
    ignore: Iterable[str] | None,
    extend_select: Iterable[str] | None,
    profile: str | None,
    format: str | None,
) -> dict[str, Any]:
    """The settings overrides that choose the rules and the input format."""
    return {
        "select": _tuple(select),
        "ignore": _tuple(ignore),
        "extend_select": _tuple(extend_select),
        "profile": profile,
        "format": format,
    }


def _for_file(settings: Settings, path: Path, dataset_info: PathLike | bool | None) -> Settings:
    """``settings`` with what a LLaMA-Factory dataset_info.json declares for ``path``."""
    from ftdata.formats.dataset_info import DatasetInfoError, spec_for

    if dataset_info is False:
        return settings
    explicit = Path(dataset_info) if dataset_info not in (None, True) else None  # type: ignore[arg-type]
    if explicit is None and settings.dataset_info:
        explicit = Path(settings.dataset_info)
    elif explicit is not None:
        # the rules that look up the files records name (FT123) read it from the settings
        settings = settings.override(dataset_info=str(explicit.resolve()))
    try:
        spec = spec_for(path, settings.format_spec, dataset_info=explicit)
    except DatasetInfoError as e:
        raise ConfigError(str(e)) from None
    if spec == settings.format_spec:
        return settings
    return settings.override(format=spec if spec and "[" in spec else None)


def _not_a_dataset(found: list[Finding], plan: Plan) -> list[Finding]:
    """A file reported as not a dataset (FT014) gets no dataset-level findings: a
    ``package.json`` is not a dataset of one record that is too small."""
    from ftdata.rules.syntax import NOT_A_DATASET_CODE

    if not any(f.code == NOT_A_DATASET_CODE for f in found):
        return found
    dataset_codes = {b.code for b in plan.dataset}
    return [f for f in found if f.code not in dataset_codes]


def _plan(settings: Settings, folds: Sequence[Callable[[], Fold]] = ()) -> Plan:
    validate(settings)
    plan = compile_plan(settings)
    return dataclasses.replace(plan, folds=tuple(folds)) if folds else plan


def _apply_baseline(findings: list[Finding], path: PathLike) -> list[Finding]:
    try:
        return apply_baseline(findings, path)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _tuple(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _as_paths(source: Any) -> list[Path] | None:
    if isinstance(source, str | os.PathLike):
        return [Path(source)]
    if isinstance(source, list | tuple) and source and all(isinstance(s, str | os.PathLike) for s in source):
        return [Path(s) for s in source]
    return None


def settings_for(config: PathLike | bool, folder: Path | None, cache: dict[Path, Settings] | None = None) -> Settings:
    """The settings for files in ``folder``: ``config=True`` searches the nearest
    pyproject.toml/ftdata.toml, a path reads that file, False uses the defaults."""
    if config is False:
        return Settings()
    if config is not True:
        return load_config(Path(config))
    if folder is None:
        return Settings()
    if cache is not None and folder in cache:
        return cache[folder]
    found = find_config(folder)
    settings = load_config(found) if found else Settings()
    if cache is not None:
        cache[folder] = settings
    return settings
