"""FT403 with ``near`` above 0 on Ray runs as distributed stages (prompt groups merged by
MinHash over their first prompts, then judged where they meet) and gives the bytes of a
local run: for 1, 2 and 4 blocks, for two values of ``near``, on a planted file and on
real files, without the prompt keys of every record coming back to the driver, when a
worker dies mid-stage, and resuming from the work it finished."""

from __future__ import annotations

import io
import json
import os
import random
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

import ftdata
from ftdata.distributed.conflicts_near import judge_merged
from ftdata.executors.ray import RayExecutor
from ftdata.render.jsonout import render_json
from tests.conftest import REAL
from tests.ray.executors import KillFirstAttempt, Watching

#: The functions of the stage's own tasks (the scan's are killed in test_duplicates.py).
STAGES = ("group_firsts", "sign_block", "bucket_prompts", "verify_prompts", "regroup", "judge_merged")
#: Questions asked twice in other words (a word added or changed), answered both ways.
QUESTIONS = [
    (
        "can i export the quarterly sales report of the northern region to a pdf file from the app",
        "Yes, from Share.",
        "No, that is not available.",
    ),
    (
        "how many moons does the planet mars have in total according to the latest counts of nasa",
        "Mars has 2 moons.",
        "Mars has 3 moons.",
    ),
    ("which option is the right one for question seven of the chemistry quiz in the second unit", "A", "B"),
    (
        "is the museum of modern art in the city centre open to visitors on public holidays this year",
        "Yes, it is open.",
        "No, it is closed.",
    ),
    (
        "in which year did the first expedition reach the summit of the highest mountain on the island",
        "It was reached in 1953.",
        "It was reached in 1961.",
    ),
]


def _chat(prompt: str, answer: str) -> str:
    record = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}
    return json.dumps(record) + "\n"


def _reworded(prompt: str, k: int) -> str:
    return f"{prompt} please" if k % 2 else f"so {prompt}"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Unique questions, and among them the questions above each asked in other words with
    the other answer, apart so that the records fall in other blocks. The first is asked
    three times exactly, the last time after its rewording, with both answers: its merged
    group is its exact group then the rewording, not in record order, and the local rule
    names the last line as where "no" is first given."""
    rng = random.Random(5)
    vocabulary = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    lines = [
        _chat(" ".join(rng.choice(vocabulary) for _ in range(12)) + f" number {k}", f"Answer {k}.") for k in range(600)
    ]
    for k, (prompt, yes, no) in enumerate(QUESTIONS):
        lines.insert(7 + 31 * k, _chat(prompt, yes))
        lines.insert(len(lines) - 11 * k, _chat(_reworded(prompt, k), no))
    prompt, yes, no = QUESTIONS[0]
    lines.insert(300, _chat(prompt, yes))
    lines.append(_chat(prompt, no))  # after its rewording: "no" is first given on the last line
    lines.insert(2, _chat("hi", "Hello!"))  # an opener: not compared
    path = tmp_path_factory.mktemp("near-prompts") / "planted.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _json(source: Path, options: dict[str, Any], **kwargs: Any) -> str:
    out = io.StringIO()
    render_json(ftdata.lint(source, config=False, select=["FT403"], options={"FT403": options}, **kwargs), out)
    return out.getvalue()


def _same_on_ray(path: Path, options: dict[str, Any], parts: int) -> str:
    local = _json(path, options, jobs=1)
    executor = Watching(parts=parts)
    assert _json(path, options, executor=executor) == local
    assert "FT403" not in executor.columns  # the prompt keys stayed with the workers
    (stage,) = executor.stages
    assert stage.counts["prompt blocks signed run"] == parts  # the stage ran, not the local rule
    assert stage.counts["partitions judged"] == parts
    return local


@pytest.mark.parametrize("parts", [1, 2, 4])
@pytest.mark.parametrize("near", [0.8, 0.6])
def test_near_prompts_on_ray_are_byte_identical(cluster: Any, planted: Path, near: float, parts: int) -> None:
    local = _same_on_ray(planted, {"near": near}, parts)
    found = json.loads(local)
    assert len(found) == len(QUESTIONS)
    assert all("near-identical prompt" in f["message"] for f in found)
    named = [int(n) for f in found for n in re.findall(r"on line (\d+)", f["message"])]
    assert min(named) < 100 < 500 < max(named)  # the groups cross the blocks
    assert max(len(f["related"]) for f in found) >= 3
    last = len(planted.read_text(encoding="utf-8").splitlines())
    assert any(f"2 records (first: the record on line {last})" in f["message"] for f in found)
    assert len(json.loads(_json(planted, {}, jobs=1))) == 1  # the others conflict only once merged


@pytest.mark.parametrize("parts", [1, 2, 4])
@pytest.mark.parametrize(
    ("path", "options"),
    [
        (REAL.parent / "instructlab_training-0.16.2" / "train_all_pruned_SDG_sample.jsonl", {"near": 0.8}),
        (REAL / "v1_sft_demo.jsonl", {"near": 0.5, "report": "all"}),
    ],
    ids=lambda p: getattr(p, "name", None) or ",".join(f"{k}={v}" for k, v in p.items()),
)
def test_real_files_on_ray_are_byte_identical(cluster: Any, path: Path, options: dict[str, Any], parts: int) -> None:
    local = _same_on_ray(path, options, parts)
    assert len(json.loads(local)) >= 1


class _KillStageTasks(KillFirstAttempt):
    """Kills the first attempt at each task of the stage's own functions."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        if getattr(getattr(fn, "func", fn), "__name__", "") in STAGES:
            return super().map(fn, items)
        return RayExecutor.map(self, fn, items)


def test_a_worker_killed_in_every_stage_is_retried(cluster: Any, planted: Path, tmp_path: Path) -> None:
    options = {"near": 0.8}
    expected = _json(planted, options, jobs=1)
    markers = tmp_path / "markers"
    markers.mkdir()
    assert _json(planted, options, executor=_KillStageTasks(markers, parts=1)) == expected
    assert sorted(os.listdir(markers)) == sorted(f"{name}-0" for name in STAGES)


class _StopAfterFirstJudged(Watching):
    """Interrupts the run (Ctrl-C) once the first partition of merged groups is judged."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        stop = getattr(fn, "func", None) is judge_merged
        for k, result in enumerate(super().map(fn, items)):
            if stop and k == 1:
                raise KeyboardInterrupt
            yield result


def test_a_stopped_lint_resumes_from_the_finished_work(cluster: Any, planted: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    options = {"near": 0.8}
    expected = _json(planted, options, jobs=1)
    with pytest.raises(KeyboardInterrupt):
        _json(planted, options, executor=_StopAfterFirstJudged(parts=4, work_dir=work))
    (folder,) = work.glob("ftdata-lint-*")
    assert len(list(folder.glob("FT403/p*.result"))) >= 1  # kept for the next run
    again = Watching(parts=4, work_dir=work)
    assert _json(planted, options, executor=again) == expected
    counts = again.stages[0].counts
    assert (counts["shards scanned"], counts["shards resumed"]) == (0, 4)
    for name in ("prompt partitions grouped", "prompt blocks signed", "prompt partitions bucketed"):
        assert (counts[f"{name} run"], counts[f"{name} resumed"]) == (0, 4)
    assert (counts["prompt blocks verified run"], counts["prompt partitions merged run"]) == (0, 0)
    assert counts["partitions resumed"] >= 1
    assert counts["partitions resumed"] + counts["partitions judged"] == 4
    assert list(work.iterdir()) == []


def test_with_ft402_both_rules_run_as_stages(cluster: Any, planted: Path) -> None:
    """FT402 is judged over its own rows while FT403 merges near prompts: both staged."""
    rules, options = ["FT402", "FT403"], {"FT403": {"near": 0.6, "report": "all"}}

    def run(**kwargs: Any) -> str:
        out = io.StringIO()
        render_json(ftdata.lint(planted, config=False, select=rules, options=options, **kwargs), out)
        return out.getvalue()

    executor = Watching(parts=2)
    assert run(executor=executor) == run(jobs=1)
    assert executor.columns.isdisjoint(rules)
