"""The ``ftdata`` command line: one module per command group, each command a few calls into
the library. ``main`` is the click group; the command modules register on it.

Exit codes: 0 clean, 1 findings at or above ``--fail-on``, 2 usage, configuration or
I/O error.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from ftdata._version import __version__
from ftdata.names import INPUT_FORMATS as FORMAT_NAMES
from ftdata.names import OUTPUT_FORMATS as OUTPUT_FORMAT_NAMES
from ftdata.names import PROFILES as PROFILE_NAMES

__all__ = ["FORMAT_NAMES", "OUTPUT_FORMAT_NAMES", "PROFILE_NAMES", "UsageFailure", "main", "run"]


class UsageFailure(click.ClickException):
    """An error the user can fix (bad config, unreadable file): exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        from ftdata.render.text import visible

        click.echo(f"ftdata: error: {visible(self.format_message())}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="ftdata")
def main() -> None:
    """Check fine-tuning datasets before you train on them."""


def split_values(values: tuple[str, ...]) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(part.strip() for v in values for part in v.split(",") if part.strip())


def choice_option(name: str, choices: Sequence[str], *, help: str, default: str | None = None) -> Callable[[Any], Any]:
    """A ``--name`` option taking one of ``choices``; the first is the default unless given."""
    return click.option(
        name, type=click.Choice(list(choices)), default=default or choices[0], show_default=True, help=help
    )


def _options(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click options as one decorator, in the order given."""

    def apply(f: Any) -> Any:
        for decorate in reversed(decorators):
            f = decorate(f)
        return f

    return apply


class AliasedOption(click.Option):
    """An option whose later names still work (for scripts written against older
    releases) but are not shown in ``--help``."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        names, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = names


def _format_part(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep what ``--input-format``, ``--map`` and ``--dataset-info`` say, and give the
    command one format spec (``alpaca[question=instruction]``) in ``input_format``: the
    value every command already passes on as its format, so the mapping travels with it
    to the library, its worker processes and the manifests. Click may process the three
    in any order, so the spec is rebuilt after each."""
    parts = ctx.meta.setdefault("ftdata.format_parts", {})
    if param.name == "map_fields":
        from ftdata.formats.fields import FieldsError, parse_map

        try:
            parts["map"] = parse_map(value) if value else {}
        except FieldsError as e:
            raise click.BadParameter(str(e), ctx=ctx, param=param) from None
    elif param.name == "dataset_info":
        parts["info"] = str(value.resolve()) if value is not None else None
    else:
        parts["format"] = value
    spec = _spec(parts)
    if param.name == "input_format":
        return spec
    if "input_format" in ctx.params:
        ctx.params["input_format"] = spec
    return None


def _spec(parts: dict[str, Any]) -> str | None:
    if not parts.get("map") and not parts.get("info"):
        return parts.get("format")
    from ftdata.formats.fields import compose

    return compose(parts.get("format"), parts.get("map") or None, parts.get("info"))


#: ``--input-format``, ``--map`` and ``--dataset-info``: how records are read, given to the
#: command as one format spec in ``input_format``.
input_format_option = _options(
    click.option(
        "--input-format",
        "--format",
        "input_format",
        cls=AliasedOption,
        type=click.Choice(FORMAT_NAMES),
        callback=_format_part,
        help="Force the record format instead of detecting it.",
    ),
    click.option(
        "--map",
        "map_fields",
        multiple=True,
        metavar="SOURCE=TARGET,...",
        expose_value=False,
        callback=_format_part,
        help="Read the file's own keys as a type's: question=prompt,answer=completion "
        "(nested: conversation.turns=messages).",
    ),
    click.option(
        "--dataset-info",
        "dataset_info",
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        expose_value=False,
        callback=_format_part,
        help="A LLaMA-Factory dataset_info.json naming the file's formatting and columns "
        "(default: the one next to the data, if any).",
    ),
)

#: The options that choose the rules (lint and audit).
rule_selection = _options(
    click.option(
        "--select",
        multiple=True,
        metavar="RULES",
        help="Rules to run (codes, prefixes, names or ALL), replacing the default set.",
    ),
    click.option("--ignore", multiple=True, metavar="RULES", help="Rules to skip."),
    click.option("--extend-select", multiple=True, metavar="RULES", help="Rules to run on top of the selection."),
    click.option("--profile", type=click.Choice(PROFILE_NAMES), help="Apply a provider's documented strictness."),
    input_format_option,
)


def silence_third_party(quiet: bool) -> None:
    """Keep other libraries' warnings, log lines and progress bars off stderr: always for
    the model libraries' loading noise, and for everything with ``--quiet``, which means
    nothing on stderr but errors."""
    import logging
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)


@contextlib.contextmanager
def progress_bar(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on a terminal; nothing under pre-commit, CI or a pipe."""
    silence_third_party(quiet)
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
    """Attach the built-in commands (imported here so each module can import ``main``),
    then those other packages register in the ``ftdata.commands`` entry-point group (each
    entry a click command, e.g. ``train = "ftdata_train.cli:train"``)."""
    from importlib.metadata import entry_points

    from ftdata.cli import audit, convert, curate, lint, rules  # noqa: F401

    for ep in entry_points(group="ftdata.commands"):
        if ep.name in main.commands:
            continue  # a built-in command cannot be replaced
        try:
            command = ep.load()
        except Exception as e:  # a broken plugin must not take the built-in commands down
            command = _broken_plugin(ep.name, e)
        main.add_command(command, ep.name)


def _broken_plugin(name: str, error: Exception) -> click.Command:
    def fail() -> None:
        raise UsageFailure(f"the command {name!r} could not be loaded: {type(error).__name__}: {error}")

    return click.Command(name, callback=fail, help=f"(could not be loaded: {type(error).__name__})")


_register()


def run() -> None:
    """Console entry point: like ``main`` but quiet when the reader of stdout goes away."""
    import signal

    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()


if __name__ == "__main__":  # pragma: no cover
    run()
