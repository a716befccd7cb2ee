"""The ``ftdata`` command line. Each command is a thin call into the library.

Exit codes: 0 clean, 1 findings at or above ``--fail-on``, 2 usage, configuration or
I/O error.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from ftdata._version import __version__

OUTPUT_FORMAT_NAMES = ("concise", "full", "json", "json-lines", "github", "sarif")
FORMAT_NAMES = ("messages", "prompt-completion", "alpaca", "sharegpt")
PROFILE_NAMES = ("openai", "together", "mistral", "trl")


class UsageFailure(click.ClickException):
    """An error the user can fix (bad config, unreadable file): exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"ftdata: error: {self.format_message()}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="ftdata")
def main() -> None:
    """Check fine-tuning datasets before you train on them."""


def _split(values: tuple[str, ...]) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(part.strip() for v in values for part in v.split(",") if part.strip())


def _options(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click options as one decorator, in the order given."""

    def apply(f: Any) -> Any:
        for decorate in reversed(decorators):
            f = decorate(f)
        return f

    return apply


_format_option = click.option(
    "--format", "input_format", type=click.Choice(FORMAT_NAMES), help="Force the record format instead of detecting it."
)

#: The options that choose the rules (lint and audit).
_rule_selection = _options(
    click.option(
        "--select",
        multiple=True,
        metavar="RULES",
        help="Rules to run (codes, prefixes, names or ALL), replacing the default set.",
    ),
    click.option("--ignore", multiple=True, metavar="RULES", help="Rules to skip."),
    click.option("--extend-select", multiple=True, metavar="RULES", help="Rules to run on top of the selection."),
    click.option("--profile", type=click.Choice(PROFILE_NAMES), help="Apply a provider's documented strictness."),
    _format_option,
)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_rule_selection
@click.option(
    "--output-format",
    type=click.Choice(OUTPUT_FORMAT_NAMES),
    default="concise",
    show_default=True,
    help="How to print findings.",
)
@click.option(
    "-o",
    "--output-file",
    type=click.Path(path_type=Path),
    help="Write findings to this file instead of standard output.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "info"]),
    help="Lowest severity that makes the exit status 1 (default: error).",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--max-errors", type=click.IntRange(min=1), help="Stop reading a file after this many errors.")
@click.option(
    "--option",
    "rule_options",
    multiple=True,
    metavar="RULE.NAME=VALUE",
    help="Set a rule option, e.g. FT404.threshold=0.9 (repeatable).",
)
@click.option("--tokenizer", help="Tokenizer name or local path for the token rules (FT5xx).")
@click.option("--max-length", type=click.IntRange(min=1), help="Training sequence length for the token rules (FT5xx).")
@click.option(
    "--fix",
    is_flag=True,
    help="Apply safe fixes in place (BOM, CRLF, blank lines, final newline, NFC, role whitespace).",
)
@click.option("--diff", is_flag=True, help="Show the safe fixes as a diff instead of writing them.")
@click.option(
    "--baseline",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Report only findings not in this baseline file.",
)
@click.option(
    "--write-baseline",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write all current findings to a baseline file and exit 0.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Use this configuration file instead of searching for one.",
)
@click.option("--isolated", is_flag=True, help="Ignore configuration files.")
@click.option("--jobs", type=click.IntRange(min=1), help="Processes for large files (default: the CPUs available).")
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, no summary.")
def lint(
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    profile: str | None,
    input_format: str | None,
    output_format: str,
    output_file: Path | None,
    fail_on: str | None,
    exit_zero: bool,
    max_errors: int | None,
    rule_options: tuple[str, ...],
    tokenizer: str | None,
    max_length: int | None,
    fix: bool,
    diff: bool,
    baseline: Path | None,
    write_baseline: Path | None,
    config_file: Path | None,
    isolated: bool,
    jobs: int | None,
    quiet: bool,
) -> None:
    """Lint JSONL and JSON datasets: every problem with file, line, column and rule code.

    PATHS are files or folders (searched for .jsonl, .ndjson and .json files).
    Configuration comes from [tool.ftdata] in the nearest pyproject.toml or ftdata.toml.
    """
    import ftdata
    from ftdata.config import ConfigError, parse_option

    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UsageFailure(f"no such file or folder: {missing[0]}")
    config: Any = False if isolated else (config_file or True)
    options: dict[str, dict[str, Any]] = {}
    try:
        for text in rule_options:
            rule_key, name, value = parse_option(text)
            options.setdefault(rule_key, {})[name] = value
    except ConfigError as e:
        raise UsageFailure(str(e)) from None
    kwargs: dict[str, Any] = {
        "select": _split(select),
        "ignore": _split(ignore),
        "extend_select": _split(extend_select),
        "profile": profile,
        "format": input_format,
        "max_errors": max_errors,
        "options": options or None,
        "tokenizer": tokenizer,
        "max_length": max_length,
        "config": config,
        "jobs": jobs,
    }
    try:
        if fix or diff:
            changed = _apply_fixes(list(paths), kwargs, write=not diff, quiet=quiet)
            if diff:
                sys.exit(1 if changed else 0)
        with _progress(quiet) as progress:
            report = ftdata.lint(
                list(paths), baseline=None if write_baseline else baseline, progress=progress, **kwargs
            )
        if write_baseline:
            from ftdata.baseline import write_baseline as write

            count = write(write_baseline, report.findings)
            click.echo(f"Wrote {count:,} baseline entries for {len(report):,} findings to {write_baseline}.", err=True)
            sys.exit(0)
        _emit(report, output_format, output_file, quiet)
        level = fail_on or _fail_on_from_config(list(paths), config)
    except ConfigError as e:
        raise UsageFailure(str(e)) from None
    except BrokenPipeError:
        raise
    except OSError as e:
        raise UsageFailure(f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")) from None
    if exit_zero:
        sys.exit(0)
    sys.exit(1 if report.failed(level) else 0)


def _fail_on_from_config(paths: list[Path], config: Any) -> str:
    from ftdata.config import find_config, load_config

    if config is False:
        return "error"
    if config is not True:
        return load_config(Path(config)).fail_on
    first = paths[0] if paths[0].is_dir() else paths[0].parent
    found = find_config(first)
    return load_config(found).fail_on if found else "error"


def _emit(report: Any, output_format: str, output_file: Path | None, quiet: bool) -> None:
    from ftdata.report.concise import summary

    if output_file is not None:
        from ftdata.io import atomic_write

        with atomic_write(output_file, "w") as f:
            _render(report, output_format, f, quiet)
        if not quiet and output_format in ("concise", "full"):
            click.echo(summary(report), err=True)
        return
    _render(report, output_format, sys.stdout, quiet)


def _render(report: Any, output_format: str, stream: TextIO, quiet: bool) -> None:
    from ftdata.report import render

    if quiet and output_format in ("concise", "full"):
        from ftdata.report.concise import location

        for f in report.findings:
            stream.write(f"{location(f)}: {f.code} {f.message}\n")
        return
    render(report, output_format, stream)


def _apply_fixes(paths: list[Path], kwargs: dict[str, Any], *, write: bool, quiet: bool) -> bool:
    """Fix (or, with ``write=False``, show as a diff) every file; True if anything changed."""
    from ftdata import registry
    from ftdata.config import Settings
    from ftdata.engine import compile_plan
    from ftdata.fix import FIXABLE, fix_file, write_fix
    from ftdata.io import iter_data_files
    from ftdata.linter import _settings

    overrides = {k: kwargs[k] for k in ("select", "ignore", "extend_select", "profile", "format")}
    changed = False
    total = 0
    for path in iter_data_files(paths):
        settings: Settings = _settings(kwargs["config"], path.parent).override(**overrides)
        plan = compile_plan(settings)
        enabled = frozenset(
            name
            for name in FIXABLE
            if name in plan.source_rules or registry.get(name).code in {c for c, _, _ in plan.record_rules}
        )
        result = fix_file(path, enabled=enabled, format=settings.format)
        if not result.changed:
            continue
        changed = True
        total += sum(result.applied.values())
        if write:
            write_fix(result)
        else:
            _print_diff(result)
    if write and changed and not quiet:
        click.echo(f"Fixed {total:,} problem(s).", err=True)
    return changed


def _print_diff(result: Any) -> None:
    old = result.original.decode("utf-8", "replace").splitlines(keepends=True)
    new = result.fixed.decode("utf-8", "replace").splitlines(keepends=True)
    name = str(result.path)
    for line in difflib.unified_diff(old, new, fromfile=f"a/{name}", tofile=f"b/{name}"):
        sys.stdout.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")


@main.command()
@click.argument("source", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the kept records (same container as the input).",
)
@click.option(
    "--method",
    type=click.Choice(["exact", "minhash", "semantic"]),
    default="exact",
    show_default=True,
    help="How records are compared.",
)
@click.option(
    "--keep",
    type=click.Choice(["first", "longest"]),
    default="first",
    show_default=True,
    help="Which record of a cluster to keep.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    help="Similarity from which records are duplicates (minhash: Jaccard, default 0.8; semantic: cosine, default 0.95).",
)
@click.option(
    "--scope",
    type=click.Choice(["conversation", "prompt", "answer"]),
    default="conversation",
    show_default=True,
    help="What to compare.",
)
@click.option("--casefold", is_flag=True, help="exact: treat text that differs only in case as equal.")
@click.option(
    "--shingle",
    type=click.Choice(["word", "char"]),
    default="word",
    show_default=True,
    help="minhash: word or character n-grams.",
)
@click.option(
    "-n", "--ngram", type=click.IntRange(1, 64), default=5, show_default=True, help="minhash: the n of the n-grams."
)
@click.option(
    "--num-perm", type=click.IntRange(8, 1024), default=128, show_default=True, help="minhash: number of permutations."
)
@click.option(
    "--model",
    default="sentence-transformers/all-MiniLM-L6-v2",
    show_default=True,
    help="semantic: sentence-transformers model name or path.",
)
@_format_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def dedup(
    source: Path,
    output: Path,
    method: str,
    keep: str,
    threshold: float | None,
    scope: str,
    casefold: bool,
    shingle: str,
    ngram: int,
    num_perm: int,
    model: str,
    input_format: str | None,
    quiet: bool,
) -> None:
    """Keep one record per cluster of duplicates.

    Kept records go to OUTPUT byte for byte; the others go to OUTPUT's name with
    .rejected.jsonl (with their cluster, representative and similarity, or why they
    could not be read) and the clusters to .clusters.json. Nothing is lost.
    """
    from ftdata.deduplicate import dedup as run
    from ftdata.findings import plural

    if output.resolve() == source.resolve():
        raise UsageFailure("the output must not be the input file")
    with _progress(quiet) as progress:
        try:
            result = run(
                source,
                output,
                method=method,
                keep=keep,
                threshold=threshold,
                scope=scope,
                casefold=casefold,
                shingle=shingle,
                n=ngram,
                num_perm=num_perm,
                model=model,
                format=input_format,
                progress=progress,
            )
        except (OSError, ValueError, ImportError) as e:
            raise UsageFailure(str(e)) from None
    if not quiet:
        click.echo(
            f"Kept {len(result.kept):,} of {plural(result.records, 'record')} in {output}; "
            f"{plural(result.duplicates, 'duplicate')} in {plural(len(result.clusters), 'cluster')} and "
            f"{plural(result.invalid, 'unreadable record')} in {result.outputs['rejected']}; "
            f"clusters in {result.outputs['clusters']}.",
            err=True,
        )


@contextlib.contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on a terminal; nothing under pre-commit, CI or a pipe."""
    if quiet or not sys.stderr.isatty() or os.environ.get("CI") or os.environ.get("PRE_COMMIT"):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield update


@main.command("split")
@click.argument("source", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for train/eval(/test) files, rejected.jsonl and manifest.json.",
)
@click.option(
    "--eval-size",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.15,
    show_default=True,
    help="Share of records held out for evaluation.",
)
@click.option(
    "--test-size",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.0,
    show_default=True,
    help="Share of records held out for a final test.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the placement order.")
@click.option("--stratify-by", help="Field path (metadata.task), 'system' or 'format' to stratify on.")
@click.option(
    "--group-by",
    multiple=True,
    help="Keep together: a field path, 'prompt', 'duplicates', 'near-duplicates' or 'semantic' (repeatable).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    help="Similarity for near-duplicates (Jaccard, default 0.8) and semantic (cosine, default 0.9) groups.",
)
@click.option(
    "--scope",
    type=click.Choice(["prompt", "answer", "conversation"]),
    default="prompt",
    show_default=True,
    help="What near and semantic duplicates compare.",
)
@click.option(
    "--min-per-stratum",
    type=click.IntRange(min=1),
    help="Smaller strata go to train whole (default: one record per split).",
)
@click.option(
    "--bins",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="Quantile bins for a numeric stratification field.",
)
@_format_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but warnings.")
def split_command(
    source: Path,
    output: Path,
    eval_size: float,
    test_size: float,
    seed: int,
    stratify_by: str | None,
    group_by: tuple[str, ...],
    threshold: float | None,
    scope: str,
    min_per_stratum: int | None,
    bins: int,
    input_format: str | None,
    quiet: bool,
) -> None:
    """Split a dataset into train/eval(/test) files that share no group.

    Groups (a field such as a conversation id, identical prompts, duplicates, near
    duplicates) never straddle splits; sizes are met in records, within each stratum; the
    same input, options and seed give the same bytes. Records are copied byte for byte.
    """
    from ftdata.splits import split, write_split

    sizes = {"train": 1.0 - eval_size - test_size, "eval": eval_size}
    if test_size:
        sizes["test"] = test_size
    if sizes["train"] <= 0:
        raise UsageFailure("--eval-size and --test-size leave nothing to train on")
    grouping: Any = list(group_by) if len(group_by) > 1 else (group_by[0] if group_by else None)
    try:
        result = split(
            source,
            sizes=sizes,
            seed=seed,
            stratify_by=stratify_by,
            group_by=grouping,
            min_per_stratum=min_per_stratum,
            bins=bins,
            threshold=threshold,
            scope=scope,
            format=input_format,
        )
        paths = write_split(result, output)
    except (OSError, ValueError, ImportError) as e:
        raise UsageFailure(str(e)) from None
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not quiet:
        counts = result.counts
        total = sum(counts.values())
        parts = ", ".join(
            f"{name} {n:,} ({n / total:.1%}, target {result.targets[name]:.0%})" for name, n in counts.items()
        )
        click.echo(
            f"Split {total:,} records in {result.groups:,} groups: {parts}; {len(result.rejected):,} unreadable. Manifest: {paths['manifest']}",
            err=True,
        )


@main.command("leak")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--method",
    "methods",
    multiple=True,
    type=click.Choice(["exact", "minhash", "semantic"]),
    help="Ways to match records (repeatable; default: exact and minhash).",
)
@click.option(
    "--scope", type=click.Choice(["prompt", "answer", "conversation"]), help="What to compare (default: prompt)."
)
@click.option(
    "--threshold", type=click.FloatRange(0.0, 1.0, min_open=True), help="MinHash Jaccard threshold (default 0.8)."
)
@click.option(
    "--semantic-threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    help="Embedding cosine threshold (default 0.9).",
)
@click.option("--model", help="Embedding model for --method semantic.")
@click.option(
    "--output-format",
    type=click.Choice(["concise", "json"]),
    default="concise",
    show_default=True,
    help="How to print the pairs.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Configuration file with [tool.ftdata.splits] (default: searched from here).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print the pairs only.")
def leak_command(
    files: tuple[Path, ...],
    methods: tuple[str, ...],
    scope: str | None,
    threshold: float | None,
    semantic_threshold: float | None,
    model: str | None,
    output_format: str,
    config_file: Path | None,
    quiet: bool,
) -> None:
    """Find records of one file that reappear in another (eval questions seen in training).

    FILES are the splits, train first. Without FILES, the files and options come from
    [tool.ftdata.splits] in the configuration. Exit status 1 when anything leaks.
    """
    from ftdata.config import ConfigError, find_config, load_config
    from ftdata.leaks import leakage

    try:
        found = config_file or find_config(Path.cwd())
        splits = dict(load_config(found).splits) if found else {}
    except ConfigError as e:
        raise UsageFailure(str(e)) from None
    paths = list(files) or [_relative(Path(f)) for f in splits.get("files", [])]
    if len(paths) < 2:
        raise UsageFailure("give at least two files, or list them in [tool.ftdata.splits] files")
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UsageFailure(f"no such file: {missing[0]}")
    try:
        report = leakage(
            paths,
            methods=methods or splits.get("methods", ("exact", "minhash")),
            scope=scope or splits.get("scope", "prompt"),
            threshold=threshold or splits.get("threshold", 0.8),
            semantic_threshold=semantic_threshold or splits.get("semantic-threshold", 0.9),
            model=model or splits.get("model", "sentence-transformers/all-MiniLM-L6-v2"),
        )
    except (OSError, ValueError, ImportError) as e:
        raise UsageFailure(str(e)) from None
    if output_format == "json":
        import orjson

        click.echo(
            orjson.dumps(
                {"sources": report.sources, "records": report.records, "leaks": report.to_dicts()},
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
    else:
        for k in report.leaks:
            click.echo(f"{k.source_b}:{k.line_b}: {k.method} {k.similarity:.2f} {k.source_a}:{k.line_a}")
        if not quiet:
            by_file = ", ".join(
                f"{len(report.leaked_records(s)):,} of {report.records[s]:,} in {s}" for s in report.sources[1:]
            )
            click.echo(f"{len(report):,} leaked pairs ({by_file})." if report.leaks else "No leaks.")
    sys.exit(1 if report.failed() else 0)


def _relative(path: Path) -> Path:
    """``path`` relative to the working folder when it lies below it (shorter to read)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


@main.command("audit")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a self-contained HTML report here.",
)
@click.option(
    "--json",
    "json_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the findings and figures as JSON here.",
)
@click.option("--tokenizer", help="Tokenizer name or local path for exact token counts (else estimated).")
@click.option(
    "--max-length",
    type=click.IntRange(min=1),
    help="Training sequence length: drawn on the token plot, with what it cuts.",
)
@click.option("--stratify-by", help="Field path whose balance to show (e.g. metadata.category).")
@_rule_selection
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "info"]),
    help="Exit 1 when a finding is at or above this severity (default: always 0).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; write the files only.")
def audit_command(
    paths: tuple[Path, ...],
    html_file: Path | None,
    json_file: Path | None,
    tokenizer: str | None,
    max_length: int | None,
    stratify_by: str | None,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    profile: str | None,
    input_format: str | None,
    fail_on: str | None,
    quiet: bool,
) -> None:
    """Lint and measure a dataset: findings, formats, roles, turns, token lengths, system
    prompts, duplicates and balance, as tables here and an HTML page with plots."""
    import orjson

    from ftdata.auditing import audit
    from ftdata.config import ConfigError
    from ftdata.io import atomic_write

    target: Any = paths[0] if len(paths) == 1 else list(paths)
    with _progress(quiet) as progress:
        try:
            report = audit(
                target,
                tokenizer=tokenizer,
                max_length=max_length,
                stratify_by=stratify_by,
                select=_split(select),
                ignore=_split(ignore),
                extend_select=_split(extend_select),
                profile=profile,
                format=input_format,
                progress=progress,
            )
        except ConfigError as e:
            raise UsageFailure(str(e)) from None
        except (OSError, ValueError, ImportError) as e:
            raise UsageFailure(str(e)) from None
    if html_file is not None:
        with atomic_write(html_file, "w") as f:
            f.write(report.to_html(title=f"ftdata audit: {', '.join(str(p) for p in paths)}"))
    if json_file is not None:
        with atomic_write(json_file) as f:
            f.write(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    if not quiet:
        from ftdata.report.terminal import print_audit

        print_audit(report, html_file=html_file, json_file=json_file)
    sys.exit(1 if fail_on and report.failed(fail_on) else 0)


@main.command("rule")
@click.argument("code")
def rule_command(code: str) -> None:
    """Show a rule's documentation (by code or name)."""
    from ftdata import registry
    from ftdata.docgen import rule_text

    try:
        found = registry.get(code)
    except KeyError:
        raise UsageFailure(f"unknown rule {code!r}; `ftdata rules` lists them") from None
    click.echo(rule_text(found))


@main.command("rules")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text: a table; json: every field; markdown: the reference in docs/rules.md.",
)
def rules_command(fmt: str) -> None:
    """List every rule with its code, name, default severity and summary."""
    from ftdata.docgen import rules_json, rules_markdown, rules_table

    text = {"text": rules_table, "json": rules_json, "markdown": rules_markdown}[fmt]()
    click.echo(text, nl=not text.endswith("\n"))


def run() -> None:
    """Console entry point: like ``main`` but quiet when the reader of stdout goes away."""
    import signal

    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()


if __name__ == "__main__":  # pragma: no cover
    run()
