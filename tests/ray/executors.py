"""Ray executors for the tests of the distributed stages: one that keeps the stages it
offers (to read their counts), one that also notes the columns shard results bring back
to the driver, one whose workers die on their first attempt at a task,
one that is stopped (Ctrl-C) once the first partition of a rule is judged."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ftdata.distributed.conflicts import ConflictStage, judge_partition
from ftdata.engine.scan import Shard, ShardResult
from ftdata.executors.ray import RayExecutor


class KeepsStages(RayExecutor):
    """The Ray executor, keeping the stages it offers so that a test reads their counts."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stages: list[ConflictStage] = []

    def dataset_stages(self, plan: Any, parts: Sequence[Shard]) -> ConflictStage | None:
        stage = super().dataset_stages(plan, parts)
        if stage is not None:
            self.stages.append(stage)
        return stage


class Watching(KeepsStages):
    """:class:`KeepsStages`, noting too the columns every shard result brings back to the
    driver, and how many shard results came back."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns: set[str] = set()
        self.shards = 0

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        for result in super().map(fn, items):
            found = result[0] if isinstance(result, tuple) else result
            if isinstance(found, ShardResult):
                self.shards += 1
                self.columns |= set(found.collected)
            yield result


class KillFirstAttempt(RayExecutor):
    """Runs each task on Ray, except that the first attempt at each item kills its own
    worker process (a marker file per item, named ``<function>-<item>``, says whether it
    was tried), so Ray must retry."""

    def __init__(self, markers: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.markers = markers

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        markers = str(self.markers)
        name = getattr(fn, "func", fn).__name__

        def die_once(item: Any) -> Any:
            import signal

            key = item.start if isinstance(item, Shard) else item
            try:
                os.close(os.open(os.path.join(markers, f"{name}-{key}"), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return fn(item)
            os.kill(os.getpid(), signal.SIGKILL)
            raise AssertionError("unreachable")

        return super().map(die_once, items)


class StopsAfterFirstPartition:
    """Put before a :class:`RayExecutor` (sub)class: interrupts the run (Ctrl-C) once the
    first partition of the rule ``stop_code`` is judged."""

    stop_code = "FT403"

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        keywords = getattr(fn, "keywords", {})
        stop = getattr(fn, "func", None) is judge_partition and keywords.get("code") == self.stop_code
        for k, result in enumerate(super().map(fn, items)):  # type: ignore[misc]
            if stop and k == 1:
                raise KeyboardInterrupt
            yield result
