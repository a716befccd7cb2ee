"""FT401 on Ray runs as a distributed stage and gives the bytes of a local run: for 1, 2
and 4 blocks, every ``keep`` and ``scope``, on the benchmark corpus and on real files,
without the duplicate key of every record coming back to the driver, resuming from the
partitions it judged, and when a worker dies mid-stage."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

import ftdata
from ftdata.executors.ray import RayExecutor
from ftdata.render.jsonout import render_json
from tests.conftest import REAL, TESTS, run_cli
from tests.ray.executors import KillFirstAttempt, StopsAfterFirstPartition, Watching


@pytest.fixture(scope="module")
def corpus(planted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark corpus, with copies of early records planted in later blocks: some
    exact, some only in case, some only in their prompt (a longer answer)."""
    lines = planted.read_bytes().splitlines(keepends=True)
    chats = [json.loads(line) for line in lines[:200] if line.startswith(b'{"messages": [{"role": "system"')]
    extra: list[bytes] = []
    for k, rec in enumerate(chats[:12]):
        copy = json.loads(json.dumps(rec))
        if k % 3 == 1:
            for m in copy["messages"]:
                m["content"] = m["content"].upper()
        if k % 3 == 2:  # the same prompt, a longer answer
            copy["messages"][-1]["content"] += " In more words than the first time, and longer."
        extra.append(json.dumps(copy).encode() + b"\n")
    for k, line in enumerate(extra):
        lines.insert(len(lines) - 1 - 90 * k, line)
    path = tmp_path_factory.mktemp("duplicates") / "corpus.jsonl"
    path.write_bytes(b"".join(lines))
    return path


@pytest.fixture(scope="module")
def real_dups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real records as JSON Lines (only JSON Lines files are cut into blocks): the Alpaca,
    KTO and tool-call demos, then copies of records from each, spread over the file."""
    records: list[Any] = []
    for name in ("alpaca_en_demo.json", "kto_en_demo.json", "glaive_toolcall_en_demo.json"):
        records.extend(json.loads((REAL / name).read_text(encoding="utf-8")))
    copies = [records[k] for k in range(0, len(records), 37)]
    for k, rec in enumerate(copies):
        records.insert(len(records) - 11 * k, rec)
    path = tmp_path_factory.mktemp("real") / "dups.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _json(source: Path, select: Sequence[str] = ("FT401",), **kwargs: Any) -> str:
    out = io.StringIO()
    render_json(ftdata.lint(source, config=False, select=list(select), **kwargs), out)
    return out.getvalue()


OPTIONS = [
    {},
    {"keep": "longest"},
    {"casefold": True},
    {"scope": "prompt", "keep": "longest"},
    {"scope": "answer", "casefold": True},
]


@pytest.mark.parametrize("parts", [1, 2, 4])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_corpus_duplicates_on_ray_are_byte_identical(
    cluster: Any, corpus: Path, options: dict[str, Any], parts: int
) -> None:
    local = _json(corpus, jobs=1, options={"FT401": options})
    executor = Watching(parts=parts)
    assert _json(corpus, executor=executor, options={"FT401": options}) == local
    assert "FT401" not in executor.columns  # the keys stayed with the workers
    (stage,) = executor.stages
    assert stage.counts["partitions judged"] == parts
    found = [f for f in json.loads(local) if f["code"] == "FT401"]
    assert len(found) >= 20
    # groups cross the blocks: members are reported far from the record kept
    assert max(f["line"] for f in found) > 1000


def test_the_options_decide_the_groups(corpus: Path) -> None:
    """The runs compared above differ: case-folding joins the upper-case copies, and the
    prompt scope the copies with a longer answer (exact copies tie on length, so
    ``keep="longest"`` keeps the first of them too)."""
    runs = [_json(corpus, jobs=1, options={"FT401": o}) for o in ({}, {"casefold": True}, {"scope": "prompt"})]
    counts = [[f["code"] for f in json.loads(run)].count("FT401") for run in runs]
    assert counts[0] < counts[1] < counts[2]
    assert _json(corpus, jobs=1, options={"FT401": {"keep": "longest"}}) == runs[0]


@pytest.mark.parametrize("parts", [1, 2, 4])
def test_real_records_duplicates_on_ray_are_byte_identical(cluster: Any, real_dups: Path, parts: int) -> None:
    for options in ({}, {"keep": "longest", "scope": "prompt"}):
        local = _json(real_dups, jobs=1, options={"FT401": options})
        executor = Watching(parts=parts)
        assert _json(real_dups, executor=executor, options={"FT401": options}) == local
        assert "FT401" not in executor.columns
        assert [f["code"] for f in json.loads(local)].count("FT401") >= 20


@pytest.mark.parametrize("parts", [2, 4])
@pytest.mark.parametrize("path", sorted(p for p in (TESTS / "data" / "real").glob("*/*.jsonl")), ids=lambda p: p.name)
def test_real_jsonl_files_on_ray_are_byte_identical(cluster: Any, path: Path, parts: int) -> None:
    """Every rule (FT401 staged among them) on the real JSON Lines files."""
    local = ftdata.lint(path, config=False, jobs=1)
    out = io.StringIO()
    render_json(local, out)
    remote = io.StringIO()
    render_json(ftdata.lint(path, config=False, executor=RayExecutor(parts=parts)), remote)
    assert remote.getvalue() == out.getvalue()


class _StopAfterFirstPartition(StopsAfterFirstPartition, Watching):
    """Interrupts the run (Ctrl-C) once the first partition of FT401 is judged."""

    stop_code = "FT401"


def test_a_lint_stopped_while_grouping_resumes_from_the_judged_partitions(
    cluster: Any, corpus: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    select = ("FT401", "FT402")
    expected = _json(corpus, select, jobs=1)
    first = _StopAfterFirstPartition(parts=4, work_dir=work)
    with pytest.raises(KeyboardInterrupt):
        _json(corpus, select, executor=first)
    (folder,) = work.glob("ftdata-lint-*")
    assert len(list(folder.glob("FT401/p*.result"))) >= 1  # kept for the next run
    again = Watching(parts=4, work_dir=work)
    assert _json(corpus, select, executor=again) == expected
    counts = again.stages[0].counts
    assert (counts["shards scanned"], counts["shards resumed"]) == (0, 4)
    # FT401 was judged in part before the stop: only the rest runs again, then FT402
    assert counts["partitions resumed"] >= 1
    assert counts["partitions resumed"] + counts["partitions judged"] == 2 * 4
    assert list(work.iterdir()) == []


def test_a_worker_killed_while_grouping_is_retried(cluster: Any, corpus: Path, tmp_path: Path) -> None:
    options = {"FT401": {"keep": "longest"}}
    expected = _json(corpus, jobs=1, options=options)
    markers = tmp_path / "markers"
    markers.mkdir()
    assert _json(corpus, executor=KillFirstAttempt(markers, parts=2), options=options) == expected
    tried = sorted(os.listdir(markers))
    assert [t for t in tried if t.startswith("judge_partition")] == ["judge_partition-0", "judge_partition-1"]


def test_cli_lint_engine_ray_duplicates(cluster: Any, corpus: Path, tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    args: list[str | Path] = ["lint", "--isolated", "--output-format", "json", "--select", "FT401,FT402", corpus]
    local = run_cli(*args)
    remote = run_cli(*args, "--engine", "ray", "--address", address, "--work-dir", tmp_path / "work")
    assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
    assert local.stdout.count('"FT401"') >= 20


def test_an_unknown_keep_is_refused_as_locally(cluster: Any, corpus: Path, tmp_path: Path) -> None:
    """A rule that cannot run is an error of the run, on Ray as locally, whether or not
    the file has duplicates (none are in its first three records)."""
    address = cluster.get_runtime_context().gcs_address
    head = tmp_path / "head.jsonl"
    head.write_bytes(b"".join(corpus.read_bytes().splitlines(keepends=True)[:3]))
    for source in (corpus, head):
        args: list[str | Path] = ["lint", "--isolated", "--select", "FT401", "--option", "FT401.keep=last", source]
        local = run_cli(*args)
        remote = run_cli(*args, "--engine", "ray", "--address", address)
        assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
        assert local.returncode == 2
        assert "unknown keep policy 'last'" in local.stdout
