"""FT404 on Ray runs as distributed stages and gives the bytes of a local run: for 1, 2
and 4 blocks, with its options changed, on the benchmark corpus and on real files,
without the shingle sets of every record coming back to the driver, resuming from the
partitions it bucketed, and when a worker dies mid-stage."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

import ftdata
from ftdata.executors.ray import RayExecutor
from ftdata.render.jsonout import render_json
from tests.conftest import REAL
from tests.ray.executors import KillFirstAttempt, StopsAfterFirstPartition, Watching


def _json(source: Path, options: dict[str, Any] | None = None, **kwargs: Any) -> str:
    out = io.StringIO()
    render_json(ftdata.lint(source, config=False, select=["FT404"], options={"FT404": options or {}}, **kwargs), out)
    return out.getvalue()


def _codes(found: str) -> list[str]:
    return [f["code"] for f in json.loads(found)]


@pytest.fixture(scope="module")
def real_near(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real records as JSON Lines (only JSON Lines files are cut into blocks): the Alpaca
    and tool-call demos, then edited copies of some of them spread over the file (a word
    changed in the reply), which only a near-duplicate check finds."""
    records: list[Any] = []
    for name in ("alpaca_en_demo.json", "glaive_toolcall_en_demo.json"):
        records.extend(json.loads((REAL / name).read_text(encoding="utf-8")))
    alpaca = [r for r in records if isinstance(r.get("output"), str) and len(r["output"].split()) > 40]
    for k, rec in enumerate(alpaca[:40:2]):
        copy = dict(rec)
        words = copy["output"].split()
        words[len(words) // 2] = "indeed"
        copy["output"] = " ".join(words)
        records.insert(len(records) - 13 * k, copy)
    path = tmp_path_factory.mktemp("near") / "real.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("parts", [1, 2, 4])
def test_corpus_near_duplicates_on_ray_are_byte_identical(cluster: Any, planted: Path, parts: int) -> None:
    local = _json(planted, jobs=1)
    executor = Watching(parts=parts)
    assert _json(planted, executor=executor) == local
    assert "FT404" not in executor.columns  # the shingle sets stayed with the workers
    (stage,) = executor.stages
    assert stage.counts["partitions judged"] == parts
    assert stage.counts["blocks verified"] == parts
    found = [f for f in json.loads(local) if f["code"] == "FT404"]
    assert len(found) >= 20
    assert any(f["score"] is not None and f["score"] < 1.0 for f in found)  # near, not only exact copies
    assert max(f["line"] for f in found) > 1000  # groups cross the blocks


OPTIONS: list[dict[str, Any]] = [
    {"threshold": 0.6},
    {"scope": "prompt"},
    {"scope": "answer", "keep": "longest"},
    {"answer_threshold": 0.0, "num_perm": 64, "seed": 7},
    {"shingle": "char", "n": 4, "bands": 16, "threshold": 0.7},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_ft404_options_on_ray_are_byte_identical(cluster: Any, planted: Path, options: dict[str, Any]) -> None:
    local = _json(planted, options, jobs=1)
    executor = Watching(parts=4)
    assert _json(planted, options, executor=executor) == local
    assert "FT404" not in executor.columns
    assert _codes(local).count("FT404") >= 10


def test_the_options_decide_the_groups(planted: Path) -> None:
    """The runs compared above differ from the default run and from each other."""
    runs = [_json(planted, jobs=1)] + [_json(planted, o, jobs=1) for o in OPTIONS]
    assert len(set(runs)) == len(runs)


@pytest.mark.parametrize("parts", [1, 2, 4])
def test_real_records_near_duplicates_on_ray_are_byte_identical(cluster: Any, real_near: Path, parts: int) -> None:
    for options in ({}, {"scope": "answer", "threshold": 0.7}):
        local = _json(real_near, options, jobs=1)
        executor = Watching(parts=parts)
        assert _json(real_near, options, executor=executor) == local
        assert "FT404" not in executor.columns
        assert _codes(local).count("FT404") >= 15


@pytest.mark.parametrize("parts", [2, 4])
@pytest.mark.parametrize(
    "path",
    [
        REAL.parent / "instructlab_training-0.16.2" / "train_all_pruned_SDG_sample.jsonl",
        REAL / "v1_sft_demo.jsonl",
        REAL / "reason_tool_use_demo_50.jsonl",
    ],
    ids=lambda p: p.name,
)
def test_real_jsonl_files_on_ray_are_byte_identical(cluster: Any, path: Path, parts: int) -> None:
    found = 0
    for options in (
        {"threshold": 0.5},
        {"scope": "prompt", "threshold": 0.5, "keep": "longest"},
        {"scope": "answer", "threshold": 0.5},
    ):
        local = _json(path, options, jobs=1)
        executor = Watching(parts=parts)
        assert _json(path, options, executor=executor) == local
        assert "FT404" not in executor.columns
        found += _codes(local).count("FT404")
    assert found >= 3


@pytest.mark.parametrize("option", [{"bands": 300}, {"scope": "turns"}, {"keep": "last"}])
def test_options_the_rule_fails_on_stay_on_the_driver(cluster: Any, planted: Path, option: dict[str, Any]) -> None:
    """The local rule fails on these (an error of the run): FT404 then runs on the driver,
    with its column (none for a scope the collector does not know), and fails there with
    the same message."""
    local = _json(planted, option, jobs=1)
    executor = Watching(parts=2)
    assert _json(planted, option, executor=executor) == local
    assert executor.stages == []  # no stage was offered: FT404 was its only rule
    assert ("FT404" in executor.columns) == ("scope" not in option)
    assert _codes(local) == ["FT000"]


class _KillNearTasks(KillFirstAttempt):
    """Kills the first attempt at each task of FT404's own stages (buckets, verify, the
    lines of the records kept); the scan's are killed in tests/ray/test_duplicates.py."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        if getattr(getattr(fn, "func", fn), "__name__", "") in ("judge_partition", "verify", "record_lines"):
            return super().map(fn, items)
        return RayExecutor.map(self, fn, items)


def test_a_worker_killed_in_every_stage_is_retried(cluster: Any, planted: Path, tmp_path: Path) -> None:
    options = {"keep": "longest"}
    expected = _json(planted, options, jobs=1)
    markers = tmp_path / "markers"
    markers.mkdir()
    assert _json(planted, options, executor=_KillNearTasks(markers, parts=2)) == expected
    tried = sorted(os.listdir(markers))
    assert [t for t in tried if not t.startswith("record_lines")] == [
        "judge_partition-0",
        "judge_partition-1",
        "verify-0",
        "verify-1",
    ]
    assert any(t.startswith("record_lines") for t in tried)


class _StopAfterFirstPartition(StopsAfterFirstPartition, Watching):
    """Interrupts the run (Ctrl-C) once the first partition of FT404 is bucketed."""

    stop_code = "FT404"


def test_a_lint_stopped_while_bucketing_resumes_from_the_finished_work(
    cluster: Any, planted: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    expected = _json(planted, jobs=1)
    first = _StopAfterFirstPartition(parts=4, work_dir=work)
    with pytest.raises(KeyboardInterrupt):
        _json(planted, executor=first)
    (folder,) = work.glob("ftdata-lint-*")
    assert len(list(folder.glob("FT404/buckets/p*.done"))) >= 1  # kept for the next run
    assert not list(folder.glob("FT404/verify/*"))
    again = Watching(parts=4, work_dir=work)
    assert _json(planted, executor=again) == expected
    counts = again.stages[0].counts
    assert (counts["shards scanned"], counts["shards resumed"]) == (0, 4)
    assert counts["partitions resumed"] >= 1
    assert counts["partitions resumed"] + counts["partitions judged"] == 4
    assert list(work.iterdir()) == []


def test_a_lint_stopped_after_verifying_resumes_without_running_it_again(
    cluster: Any, planted: Path, tmp_path: Path
) -> None:
    """Stopped while reading the lines of the records kept: the blocks verified are read
    back, and nothing but that last step runs again."""
    work = tmp_path / "work"
    expected = _json(planted, jobs=1)

    class StopAtLines(Watching):
        def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
            if getattr(getattr(fn, "func", fn), "__name__", "") == "record_lines":
                raise KeyboardInterrupt
            return super().map(fn, items)

    with pytest.raises(KeyboardInterrupt):
        _json(planted, executor=StopAtLines(parts=2, work_dir=work))
    again = Watching(parts=2, work_dir=work)
    assert _json(planted, executor=again) == expected
    counts = again.stages[0].counts
    assert (counts["shards resumed"], counts["partitions resumed"], counts["blocks resumed"]) == (2, 2, 2)
    assert (counts["partitions judged"], counts["blocks verified"]) == (0, 0)
