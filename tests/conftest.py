"""Shared helpers: paths, golden files, and running the real CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
UPDATE_GOLDEN = os.environ.get("FTDATA_UPDATE_GOLDEN") == "1"


def check_golden(path: Path, text: str) -> None:
    """Compare ``text`` with a golden file; FTDATA_UPDATE_GOLDEN=1 rewrites it."""
    if UPDATE_GOLDEN or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not UPDATE_GOLDEN:
            pytest.fail(f"golden file {path} was missing and has been written; check it and rerun")
    assert text == path.read_text(encoding="utf-8")


def run_cli(
    *args: str | os.PathLike[str], cwd: Path | None = None, input: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ftdata ARGS`` in a fresh interpreter and capture its output."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "ftdata", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        input=input.decode() if input is not None else None,
        timeout=300,
    )


@pytest.fixture
def sample() -> Path:
    return ROOT / "ftdata" / "samples" / "support_chat.jsonl"
