"""``ftdata convert``: rewrite a dataset in one of TRL's shapes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ftdata.cli import UsageFailure, input_format_option, main
from ftdata.curation.convert_shapes import TARGETS


@main.command("convert")
@click.argument("source", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the converted records (a JSON array when the name ends in .json, else JSON Lines).",
)
@click.option("--to", "to", type=click.Choice(TARGETS), required=True, help="The shape to write.")
@input_format_option
@click.option(
    "--rejects",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the records that cannot be converted (default: OUTPUT's name with .rejected.jsonl; "
    "in OUTPUT's folder).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def convert_command(
    source: Path,
    output: Path,
    to: str,
    input_format: str | None,
    rejects: Path | None,
    quiet: bool,
) -> None:
    """Convert Alpaca, ShareGPT, LLaMA-Factory preference and KTO, and other files ftdata
    reads into TRL's shapes: messages, prompt-completion, preference or text.

    System prompts, tools and tool calls are carried across; records come out in input
    order. Records that cannot be converted go to the rejects file with their line, their
    bytes and the reason; a manifest goes to OUTPUT's name with .manifest.json, committed
    with the other files. Exit status 1 when any record was rejected.
    """
    from ftdata.curation.convert import convert
    from ftdata.findings import plural
    from ftdata.render.text import visible

    try:
        result = convert(source, output, to=to, format=input_format, rejects=rejects)
    except (OSError, ValueError) as e:
        raise UsageFailure(str(e)) from None
    if not quiet or result.rejected:
        click.echo(
            f"Converted {result.converted:,} of {plural(result.records, 'record')} to {to} in {output}; "
            f"{plural(len(result.rejected), 'rejected record')} in {result.outputs['rejected']}; "
            f"manifest in {result.outputs['manifest']}.",
            err=True,
        )
    if result.rejected:
        first = result.rejected[0]
        where = f"line {first.line}" if first.line is not None else f"record {first.index}"
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in result.reasons.items())
        click.echo(
            f"warning: {plural(len(result.rejected), 'record')} could not be converted ({reasons}); "
            f"first at {where}: {visible(first.detail)}",
            err=True,
        )
        sys.exit(1)
