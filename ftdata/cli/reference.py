"""docs/cli.md: the command-line reference, generated from the registered commands."""

from __future__ import annotations

import click

from ftdata.cli import main


def cli_markdown() -> str:
    """The command-line reference, from each command's ``--help``; ``docs/cli.md`` is this
    text and a test keeps it current."""
    out = [
        "# Command line",
        "",
        "Generated from `ftdata COMMAND --help` by `python -m ftdata.cli.reference`; do not edit by hand.",
        "",
    ]
    settings = {**main.context_settings, "terminal_width": 100}
    ctx = click.Context(main, info_name="ftdata", **settings)
    out += ["## ftdata", "", "```", main.get_help(ctx).rstrip(), "```"]
    for name in sorted(main.commands):
        command = main.commands[name]
        sub = click.Context(command, info_name=name, parent=ctx, **settings)
        out += ["", f"## ftdata {name}", "", "```", command.get_help(sub).rstrip(), "```"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(cli_markdown())
