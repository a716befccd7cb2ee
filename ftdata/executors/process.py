"""Run shard functions in worker processes that never outlive the run.

Workers ignore SIGINT (the parent handles Ctrl-C and terminates them), ask the kernel to
send them SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``, so a ``kill -9`` of
the parent leaves no orphans), and the parent terminates them on SIGTERM, on any error
and when the consumer stops reading results.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def mp_context() -> Any:
    """Fork where it is safe (quick to start); spawn once torch or a Rust tokenizer has
    started threads in this process, as forking them can deadlock."""
    threaded = any(name in sys.modules for name in ("torch", "tokenizers"))
    fork = "fork" in multiprocessing.get_all_start_methods() and not threaded
    return multiprocessing.get_context("fork" if fork else "spawn")


class _Terminated(Exception):
    pass


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated(signum)


# The function a worker runs, received once when it starts rather than with every item:
# a shard function carries the plan, and items should cost no more than their own bytes.
_worker_fn: Callable[[Any], Any] | None = None


def _start_worker(parent: int, fn: Callable[[Any], Any]) -> None:
    global _worker_fn
    _die_with_parent(parent)
    _worker_fn = fn


def _run(item: Any) -> Any:
    assert _worker_fn is not None
    return _worker_fn(item)


class ProcessExecutor:
    """``map`` over a pool of ``jobs`` worker processes."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        pool = mp_context().Pool(self.jobs, initializer=_start_worker, initargs=(os.getpid(), fn))
        previous = None
        main_thread = multiprocessing.current_process().name == "MainProcess"
        try:
            if main_thread:
                try:
                    previous = signal.signal(signal.SIGTERM, _raise_terminated)
                except ValueError:  # not the main thread: leave signals alone
                    previous = None
            yield from pool.imap(_run, items)
            pool.close()
            pool.join()
        except _Terminated:
            pool.terminate()
            pool.join()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
                previous = None
            raise SystemExit(128 + signal.SIGTERM) from None
        finally:
            pool.terminate()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
