"""A distributed dedup or leakage audit refuses an input that changed while it ran (as
the local engine does): a clear error, and no output written."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

from ftdata.distributed import dedup, leakage
from ftdata.executors.ray import RayExecutor
from ftdata.outputs import InputChangedError

LATE = b'{"messages": [{"role": "user", "content": "written late"}, {"role": "assistant", "content": "ok"}]}\n'


def _append(path: Path) -> None:
    with path.open("ab") as f:
        f.write(LATE)


class _ChangeDuringScan:
    """Ray, except that ``path`` is written to after the first block of the scan stage
    was read and before the others are: the later block tasks see a changed file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inner = RayExecutor()

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        if getattr(fn, "func", None).__name__ != "scan_block" or len(items) < 2:  # type: ignore[union-attr]
            return self.inner.map(fn, items)
        first = list(self.inner.map(fn, items[:1]))
        _append(self.path)
        return chain(first, self.inner.map(fn, items[1:]))


@pytest.fixture
def copy(planted: Path, tmp_path: Path) -> Path:
    target = tmp_path / "input.jsonl"
    shutil.copyfile(planted, target)
    return target


@pytest.mark.parametrize("method", ["exact", "minhash"])
def test_dedup_refuses_an_input_changed_after_its_scan(cluster: Any, copy: Path, tmp_path: Path, method: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    seen: list[str] = []

    def change(stage: str) -> None:
        seen.append(stage)
        if stage == "scan":
            _append(copy)

    with pytest.raises(InputChangedError, match="changed"):
        dedup(copy, out / "kept.jsonl", executor=RayExecutor(), method=method, blocks=3, after_stage=change)
    assert seen == ["scan"]  # refused before the next stage, not only by the writer
    assert list(out.iterdir()) == []


def test_dedup_refuses_an_input_changed_between_two_blocks(cluster: Any, copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    work = tmp_path / "work"
    seen: list[str] = []
    with pytest.raises(InputChangedError, match="changed"):
        dedup(copy, out / "kept.jsonl", executor=_ChangeDuringScan(copy), blocks=3, work_dir=work,
              after_stage=seen.append)  # fmt: skip
    assert seen == []  # a block task refused it, inside the scan stage
    assert list(out.iterdir()) == []
    # the blocks read from the changed file were never marked done, so nothing resumes from them
    assert sorted(p.name for p in (work / "scan").glob("b*.json")) == ["b0.json"]


@pytest.fixture
def pair(planted: Path, tmp_path: Path) -> list[Path]:
    lines = planted.read_bytes().splitlines(keepends=True)
    paths = [tmp_path / "train.jsonl", tmp_path / "eval.jsonl"]
    paths[0].write_bytes(b"".join(lines[:1000]))
    paths[1].write_bytes(b"".join(lines[900:]))
    return paths


@pytest.mark.parametrize("stage", ["exact/scan", "minhash/scan"])
def test_leakage_refuses_a_file_changed_during_the_audit(cluster: Any, pair: list[Path], stage: str) -> None:
    def change(seen: str) -> None:
        if seen == stage:
            _append(pair[0])

    with pytest.raises(InputChangedError, match="changed"):
        leakage(pair, executor=RayExecutor(), config=False, blocks=2, after_stage=change)


def test_leakage_refuses_a_file_changed_between_two_blocks(cluster: Any, pair: list[Path]) -> None:
    with pytest.raises(InputChangedError, match="changed"):
        leakage(pair, executor=_ChangeDuringScan(pair[1]), methods=["exact"], config=False, blocks=2)
