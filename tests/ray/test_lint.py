"""``ftdata lint`` on Ray gives the bytes of a local run, however many shards."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

import ftdata
from ftdata.executors.ray import RayExecutor
from ftdata.render.jsonout import render_json
from tests.conftest import REAL, run_cli

JSONL = sorted(REAL.glob("*.jsonl"))


def _json(source: Path, **kwargs: Any) -> str:
    out = io.StringIO()
    render_json(ftdata.lint(source, config=False, **kwargs), out)
    return out.getvalue()


@pytest.mark.parametrize("parts", [1, 2, 4])
@pytest.mark.parametrize("path", JSONL, ids=lambda p: p.name)
def test_real_files_lint_the_same_on_ray(cluster: Any, path: Path, parts: int) -> None:
    local = _json(path, jobs=1)
    assert _json(path, executor=RayExecutor(parts=parts)) == local


@pytest.mark.parametrize("parts", [1, 2, 4])
def test_benchmark_corpus_lints_the_same_on_ray(cluster: Any, planted: Path, parts: int) -> None:
    rules = ["FT0", "FT1", "FT2", "FT401", "FT402", "FT403"]
    local = _json(planted, jobs=1, select=rules)
    assert _json(planted, executor=RayExecutor(parts=parts), select=rules) == local
    assert local.count('"FT401"') >= 20  # the planted duplicates are found, across shards


def test_folder_of_real_files_lints_the_same_on_ray(cluster: Any) -> None:
    """JSON arrays are read whole; the executor only shards JSON Lines files."""
    assert _json(REAL, executor=RayExecutor(parts=3)) == _json(REAL, jobs=1)


def test_cli_engine_ray_joins_a_running_cluster(cluster: Any) -> None:
    address = cluster.get_runtime_context().gcs_address
    path = REAL / "v1_sft_demo.jsonl"
    local = run_cli("lint", "--isolated", "--output-format", "json", path)
    remote = run_cli("lint", "--isolated", "--output-format", "json", "--engine", "ray", "--address", address, path)
    assert remote.returncode == local.returncode
    assert remote.stdout == local.stdout
    assert remote.stderr == local.stderr
