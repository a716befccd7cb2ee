"""Without the 'ray' extra, ``--engine ray`` is a usage error that says what to install
(runs whether or not Ray is installed: a module on the path hides it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SAMPLE = ROOT / "ftdata" / "samples" / "support_chat.jsonl"


@pytest.mark.parametrize("command", [["lint"], ["dedup", "-o", "{tmp}/out.jsonl"], ["split", "-o", "{tmp}/out.jsonl"]])
def test_engine_ray_without_the_extra_says_what_to_install(tmp_path: Path, command: list[str]) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "ray.py").write_text('raise ImportError("no module named ray")\n')
    args = [a.format(tmp=tmp_path) for a in command]
    env = {**os.environ, "PYTHONPATH": str(hide), "NO_COLOR": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "ftdata", *args, "--engine", "ray", str(SAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 2
    assert "pip install 'ftdata[ray]'" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out.jsonl").exists()
