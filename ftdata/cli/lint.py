"""``ftdata lint``: findings with file, line, column and rule code; ``--fix``, baselines."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import IO, Any

import click

from ftdata.cli import OUTPUT_FORMAT_NAMES, UsageFailure, main, progress_bar, rule_selection, split_values


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@rule_selection
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
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    help="Where large files are checked: this machine's processes (default) or a Ray cluster (the 'ray' extra).",
)
@click.option(
    "--address", help="The Ray cluster to join with --engine ray: auto or ray://HOST:PORT (default: a local one)."
)
@click.option(
    "--work-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="--engine ray: intermediates of the dataset stages, on storage all nodes see (default: a temp folder).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Check every file afresh, neither reading nor writing the cache (also: FTDATA_NO_CACHE=1).",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the cache here (default: .ftdata_cache in the project root; also: FTDATA_CACHE_DIR, cache-dir).",
)
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
    engine: str | None,
    address: str | None,
    work_dir: Path | None,
    no_cache: bool,
    cache_dir: Path | None,
    quiet: bool,
) -> None:
    """Lint JSONL and JSON datasets: every problem with file, line, column and rule code.

    PATHS are files or folders (searched for .jsonl, .ndjson and .json files).
    Configuration comes from [tool.ftdata] in the nearest pyproject.toml or ftdata.toml.
    A file unchanged since a run with the same settings is only hashed: its findings
    come from the cache (see --no-cache).
    """
    import ftdata
    from ftdata.config import ConfigError, parse_option
    from ftdata.io import iter_data_files

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
        "select": split_values(select),
        "ignore": split_values(ignore),
        "extend_select": split_values(extend_select),
        "profile": profile,
        "format": input_format,
        "max_errors": max_errors,
        "options": options or None,
        "tokenizer": tokenizer,
        "max_length": max_length,
        "config": config,
        "jobs": jobs,
        "engine": engine,
        "address": address,
        "work_dir": work_dir,
    }
    cache: Any = False if no_cache else (cache_dir or True)
    from ftdata.outputs import OutputError, check_outputs

    try:
        inputs = [*iter_data_files(list(paths)), *([baseline] if baseline else [])]
        check_outputs(inputs, [output_file, write_baseline])
        if fix or diff:
            changed = _apply_fixes(list(paths), kwargs, write=not diff, quiet=quiet)
            if diff:
                sys.exit(1 if changed else 0)
        with progress_bar(quiet) as progress:
            report = ftdata.lint(
                list(paths), baseline=None if write_baseline else baseline, progress=progress, cache=cache, **kwargs
            )
        if write_baseline:
            from ftdata.baseline import write_baseline as write

            if report.incomplete:
                _rule_errors(report)
                raise UsageFailure("no baseline written: the run is incomplete")
            count = write(write_baseline, report.findings)
            if not quiet:
                click.echo(
                    f"Wrote {count:,} baseline entries for {len(report):,} findings to {write_baseline}.", err=True
                )
            sys.exit(0)
        _emit(report, output_format, output_file, quiet)
    except (ConfigError, OutputError) as e:
        raise UsageFailure(str(e)) from None
    except BrokenPipeError:
        raise
    except OSError as e:
        raise UsageFailure(f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")) from None
    if report.incomplete:
        _rule_errors(report)
        sys.exit(2)
    if exit_zero:
        sys.exit(0)
    sys.exit(1 if report.failed(fail_on) else 0)


def _rule_errors(report: Any) -> None:
    """Rule failures on stderr: the verdict is incomplete, whatever the findings say."""
    from ftdata.render.text import visible

    failures = report.rule_errors
    if not failures:
        click.echo(
            f"ftdata: error: {report.unexplained:,} record(s) could not be read and were not checked; "
            "the verdict is incomplete (add --extend-select FT0,FT1 to see why)",
            err=True,
        )
        return
    first = failures[0]
    click.echo(
        f"ftdata: error: {len(failures):,} rule failure(s); the verdict is incomplete. "
        f"First: {visible(first.source)}:{first.line or 1}: {visible(first.message)}",
        err=True,
    )


def _emit(report: Any, output_format: str, output_file: Path | None, quiet: bool) -> None:
    from ftdata.render.concise import summary

    if output_file is not None:
        from ftdata.io import atomic_write

        with atomic_write(output_file, "w") as f:
            _render(report, output_format, f, quiet)
        if not quiet and output_format in ("concise", "full"):
            click.echo(summary(report), err=True)
        return
    _render(report, output_format, sys.stdout, quiet)


def _render(report: Any, output_format: str, stream: IO[str], quiet: bool) -> None:
    from ftdata.render import render

    if quiet and output_format in ("concise", "full"):
        from ftdata.render.concise import finding_line

        for f in report.findings:
            stream.write(finding_line(f) + "\n")
        return
    render(report, output_format, stream)  # type: ignore[arg-type]


def _apply_fixes(paths: list[Path], kwargs: dict[str, Any], *, write: bool, quiet: bool) -> bool:
    """Fix (or, with ``write=False``, show as a diff) every file; True if anything changed."""
    from ftdata.api import fix
    from ftdata.render.text import visible

    selection = {k: kwargs[k] for k in ("select", "ignore", "extend_select", "profile", "format", "config")}
    results = fix(paths, write=write, **selection)
    for result in results:
        if result.skipped is not None:
            click.echo(f"ftdata: warning: {visible(result.message)}", err=True)
    results = [r for r in results if r.skipped is None]
    for result in results if not write else ():
        _print_diff(result)
    if write and results and not quiet:
        click.echo(f"Fixed {sum(sum(r.applied.values()) for r in results):,} problem(s).", err=True)
    return bool(results)


def _print_diff(result: Any) -> None:
    from ftdata.render.text import visible

    old = [visible(t, keep_lines=True) for t in result.original.decode("utf-8", "replace").splitlines(keepends=True)]
    new = [visible(t, keep_lines=True) for t in result.fixed.decode("utf-8", "replace").splitlines(keepends=True)]
    name = visible(result.path)
    for line in difflib.unified_diff(old, new, fromfile=f"a/{name}", tofile=f"b/{name}"):
        sys.stdout.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
