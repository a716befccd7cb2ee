"""Run shard functions as Ray tasks (the ``ray`` extra: ``pip install 'ftdata[ray]'``).

The executor joins the cluster at ``address`` (``auto``, ``ray://HOST:PORT`` or a GCS
``HOST:PORT``), or the one this process already joined, or starts a local one. The bound
arguments of the function (a lint plan, a stage's options) go to the object store once;
each item is one task, retried when its worker dies, and results come back in the
items' order whatever order the tasks finish in.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ftdata.distributed.conflicts import ConflictStage
    from ftdata.engine.plan import Plan
    from ftdata.engine.scan import Shard

T = TypeVar("T")
R = TypeVar("R")

#: Times a task is run again when its worker process or node dies.
MAX_RETRIES = 3
#: What to install when Ray is missing.
EXTRA_HINT = "the ray engine needs the 'ray' extra: pip install 'ftdata[ray]'"


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"{EXTRA_HINT} ({e})") from None
    return ray


def connect(address: str | None = None) -> Any:
    """The ``ray`` module, joined to a cluster: the one already joined, else the one at
    ``address``, else a new local one. Ray's own logging is kept off this process's
    streams: what the library reports goes through its results, never printed."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(
            address=address,
            ignore_reinit_error=True,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    return ray


def _call(bound: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]], item: Any) -> Any:
    fn, args, kwargs = bound
    return fn(*args, item, **kwargs)


def _unwrap(ray: Any, error: BaseException) -> BaseException:
    """The exception the task raised (an ``InputChangedError``, a ``ValueError``), not
    Ray's wrapper around it, so callers handle it as from any executor."""
    cause = getattr(error, "cause", None)
    if isinstance(error, ray.exceptions.RayTaskError) and isinstance(cause, BaseException):
        return cause
    return error


class RayExecutor:
    """``map`` as Ray tasks. ``parts`` is how many shards a file is cut into (default:
    two per CPU of the cluster); ``min_bytes`` 0 shards files of any size, as a cluster
    gains nothing from a local shortcut and tests on small files exercise it.
    ``work_dir`` is where the lint's distributed stages keep their intermediates: a
    folder every node of the cluster sees (default: a temporary folder of the driver,
    enough for a cluster on one machine)."""

    min_bytes = 0

    def __init__(
        self,
        address: str | None = None,
        *,
        parts: int | None = None,
        max_retries: int = MAX_RETRIES,
        work_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        _ray()  # fail before any data is read when the extra is missing
        self.address = address
        self._parts = parts
        self.max_retries = max_retries
        self.work_dir = work_dir

    def dataset_stages(self, plan: Plan, parts: Sequence[Shard]) -> ConflictStage | None:
        """The distributed stages of the dataset rules of ``plan`` for a file cut into
        ``parts`` (FT401's duplicate groups, FT402 and FT403's conflict groups, FT404's
        MinHash near duplicates), or None when the plan has none: the engine then runs
        every dataset rule on the driver.
        With ``work_dir`` there is always a stage: it keeps every finished shard's result
        there, so that an interrupted lint resumes."""
        from ftdata.distributed.conflicts import ConflictStage, staged_codes

        if self.work_dir is None and not any(True for _ in staged_codes(plan)):
            return None
        return ConflictStage(self, plan, parts, work_dir=self.work_dir)

    @property
    def parts(self) -> int:
        if self._parts is not None:
            return max(1, self._parts)
        ray = connect(self.address)
        return max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        """``fn`` of every item, each a task. A function with a ``known(item)`` method (a
        resumed run's) may already have an item's result: ``known`` then gives its reader,
        called here in order instead of a task, and ``fn.run`` is what the tasks run."""
        ray = connect(self.address)
        known: Callable[[T], Callable[[], R] | None] | None = getattr(fn, "known", None)
        found = [known(item) for item in items] if known is not None else [None] * len(items)
        run = getattr(fn, "run", fn) if known is not None else fn
        if all(read is not None for read in found):
            return self._results(ray, found)
        if isinstance(run, partial):
            bound = (run.func, run.args, dict(run.keywords))
        else:
            bound = (run, (), {})
        shared = ray.put(bound)
        task = ray.remote(max_retries=self.max_retries, retry_exceptions=False)(_call)
        refs = [task.remote(shared, item) if read is None else read for item, read in zip(items, found, strict=True)]
        return self._results(ray, refs)

    @staticmethod
    def _results(ray: Any, refs: list[Any]) -> Iterator[Any]:
        """The result of each task ref, or of each reader (a known result), in order."""
        done = 0
        try:
            for ref in refs:
                if not isinstance(ref, ray.ObjectRef):
                    yield ref()
                    done += 1
                    continue
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    raise _unwrap(ray, e) from None
                done += 1
        finally:
            for ref in refs[done:]:  # a consumer that stops early leaves no work running
                if isinstance(ref, ray.ObjectRef):
                    with contextlib.suppress(Exception):  # already finished or gone
                        ray.cancel(ref)

    def embedder(self) -> Any:
        """The embedder of this cluster: batches of texts embedded by Ray actors that each
        hold the model (on a GPU where the cluster has them), for the semantic rules and
        groupings: a :class:`~ftdata.distributed.embed.RayEmbedder`."""
        from ftdata.distributed.embed import RayEmbedder

        return RayEmbedder(self.address)
