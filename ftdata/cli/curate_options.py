"""Options shared by the curation commands that can run on a Ray cluster (``ftdata dedup``,
``ftdata leak``, ``ftdata split``), and the choice of engine they make from them and the configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def ray_options(what: str, *, work_dir: bool = True) -> Callable[[Any], Any]:
    """``--engine``, ``--address``, ``--work-dir`` (unless ``work_dir`` is False: a
    command that keeps no intermediates) and ``--blocks``; ``what`` says which part of
    the command runs on the cluster."""
    decorators = [
        click.option(
            "--engine",
            type=click.Choice(["local", "ray"]),
            help=f"Where {what} run: here or a Ray cluster ('ray' extra); default: [tool.ftdata] engine, else local.",
        ),
        click.option(
            "--address",
            help="--engine ray: the cluster to join, auto or ray://HOST:PORT (default: [tool.ftdata] address, "
            "else a local one).",
        ),
        click.option(
            "--work-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="--engine ray: intermediates, on storage all nodes see; a stopped run resumes there "
            "(default: a temp folder).",
        ),
        click.option("--blocks", type=click.IntRange(min=1), help="--engine ray: byte ranges to cut each input into."),
    ]
    if not work_dir:
        del decorators[2]

    def apply(f: Any) -> Any:
        for decorate in reversed(decorators):
            f = decorate(f)
        return f

    return apply


def engine_for(engine: str | None, address: str | None, config: Path | bool, folder: Path) -> tuple[str, str | None]:
    """The engine and cluster address: the options given, else ``engine`` and ``address``
    of ``[tool.ftdata]`` (``config``: True, the configuration found from ``folder``; a
    path, that file; False, none)."""
    from ftdata.api import settings_for
    from ftdata.cli import UsageFailure
    from ftdata.config import ConfigError

    try:
        settings = settings_for(config, folder)
    except ConfigError as e:
        raise UsageFailure(str(e)) from None
    return engine or settings.engine, address if address is not None else settings.address
