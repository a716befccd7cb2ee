"""The pre-commit hook, installed with the real pre-commit into a real git repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
BAD = {"messages": [{"role": "User", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _git(
    cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**(env or os.environ), **IDENTITY}
    return subprocess.run(["git", *args], cwd=cwd, env=environment, capture_output=True, text=True, check=check)


def _commit(project: Path, env: dict[str, str], message: str) -> subprocess.CompletedProcess[str]:
    return _git(project, "commit", "-m", message, check=False, env=env)


def _snapshot_of_this_checkout(dest: Path) -> str:
    """A git repository holding the working tree as it is now; returns its commit."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "snapshot")
    return _git(dest, "rev-parse", "HEAD").stdout.strip()


def _project_with_hook(tmp_path: Path, hook: str, files: str | None = None) -> tuple[Path, dict[str, str]]:
    """A git repository with a ``data/`` folder and ``hook`` of this checkout installed by
    the real pre-commit (with its own ``files:`` pattern when given); returns it and the
    environment to commit in."""
    hook_repo = tmp_path / "ftdata"
    hook_repo.mkdir()
    rev = _snapshot_of_this_checkout(hook_repo)
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    _git(project, "init", "-q")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n      - id: {hook}\n"
        + (f"        files: '{files}'\n" if files else "")
    )
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache")}
    subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"], cwd=project, env=env, check=True, capture_output=True
    )
    return project, env


def test_hook_leaves_other_json_files_alone_and_json_datasets_opt_in(tmp_path: Path) -> None:
    project, env = _project_with_hook(tmp_path, "ftdata-lint")
    (project / "package.json").write_text('{\n  "name": "app",\n  "version": "1.0.0"\n}\n')
    (project / "data" / "train.json").write_text(json.dumps([BAD]) + "\n")
    _git(project, "add", "-A")
    accepted = _commit(project, env, "config and a JSON dataset")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr  # the default matches .jsonl/.ndjson only

    (tmp_path / "opted-in").mkdir()
    project, env = _project_with_hook(tmp_path / "opted-in", "ftdata-lint", files=r"^data/.*\.(jsonl|ndjson|json)$")
    (project / "package.json").write_text('{\n  "name": "app",\n  "version": "1.0.0"\n}\n')
    (project / "data" / "train.json").write_text(json.dumps([BAD]) + "\n")
    _git(project, "add", "-A")
    refused = _commit(project, env, "a JSON dataset, opted in")
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert "data/train.json:1:25: FT107 unrecognised role 'User'" in output
    assert "package.json" not in output


def test_hook_refuses_a_bad_dataset_and_accepts_a_good_one(tmp_path: Path) -> None:
    project, env = _project_with_hook(tmp_path, "ftdata-lint")

    (project / "data" / "train.jsonl").write_text(json.dumps(BAD) + "\n")
    _git(project, "add", "-A")
    refused = _commit(project, env, "bad data")
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert "data/train.jsonl:1:24: FT107 unrecognised role 'User'" in refused.stdout + refused.stderr
    assert _git(project, "rev-list", "--all", check=False).stdout == ""  # nothing was committed

    (project / "data" / "train.jsonl").write_text(json.dumps(GOOD) + "\n")
    _git(project, "add", "-A")
    accepted = _commit(project, env, "good data")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    output = accepted.stdout + accepted.stderr
    assert "ftdata lint" in output
    assert "Passed" in output


def test_leak_hook_refuses_an_eval_file_that_repeats_train(tmp_path: Path) -> None:
    project, env = _project_with_hook(tmp_path, "ftdata-leak")
    (project / "pyproject.toml").write_text('[tool.ftdata.splits]\nfiles = ["data/train.jsonl", "data/eval.jsonl"]\n')
    train = [
        {
            "messages": [
                {"role": "user", "content": f"How do I set up feature {k}?"},
                {"role": "assistant", "content": f"Enable {k} in Settings."},
            ]
        }
        for k in ("alpha", "beta", "gamma")
    ]
    (project / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (project / "data" / "eval.jsonl").write_text(json.dumps(train[1]) + "\n")
    _git(project, "add", "-A")
    refused = _commit(project, env, "leaky eval")
    assert refused.returncode != 0
    assert "data/eval.jsonl:1: exact 1.00 data/train.jsonl:2" in refused.stdout + refused.stderr
    other = {
        "messages": [
            {"role": "user", "content": "What is the refund window?"},
            {"role": "assistant", "content": "14 days."},
        ]
    }
    (project / "data" / "eval.jsonl").write_text(json.dumps(other) + "\n")
    _git(project, "add", "-A")
    accepted = _commit(project, env, "clean eval")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
