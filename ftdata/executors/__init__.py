"""Where shard functions run. An executor has one method, ``map(fn, items)``, returning
``fn(item)`` for every item in order; serial and process executors ship here, and a
cluster executor needs only a module of its own beside them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs a picklable function over items; results come back in the items' order."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]: ...


def for_jobs(jobs: int) -> Executor:
    """The executor for ``--jobs``: serial for one job, a process pool for more."""
    if jobs <= 1:
        from ftdata.executors.serial import SerialExecutor

        return SerialExecutor()
    from ftdata.executors.process import ProcessExecutor

    return ProcessExecutor(jobs)


def for_engine(
    engine: str, *, address: str | None = None, jobs: int | None = None, work_dir: str | os.PathLike[str] | None = None
) -> Executor | None:
    """The executor for ``--engine``: None for ``local`` (the engine picks serial or a
    process pool by file size and ``jobs``), a Ray executor for ``ray`` (the ``ray``
    extra; ``address`` None joins or starts a local cluster; ``work_dir`` holds the
    intermediates of its dataset stages and must be seen by every node, default a
    temporary folder on this machine). Without the extra, raises
    :class:`~ftdata.config.ConfigError` saying what to install."""
    if engine == "local":
        return None
    if engine != "ray":
        raise ValueError(f"unknown engine {engine!r}")
    from ftdata.executors.ray import RayExecutor

    try:
        return RayExecutor(address=address, work_dir=work_dir)
    except ImportError as e:
        from ftdata.config import ConfigError

        raise ConfigError(str(e)) from None
