"""``ftdata.lint``: the library entry point of the linter."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ftdata.baseline import apply_baseline
from ftdata.config import ConfigError, Settings, find_config, load_config, validate
from ftdata.dataset import DatasetView
from ftdata.engine import compile_plan, files_findings, lint_file, lint_records
from ftdata.findings import Finding, Report, SourceStats
from ftdata.io import iter_data_files
from ftdata.progress import Progress

PathLike = str | os.PathLike[str]


def lint(
    source: PathLike | Iterable[PathLike] | Iterable[Mapping[str, Any]],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    extend_select: Iterable[str] | None = None,
    profile: str | None = None,
    format: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    severity: Mapping[str, str] | None = None,
    max_errors: int | None = None,
    tokenizer: str | None = None,
    max_length: int | None = None,
    baseline: PathLike | None = None,
    config: PathLike | bool = True,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> Report:
    """Lint a dataset and return a :class:`~ftdata.findings.Report`.

    ``source`` is a path (a file, or a folder searched for .jsonl/.ndjson/.json files), a
    list of paths, or in-memory records (a list of dicts). ``select``/``ignore``/
    ``extend_select`` take rule codes, code prefixes or names; ``profile`` is one of
    ``openai``, ``together``, ``mistral``, ``trl``; ``format`` forces a format; ``options``
    maps a rule to its options and ``severity`` a rule to a severity. ``tokenizer`` and
    ``max_length`` fill the options of that name of every token rule (FT5xx).

    For files, ``[tool.ftdata]`` in the nearest pyproject.toml (or ftdata.toml) applies
    unless ``config=False``; pass a path to use that file instead. Keyword arguments win
    over the file. ``progress(stage, done, total)`` hears how far reading and the long
    dataset rules (near duplicates, embeddings) are. Raises
    :class:`~ftdata.config.ConfigError` on invalid settings and ``OSError`` when a file
    cannot be read; never on bad data.
    """
    overrides = {
        "select": _tuple(select),
        "ignore": _tuple(ignore),
        "extend_select": _tuple(extend_select),
        "profile": profile,
        "format": format,
        "options": options,
        "severity": severity,
        "max_errors": max_errors,
        "tokenizer": tokenizer,
        "max_length": max_length,
    }
    paths = _as_paths(source)
    findings: list[Finding] = []
    stats: list[SourceStats] = []
    if paths is None:
        settings = _settings(config, None).override(**overrides)
        validate(settings)
        found, st = lint_records(source, settings, progress=progress)  # type: ignore[arg-type]
        findings.extend(found)
        stats.append(st)
    else:
        cache: dict[Path, Settings] = {}
        files = list(iter_data_files(paths))
        views: dict[Path, dict[str, DatasetView]] = {}
        for path in files:
            settings = _settings(config, path.parent, cache).override(**overrides)
            validate(settings)
            views[path] = {}
            found, st = lint_file(path, settings, source=str(path), jobs=jobs, views=views[path], progress=progress)
            if settings.baseline and baseline is None:
                base = Path(settings.baseline)
                if settings.path and not base.is_absolute():
                    base = Path(settings.path).parent / base
                found = apply_baseline(found, base)
            findings.extend(found)
            stats.append(st)
        for group in dataset_groups(files):
            settings = _settings(config, group[0].parent, cache).override(**overrides)
            findings.extend(files_findings(compile_plan(settings), [(str(p), views[p]) for p in group]))
    if baseline is not None:
        try:
            findings = apply_baseline(findings, baseline)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return Report(findings, stats)


_SPLIT = re.compile(r"(?:^|[-_.])(train|training|eval|evaluation|valid|validation|val|dev|test|testing)$", re.I)


def split_word(path: str | os.PathLike[str]) -> str:
    """The split a file's name says it holds (``"train"``, ``"eval"``...), or ``""``."""
    m = _SPLIT.search(Path(path).stem)
    return m.group(1).lower() if m else ""


def dataset_groups(paths: Iterable[Path]) -> list[list[Path]]:
    """Files that look like splits of one dataset: same folder, same name but for a split
    word (``train.jsonl``/``eval.jsonl``, ``support_train.jsonl``/``support_test.jsonl``).
    Train comes first in each group."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for path in paths:
        m = _SPLIT.search(path.stem)
        if m:
            groups.setdefault((path.parent, path.stem[: m.start()].lower()), []).append(path)
    order = {"train": 0, "training": 0}
    return [
        sorted(g, key=lambda p: (order.get(_SPLIT.search(p.stem).group(1).lower(), 1), p.name))  # type: ignore[union-attr]
        for g in groups.values()
        if len(g) > 1
    ]


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


def _settings(config: PathLike | bool, folder: Path | None, cache: dict[Path, Settings] | None = None) -> Settings:
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
