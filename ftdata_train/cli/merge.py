"""``ftdata merge``: fold a LoRA adapter into a 16-bit copy of its base model."""

from __future__ import annotations

from pathlib import Path

import click

from ftdata.cli import silence_third_party
from ftdata_train.cli import errors_to_exit_codes


@click.command("merge")
@click.argument("adapter", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write (must not exist or be empty).",
)
@click.option(
    "--dtype",
    default="bf16",
    show_default=True,
    metavar="bf16|fp16|fp32",
    help="Float type to reload the base in and save the merged weights in (never 4-bit).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def merge_command(adapter: Path, output: Path, dtype: str, quiet: bool) -> None:
    """Merge the LoRA adapter in ADAPTER into its base model and save safetensors to OUTPUT.

    The base named in ADAPTER/adapter_config.json is reloaded in 16-bit (a QLoRA adapter too:
    merging into 4-bit weights loses accuracy), merged, and written with the tokenizer and a
    merge-manifest.json holding the sha256 of every adapter file.
    """
    silence_third_party(quiet)
    from ftdata_train.merge import merge

    if not adapter.is_dir():
        from ftdata.cli import UsageFailure

        raise UsageFailure(f"no such adapter folder: {adapter}")
    with errors_to_exit_codes():
        written = merge(adapter, output, dtype=dtype)
    if not quiet:
        click.echo(f"Merged {adapter} into its base; saved to {written}")
