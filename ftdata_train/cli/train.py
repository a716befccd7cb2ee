"""``ftdata train``: write a config (``--init``), check a run (``--dry-run``), or run it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import click

from ftdata.cli import UsageFailure, progress_bar, silence_third_party
from ftdata_train.cli import errors_to_exit_codes

_GB = 1024**3


@click.command("train")
@click.argument("config_file", metavar="CONFIG", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--init", is_flag=True, help="Print a commented default config (ftdata train --init > train.toml).")
@click.option(
    "--dry-run", is_flag=True, help="Check the data and estimate steps, parameters and memory; load no weights."
)
@click.option(
    "--show-labels",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="With --dry-run: show N examples as the trainer sees them, trained tokens marked.",
)
@click.option(
    "--output-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Dry-run and result report: tables, or JSON for scripts.",
)
@click.option(
    "--resume",
    is_flag=False,
    flag_value="last",
    default=None,
    metavar="[CHECKPOINT]",
    help="Continue from the last checkpoint in output_dir, or from CHECKPOINT (put it after CONFIG).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or notes; errors only on stderr.")
def train_command(
    config_file: Path | None,
    init: bool,
    dry_run: bool,
    show_labels: int,
    output_format: str,
    resume: str | None,
    quiet: bool,
) -> None:
    """Fine-tune a model with LoRA, QLoRA or full training on data that passes ftdata's gate.

    CONFIG is a .toml, .yaml or .json training config (start from `ftdata train --init`).
    The data is linted with the model's own tokenizer first: a dataset with errors, or an eval
    set that leaks from train, refuses the run (exit 1) before any weights load.
    """
    if init:
        from ftdata_train.config import init_template

        click.echo(init_template(), nl=False)
        return
    if config_file is None:
        raise UsageFailure("missing CONFIG (write one with `ftdata train --init > train.toml`)")
    if show_labels and not dry_run:
        raise UsageFailure("--show-labels needs --dry-run")
    if resume is not None and dry_run:
        raise UsageFailure("--resume cannot be combined with --dry-run")
    from ftdata_train.config import TrainConfig

    with errors_to_exit_codes(output_format):
        config = TrainConfig.load(config_file)
        if dry_run:
            silence_third_party(quiet)
            from ftdata_train.dryrun import dry_run as plan

            result = plan(config, show_labels=show_labels)
            if output_format == "json":
                click.echo(json.dumps(result.to_dict(), indent=2, default=str))
            else:
                _print_dry_run(result, quiet=quiet)
            return
        from ftdata_train.trainer import train

        resume_arg: bool | str = False if resume is None else True if resume == "last" else resume
        with progress_bar(quiet or output_format == "json") as progress:
            outcome = train(config, resume=resume_arg, progress=progress)
        if output_format == "json":
            click.echo(json.dumps(outcome.to_dict(), indent=2, default=str))
        else:
            _print_result(outcome, quiet=quiet)


def _gb(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    if 0 < value < 0.05 * _GB:
        return "<0.1"
    return f"{value / _GB:.1f}"


def _pct(part: Any, whole: Any) -> str:
    if not isinstance(part, (int, float)) or not whole:
        return "-"
    return f"{part / whole:.0%}"


def _console() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def _print_dry_run(result: Any, *, quiet: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ftdata.render.text import visible

    console = _console()
    config = result.config
    model = result.model
    total = model["total_parameters"]
    console.print(
        f"[bold]{escape(visible(model['name']))}[/bold] ({model['architecture']}, {total:,} parameters):"
        f" {config.method}, {result.kind} data, max_length {config.max_length:,}"
    )

    data = Table(title="Data (after the chat template)", title_justify="left")
    for column in ("split", "records", "tokens", "trained on", "truncated", "p50", "p95", "p99", "max"):
        data.add_column(column, justify="left" if column == "split" else "right")
    for name, stats in result.splits.items():
        row = [
            name,
            f"{stats.records:,}",
            f"{stats.tokens:,}",
            _pct(stats.trained_tokens, stats.tokens),
            f"{stats.truncated:,} ({_pct(stats.truncated, stats.records)})",
            *(f"{value:,}" for value in (stats.length_p50, stats.length_p95, stats.length_p99, stats.length_max)),
        ]
        data.add_row(*row)
    console.print(data)

    steps = result.steps
    console.print(f"Steps: {steps.per_epoch:,} per epoch, {steps.total:,} in total ({steps.note}).")
    share = f" ({result.trainable_parameters / total:.2%} of {total:,})" if total else ""
    console.print(f"Trainable parameters ({config.method}): {result.trainable_parameters:,}{share}")

    memory = Table(
        title=f"GPU memory, GB (batch {config.batch_size} × {result.seq_len:,} tokens,"
        f" checkpointing {'on' if config.gradient_checkpointing else 'off'})",
        title_justify="left",
    )
    memory.add_column("part")
    for method in result.memory:
        label = f"{method} *" if method == config.method else method
        memory.add_column(label, justify="right")
    parts = ("weights", "quant_constants", "sixteen_bit_parts", "trainable", "gradients", "optimizer",
             "activations", "logits", "overhead", "total")  # fmt: skip
    for part in parts:
        memory.add_row(part.replace("_", " "), *(_gb(getattr(est, part)) for est in result.memory.values()))
    fits_row = []
    for est in result.memory.values():
        fits_row.append(", ".join(f"{gb}" for gb, ok in sorted(est.fits().items()) if ok) or "none")
    memory.add_row("fits on (GB)", *fits_row)
    console.print(memory)

    if result.time is not None:
        console.print(
            f"Time: about {_duration(result.time.seconds)} ({result.time_assumption}; an order of magnitude, from FLOPs)"
        )
    elif result.time_assumption:
        console.print(f"Time: {result.time_assumption}")
    if not quiet:
        for warning in result.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(visible(warning))}")
        for note in result.notes:
            console.print(f"note: {escape(visible(note))}")
    if result.labels:
        from ftdata_train.labels import render_labels

        style: Literal["rich", "brackets"] = "rich" if console.is_terminal else "brackets"
        legend = "trained tokens in colour" if style == "rich" else "trained tokens in [[...]]"
        for number, example in enumerate(result.labels, start=1):
            cut = ", truncated" if example.truncated else ""
            console.rule(f"example {number} ({len(example.input_ids):,} tokens{cut}; {legend})", align="left")
            rendered = render_labels(example, result.tokenizer, style=style)
            if style == "rich":
                console.print(rendered)
            else:
                click.echo(rendered)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _print_result(outcome: Any, *, quiet: bool) -> None:
    parts = [f"{outcome.global_step:,} steps"]
    if outcome.train_loss is not None:
        parts.append(f"train loss {outcome.train_loss:.4f}")
    if outcome.eval_loss is not None:
        parts.append(f"eval loss {outcome.eval_loss:.4f}")
    click.echo(f"Trained: {', '.join(parts)}. Saved to {outcome.output_dir}")
    if outcome.best_checkpoint:
        click.echo(f"Best checkpoint: {outcome.best_checkpoint}")
    if not quiet:
        for note in outcome.notes:
            click.echo(f"note: {note}", err=True)
