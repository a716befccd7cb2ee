"""The leakage audit between files on Ray gives the report of a local run: for 1, 2 and 4
blocks a file, after an interruption, from the CLI, and ``[tool.ftdata] engine``
chooses where ``ftdata dedup`` and ``ftdata leak`` run."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

from ftdata.curation.leakage import LeakageReport
from ftdata.curation.leakage import leakage as local_leakage
from ftdata.distributed import leakage
from ftdata.distributed.workdir import WorkDirError
from ftdata.executors.ray import RayExecutor
from tests.conftest import REAL, run_cli


def _view(report: LeakageReport) -> tuple[Any, ...]:
    return (
        report.sources, report.records, report.options, report.leaks, report.findings, report.unreadable,
        report.errors,
    )  # fmt: skip


@pytest.fixture(scope="module")
def splits(planted: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """train, eval and test files cut from the planted corpus (its planted duplicates and
    unreadable lines fall on both sides of the cuts), with edited copies of train prompts
    in eval and test."""
    folder = tmp_path_factory.mktemp("splits")
    lines = planted.read_bytes().splitlines(keepends=True)
    edited = []
    for line in lines[10:400:13]:  # near-duplicate prompts: a train prompt with one word more
        record = json.loads(line)
        record["messages"][1]["content"] += " Thanks."
        edited.append(json.dumps(record).encode() + b"\n")
    paths = [folder / f"{name}.jsonl" for name in ("train", "eval", "test")]
    parts = (lines[:900], lines[900:1300] + edited[:20], edited[20:] + lines[1300:])
    for path, part in zip(paths, parts, strict=True):
        path.write_bytes(b"".join(part))
    return paths


CASES = [{}, {"scope": "conversation", "threshold": 0.6}, {"methods": ["minhash"]}, {"methods": ["exact"]}]


@pytest.mark.parametrize("options", CASES, ids=lambda o: "-".join(map(str, o.values())) or "defaults")
def test_leakage_on_ray_is_the_local_report_for_any_number_of_blocks(
    cluster: Any, splits: list[Path], options: dict[str, Any]
) -> None:
    expected = local_leakage(splits, config=False, **options)
    methods = {k.method for k in expected.leaks}
    assert len(expected.leaks) >= 20
    assert methods == set(options.get("methods", ["exact", "minhash"]))
    assert expected.unreadable  # the unreadable lines are reported, not compared
    for blocks in (1, 2, 4):
        got = leakage(splits, executor=RayExecutor(), config=False, blocks=blocks, **options)
        assert _view(got) == _view(expected), blocks


def test_leakage_on_ray_of_real_files(cluster: Any) -> None:
    files = [REAL / "alpaca_en_demo.json", REAL / "v1_sft_demo.jsonl", REAL / "identity.json"]
    expected = local_leakage(files, config=False, threshold=0.5)
    got = leakage(files, executor=RayExecutor(), config=False, threshold=0.5, blocks=3)
    assert _view(got) == _view(expected)


class _Stop(Exception):
    pass


def _stop_at(stage: str, seen: str) -> None:
    if seen == stage:
        raise _Stop(stage)


def test_an_interrupted_leakage_audit_resumes(cluster: Any, splits: list[Path], tmp_path: Path) -> None:
    expected = local_leakage(splits, config=False)
    work = tmp_path / "work"
    run = partial(leakage, splits, executor=RayExecutor(), config=False, blocks=2, work_dir=work)
    with pytest.raises(_Stop):
        run(after_stage=partial(_stop_at, "minhash/buckets"))
    assert (work / "exact" / "groups" / "_SUCCESS").exists()
    assert not (work / "minhash" / "verify").exists()
    scanned = {p: p.stat().st_mtime_ns for p in sorted(work.glob("*/scan/*"))}
    assert _view(run()) == _view(expected)
    assert {p: p.stat().st_mtime_ns for p in sorted(work.glob("*/scan/*"))} == scanned  # not read again
    with pytest.raises(WorkDirError, match="another input or other options"):
        leakage(splits, executor=RayExecutor(), config=False, blocks=2, work_dir=work, scope="answer")


def test_semantic_leakage_is_refused_on_ray(cluster: Any, splits: list[Path]) -> None:
    with pytest.raises(ValueError, match="one machine only"):
        leakage(splits, executor=RayExecutor(), config=False, methods=["exact", "semantic"])


def test_cli_leak_engine_ray(cluster: Any, splits: list[Path], tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    args = ("leak", *splits, "--output-format", "json", "--threshold", "0.7")
    local = run_cli(*args, cwd=tmp_path)
    remote = run_cli(*args, "--engine", "ray", "--address", address, "--blocks", "3", cwd=tmp_path)
    assert local.returncode == 2  # the unreadable records make the audit incomplete
    assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
    assert len(json.loads(local.stdout)["leaks"]) >= 20


def _config(folder: Path, address: str) -> None:
    folder.joinpath("pyproject.toml").write_text(f'[tool.ftdata]\nengine = "ray"\naddress = "{address}"\n')


def test_dedup_and_leak_take_the_engine_from_the_configuration(cluster: Any, planted: Path, tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    _config(tmp_path, address)
    source = tmp_path / "data.jsonl"
    source.write_bytes(planted.read_bytes())
    # Only the Ray branch refuses semantic dedup: the configuration chose it.
    semantic = run_cli("dedup", source, "-o", tmp_path / "s.jsonl", "--method", "semantic", cwd=tmp_path)
    assert semantic.returncode == 2
    assert "one machine only" in semantic.stderr
    ray_run = run_cli("dedup", source, "-o", tmp_path / "ray.jsonl", "--method", "minhash", "-q", cwd=tmp_path)
    here = run_cli("dedup", source, "-o", tmp_path / "here.jsonl", "--method", "minhash", "-q", "--engine", "local")
    assert ray_run.returncode == here.returncode == 1
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "here.jsonl").read_bytes()
    (tmp_path / "eval.jsonl").write_bytes(planted.read_bytes())
    leak = run_cli("leak", source, tmp_path / "eval.jsonl", "--method", "semantic", cwd=tmp_path)
    assert leak.returncode == 2
    assert "one machine only" in leak.stderr


def test_the_engine_option_wins_over_the_configuration(cluster: Any, planted: Path, tmp_path: Path) -> None:
    _config(tmp_path, "127.0.0.1:9")  # no cluster there: a run that tried to join it would fail
    source = tmp_path / "data.jsonl"
    source.write_bytes(planted.read_bytes())
    here = run_cli("dedup", source, "-o", tmp_path / "out.jsonl", "-q", "--engine", "local", cwd=tmp_path)
    assert here.returncode == 1, here.stderr  # the unreadable records are kept, and said so
    assert (tmp_path / "out.rejected.jsonl").exists()
