"""FT402 and FT403 on Ray run as a distributed stage and give the bytes of a local run:
for 1, 2 and 4 blocks, on the benchmark corpus and on real files, without the prompt
keys of every record coming back to the driver, and when a worker dies mid-stage."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

import ftdata
from ftdata.executors.ray import RayExecutor
from ftdata.render.jsonout import render_json
from tests.conftest import REAL, TESTS, run_cli
from tests.ray.executors import KillFirstAttempt, Watching

RULES = ["FT402", "FT403"]
#: Prompts answered both ways, planted apart so that their records fall in other blocks.
CONFLICTS = [
    ("Can I export the quarterly report to PDF?", "Yes, from Share > Export.", "No, that is not available."),
    ("How many moons does Mars have in total?", "Mars has 2 moons.", "Mars has 3 moons."),
    ("Which option is right for question 7, A or B?", "A", "B"),
    ("What colour is the sky on a clear day?", "Blue.", "It is orange"),
]


def _chat(prompt: str, answer: str) -> bytes:
    record = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}
    return json.dumps(record).encode() + b"\n"


@pytest.fixture(scope="module")
def corpus(planted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark corpus (duplicates, repeated prompts, unreadable lines) with
    contradicting answers planted across it."""
    lines = planted.read_bytes().splitlines(keepends=True)
    for k, (prompt, yes, no) in enumerate(CONFLICTS):
        lines.insert(10 + 37 * k, _chat(prompt, yes))
        lines.insert(len(lines) - 5 * k, _chat(prompt, no))
        lines.insert(len(lines) // 2 + k, _chat(prompt, yes))
    path = tmp_path_factory.mktemp("conflicts") / "corpus.jsonl"
    path.write_bytes(b"".join(lines))
    return path


@pytest.fixture(scope="module")
def real_mix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real records as JSON Lines (only JSON Lines files are cut into blocks): the Alpaca
    demo, then its first prompts again with the answers of other records, and the KTO and
    tool-call demos, whose repeated prompts FT402 reports."""
    alpaca = json.loads((REAL / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    records = list(alpaca)
    for k, rec in enumerate(alpaca[:40]):
        records.append({**rec, "output": alpaca[-1 - k]["output"]})
    for name in ("kto_en_demo.json", "glaive_toolcall_en_demo.json"):
        records.extend(json.loads((REAL / name).read_text(encoding="utf-8")))
    path = tmp_path_factory.mktemp("real") / "mix.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _json(source: Path, **kwargs: Any) -> str:
    out = io.StringIO()
    render_json(ftdata.lint(source, config=False, select=RULES, **kwargs), out)
    return out.getvalue()


@pytest.mark.parametrize("parts", [1, 2, 4])
@pytest.mark.parametrize("report", ["contradictions", "different", "all"])
def test_corpus_conflicts_on_ray_are_byte_identical(cluster: Any, corpus: Path, report: str, parts: int) -> None:
    options = {"FT403": {"report": report}}
    local = _json(corpus, jobs=1, options=options)
    executor = Watching(parts=parts)
    assert _json(corpus, executor=executor, options=options) == local
    assert executor.shards == parts
    assert executor.columns.isdisjoint(RULES)  # the keys stayed with the workers
    found = json.loads(local)
    codes = [f["code"] for f in found]
    assert codes.count("FT403") >= (15 if report == "all" else len(CONFLICTS))
    assert codes.count("FT402") >= 10


@pytest.mark.parametrize("parts", [1, 2, 4])
@pytest.mark.parametrize("report", ["contradictions", "different", "all"])
def test_real_records_conflicts_on_ray_are_byte_identical(
    cluster: Any, real_mix: Path, report: str, parts: int
) -> None:
    options = {"FT403": {"report": report}}
    local = _json(real_mix, jobs=1, options=options)
    executor = Watching(parts=parts)
    assert _json(real_mix, executor=executor, options=options) == local
    assert executor.columns.isdisjoint(RULES)
    codes = [f["code"] for f in json.loads(local)]
    assert codes.count("FT402") >= 30
    # the answers moved between prompts: long ones elaborate, a few short ones differ
    assert codes.count("FT403") >= {"contradictions": 0, "different": 4, "all": 30}[report]


@pytest.mark.parametrize("parts", [2, 4])
@pytest.mark.parametrize("path", sorted(p for p in (TESTS / "data" / "real").glob("*/*.jsonl")), ids=lambda p: p.name)
def test_real_jsonl_files_on_ray_are_byte_identical(cluster: Any, path: Path, parts: int) -> None:
    for report in ("contradictions", "all"):
        options = {"FT403": {"report": report}}
        assert _json(path, executor=RayExecutor(parts=parts), options=options) == _json(path, jobs=1, options=options)


@pytest.mark.parametrize("parts", [1, 4])
def test_near_prompts_run_as_a_stage_with_the_same_bytes(cluster: Any, corpus: Path, parts: int) -> None:
    """``near`` compares every prompt with every other: FT403 then merges near prompts with
    distributed MinHash stages (ftdata/distributed/conflicts_near.py), and no column of
    FT402 or FT403 comes back to the driver."""
    options = {"FT403": {"report": "all", "near": 0.7}}
    executor = Watching(parts=parts)
    assert _json(corpus, executor=executor, options=options) == _json(corpus, jobs=1, options=options)
    assert executor.columns & set(RULES) == set()


def test_the_work_dir_is_left_empty(cluster: Any, corpus: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    local = _json(corpus, jobs=1)
    assert _json(corpus, executor=RayExecutor(parts=2, work_dir=work)) == local
    assert work.is_dir()
    assert not any(work.iterdir())


def test_a_worker_killed_mid_stage_is_retried(cluster: Any, corpus: Path, tmp_path: Path) -> None:
    options = {"FT403": {"report": "different"}}
    expected = _json(corpus, jobs=1, options=options)
    markers = tmp_path / "markers"
    markers.mkdir()
    assert _json(corpus, executor=KillFirstAttempt(markers, parts=2), options=options) == expected
    tried = sorted(os.listdir(markers))
    assert [t for t in tried if t.startswith("judge_partition")] == ["judge_partition-0", "judge_partition-1"]
    assert len([t for t in tried if t.startswith("scan_and_write")]) == 2


def test_cli_lint_engine_ray_conflicts(cluster: Any, corpus: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    args: list[str | Path] = ["lint", "--isolated", "--output-format", "json", "--select", ",".join(RULES), corpus]
    local = run_cli(*args)
    remote = run_cli(*args, "--engine", "ray", "--address", address)
    assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
    assert '"FT403"' in local.stdout


def test_cli_lint_work_dir_holds_the_stages_and_is_left_empty(cluster: Any, corpus: Path, tmp_path: Path) -> None:
    """``--work-dir`` (storage every node of a cluster sees) is where the stages write;
    the run leaves it as it found it, and the findings are the local run's."""
    address = cluster.get_runtime_context().gcs_address
    work = tmp_path / "shared" / "lint"  # made by the run: proof that the stages used it
    args: list[str | Path] = ["lint", "--isolated", "--output-format", "json", "--select", ",".join(RULES), corpus]
    local = run_cli(*args)
    remote = run_cli(*args, "--engine", "ray", "--address", address, "--work-dir", work)
    assert (remote.returncode, remote.stdout) == (local.returncode, local.stdout), remote.stderr[-2000:]
    assert work.is_dir()
    assert list(work.iterdir()) == []
