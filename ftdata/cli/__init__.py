"""The ``ftdata`` command line: one module per command group, each command a few calls into
the library. ``main`` is the click group; the command modules register on it.

Exit codes: 0 clean, 1 findings at or above ``--fail-on``, 2 usage, configuration or
I/O error.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

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


def _register() -> None:
    """Attach the built-in commands (imported here so each module can import ``main``)."""
    from ftdata.cli import audit, curate, lint, rules  # noqa: F401


_register()


def run() -> None:
    """Console entry point: like ``main`` but quiet when the reader of stdout goes away."""
    import signal

    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()


if __name__ == "__main__":  # pragma: no cover
    run()
