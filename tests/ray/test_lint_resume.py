"""A Ray lint with a work directory resumes: killed after some shards, the same command
again reads the finished shards back instead of scanning them and prints the bytes of an
uninterrupted run; an input edited between the runs, or other settings, are linted
afresh."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

import ftdata
from ftdata.executors.ray import RayExecutor
from ftdata.render.jsonout import render_json
from tests.conftest import run_cli
from tests.ray.executors import KeepsStages, StopsAfterFirstPartition

#: The options every run here is given (the CLI's and the API's must make one plan).
ARGS = ("lint", "--isolated", "--no-cache", "--output-format", "json")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A benchmark corpus large enough that its shards take a while, with a prompt
    answered both ways in records far apart."""
    import corpus as bench

    path = tmp_path_factory.mktemp("resume") / "corpus.jsonl"
    bench.write_planted(path, 16000, seed=5)
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(7, _chat("How many moons does Mars have in total?", "Mars has 2 moons."))
    lines.insert(len(lines) - 3, _chat("How many moons does Mars have in total?", "Mars has 3 moons."))
    path.write_bytes(b"".join(lines))
    return path


def _chat(prompt: str, answer: str) -> bytes:
    record = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}
    return json.dumps(record).encode() + b"\n"


def _finished(work: Path) -> list[Path]:
    return sorted(work.glob("ftdata-lint-*/scan/b*.result"))


def _interrupted(address: str, source: Path, work: Path) -> int:
    """Start ``ftdata lint --engine ray --work-dir`` and kill it (SIGKILL) once one shard
    has finished; the number of finished shard files it left."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "ftdata", *ARGS, str(source), "--engine", "ray", "--address", address]
    proc = subprocess.Popen(
        [*argv, "--work-dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        deadline = time.monotonic() + 240
        while not _finished(work):
            assert proc.poll() is None, f"the run ended before it was interrupted: {proc.stderr.read()!r}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no shard finished in time"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        assert proc.stderr is not None
        proc.stderr.close()
    time.sleep(2)  # the killed driver's tasks are stopped by Ray; let any last rename land
    return len(_finished(work))


def _lint(source: Path, executor: RayExecutor, **kwargs: Any) -> str:
    out = io.StringIO()
    render_json(ftdata.lint(str(source), config=False, executor=executor, **kwargs), out)
    return out.getvalue()


def _uninterrupted(source: Path, *extra: str) -> str:
    done = run_cli(*ARGS, source, *extra)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return done.stdout


def test_a_killed_lint_resumes_with_the_same_bytes(cluster: Any, corpus: Path, tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    work = tmp_path / "work"
    expected = _uninterrupted(corpus)
    assert '"FT403"' in expected
    left = _interrupted(address, corpus, work)
    executor = KeepsStages(work_dir=work)
    parts = executor.parts
    assert 1 <= left < parts, f"{left} of {parts} shards finished before the kill"
    got = _lint(corpus, executor)
    assert got == expected
    (stage,) = executor.stages
    assert stage.counts["shards resumed"] == left
    assert stage.counts["shards scanned"] == parts - left
    assert list(work.iterdir()) == []  # a finished run leaves nothing to resume


def test_an_input_edited_between_the_runs_is_linted_afresh(cluster: Any, corpus: Path, tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    source = tmp_path / "edited.jsonl"
    source.write_bytes(corpus.read_bytes())
    work = tmp_path / "work"
    assert _interrupted(address, source, work) >= 1
    lines = source.read_bytes().splitlines(keepends=True)
    # a record of the first shard now contradicts one of the last: a finding only the
    # edited file has, in a shard the first run finished
    lines[1] = _chat("Is the export to PDF available?", "Yes, from Share > Export.")
    lines.insert(len(lines) - 2, _chat("Is the export to PDF available?", "No, that is not available."))
    source.write_bytes(b"".join(lines))
    expected = _uninterrupted(source)
    executor = KeepsStages(work_dir=work)
    got = _lint(source, executor)
    assert got == expected
    for text, wanted in ((got, 1), (_uninterrupted(corpus), 0)):  # the edited record's contradiction
        assert len([f for f in json.loads(text) if f["code"] == "FT403" and f["line"] == 2]) == wanted
    (stage,) = executor.stages
    assert stage.counts["shards resumed"] == 0
    assert list(work.iterdir()) == []  # the first run's folder went with the old stamp


def test_other_settings_never_reuse_finished_shards(cluster: Any, corpus: Path, tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    work = tmp_path / "work"
    assert _interrupted(address, corpus, work) >= 1
    options = {"FT403": {"report": "all"}}
    expected = _uninterrupted(corpus, "--option", "FT403.report=all")
    executor = KeepsStages(work_dir=work)
    assert _lint(corpus, executor, options=options) == expected
    assert executor.stages[0].counts["shards resumed"] == 0


class _StopAfterFirstPartition(StopsAfterFirstPartition, KeepsStages):
    """Interrupts the run (Ctrl-C) once the first partition of FT403 is judged."""


def test_a_lint_stopped_while_judging_resumes_from_the_judged_partitions(
    cluster: Any, corpus: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    expected = _lint(corpus, RayExecutor())
    first = _StopAfterFirstPartition(work_dir=work)
    with pytest.raises(KeyboardInterrupt):
        _lint(corpus, first)
    assert len(_finished(work)) == first.parts  # kept for the next run
    again = KeepsStages(work_dir=work)
    assert _lint(corpus, again) == expected
    counts = again.stages[0].counts
    assert counts["shards scanned"] == 0
    assert counts["shards resumed"] == again.parts
    # FT401 and FT402 were judged in full before the stop, FT403 in part: only the rest runs again
    assert counts["partitions resumed"] >= 2 * again.parts + 1
    assert counts["partitions resumed"] + counts["partitions judged"] == 3 * again.parts
