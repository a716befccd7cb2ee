"""``ftdata audit``: findings and figures of a dataset, on the terminal and as HTML/JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ftdata.cli import UsageFailure, _progress, _rule_selection, _split, main


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
