"""``ftdata eval``: a fine-tuned model against its base on an eval file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ftdata.cli import silence_third_party, split_values
from ftdata.render.text import visible
from ftdata_train.cli import errors_to_exit_codes


@click.command("eval")
@click.argument("model", metavar="ADAPTER_OR_MODEL", type=click.Path(path_type=Path))
@click.argument("eval_file", type=click.Path(path_type=Path))
@click.option("--base", metavar="MODEL", help="Base model to compare with (default: the adapter's base).")
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Longest greedy generation per prompt, in tokens.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N examples.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Examples per forward pass."
)
@click.option("--max-length", type=click.IntRange(min=8), help="Truncate loss inputs to N tokens, as training did.")
@click.option(
    "--loss",
    type=click.Choice(["auto", "assistant", "completion", "all"]),
    default="auto",
    show_default=True,
    help="Tokens the loss counts, as in the training config.",
)
@click.option(
    "--rules",
    multiple=True,
    metavar="RULES",
    help="Format rules to judge replies by (default: FT110, FT205, FT305, FT306, FT307).",
)
@click.option("--schema", metavar="SCHEMA", help="JSON Schema replies must match (FT206): inline or a file.")
@click.option(
    "--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Report format."
)
@click.option("--html", "html_path", type=click.Path(path_type=Path), help="Also write an HTML page to PATH.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors and the report.")
def eval_command(
    model: Path,
    eval_file: Path,
    base: str | None,
    max_new_tokens: int,
    limit: int | None,
    batch_size: int,
    max_length: int | None,
    loss: str,
    rules: tuple[str, ...],
    schema: str | None,
    output_format: str,
    html_path: Path | None,
    quiet: bool,
) -> None:
    """Compare ADAPTER_OR_MODEL with its base on EVAL_FILE.

    ADAPTER_OR_MODEL is a peft adapter folder (its adapter_config.json names the base) or a full
    model folder (give --base to compare). For each model: eval loss and perplexity on the
    trained tokens (assistant turns, completions), greedy replies to the eval prompts, exact
    match and token F1 against the reference, repetition, and format compliance judged by
    ftdata's rules on the reply (a reference tool call is matched by name and arguments).

    Exit 1 when some eval records were skipped (unreadable, or without an assistant reply: each
    is named by file:line), 2 when the model or the file cannot be read or nothing could be
    scored.
    """
    silence_third_party(quiet)
    from ftdata.outputs import check_outputs
    from ftdata_train.evaluate import evaluate

    with errors_to_exit_codes(output_format):
        if html_path is not None:
            check_outputs([eval_file], [html_path])
        report = evaluate(
            model,
            eval_file,
            base=base,
            max_new_tokens=max_new_tokens,
            limit=limit,
            batch_size=batch_size,
            max_length=max_length,
            loss=loss,
            rules=split_values(rules),
            schema=schema,
        )
        if html_path is not None:
            report.to_html(html_path)
    if output_format == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        from rich.console import Console

        console = Console(highlight=False)
        console.print(report.table())
        for note in report.notes:
            click.echo(f"note: {visible(note)}", err=True)
        if html_path is not None and not quiet:
            click.echo(f"Wrote {html_path}", err=True)
    if report.skipped:
        _say_skipped(report)
        sys.exit(1)


#: Skipped records named one by one on stderr; the JSON report lists them all.
SHOWN_SKIPPED = 20


def _say_skipped(report: Any) -> None:
    """How many eval records were not scored, and where each is, on stderr."""
    skipped = report.skipped
    total = len(skipped) + len(report.examples)
    click.echo(
        f"ftdata: {len(skipped)} of {total} eval records were skipped and not scored:",
        err=True,
    )
    for s in skipped[:SHOWN_SKIPPED]:
        click.echo(f"  {visible(s.where)}: {visible(s.reason)}", err=True)
    if len(skipped) > SHOWN_SKIPPED:
        click.echo(f"  ... and {len(skipped) - SHOWN_SKIPPED} more", err=True)
