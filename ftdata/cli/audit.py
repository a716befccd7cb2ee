"""``ftdata audit``: findings and figures of a dataset, on the terminal and as HTML/JSON."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from ftdata.cli import UsageFailure, main, progress_bar, rule_selection, split_values


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
@click.option(
    "--show-labels",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    metavar="N",
    help="With --tokenizer: show the first N records in the HTML page as the trainer sees them,"
    " trained tokens highlighted (0: none).",
)
@click.option("--stratify-by", help="Field path whose balance to show (e.g. metadata.category).")
@rule_selection
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
    show_labels: int,
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
    prompts, duplicates and balance, the length bias of preference pairs and the KTO label
    balance, as tables here and an HTML page with plots."""
    from ftdata.auditing import audit
    from ftdata.config import ConfigError
    from ftdata.io import iter_data_files
    from ftdata.outputs import OutputError, check_outputs
    from ftdata.render.text import visible

    if quiet:
        _hush_libraries()
    try:
        # Before anything is read: no output may replace an input, and its folder must be writable.
        check_outputs([*paths, *iter_data_files(list(paths))], [html_file, json_file])
    except OutputError as e:
        raise UsageFailure(visible(str(e))) from None
    except OSError as e:
        raise UsageFailure(visible(_os_message(e))) from None
    target: Any = paths[0] if len(paths) == 1 else list(paths)
    with progress_bar(quiet) as progress:
        try:
            report = audit(
                target,
                tokenizer=tokenizer,
                max_length=max_length,
                show_labels=show_labels,
                stratify_by=stratify_by,
                select=split_values(select),
                ignore=split_values(ignore),
                extend_select=split_values(extend_select),
                profile=profile,
                format=input_format,
                progress=progress,
            )
        except ConfigError as e:
            raise UsageFailure(visible(str(e))) from None
        except OSError as e:
            raise UsageFailure(visible(_os_message(e))) from None
        except (ValueError, ImportError) as e:
            raise UsageFailure(visible(str(e))) from None
    _write_outputs(report, paths, html_file, json_file)
    if not quiet:
        from ftdata.render.terminal import print_audit

        print_audit(report, html_file=html_file, json_file=json_file)
    sys.exit(1 if fail_on and report.failed(fail_on) else 0)


def _write_outputs(report: Any, paths: tuple[Path, ...], html_file: Path | None, json_file: Path | None) -> None:
    """Write the HTML page and the JSON atomically; a failed write (disk full, folder gone)
    leaves no partial file and is a usage failure, exit 2."""
    from ftdata.io import atomic_write
    from ftdata.render.jsonout import dumps
    from ftdata.render.text import visible

    for path, content in (
        (html_file, lambda: report.to_html(title=f"ftdata audit: {', '.join(str(p) for p in paths)}").encode()),
        (json_file, lambda: dumps(report.to_json(), indent=True) + b"\n"),
    ):
        if path is None:
            continue
        try:
            with atomic_write(path) as f:
                f.write(content())
        except OSError as e:
            raise UsageFailure(visible(f"cannot write {path}: {e.strerror or e}")) from None


def _os_message(e: OSError) -> str:
    return f"{e.filename}: {e.strerror or e}" if e.filename else str(e.strerror or e)


def _hush_libraries() -> None:
    """With -q only errors reach stderr: silence the loading chatter and progress bars of
    the tokenizer libraries before they are imported."""
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.simplefilter("ignore")
