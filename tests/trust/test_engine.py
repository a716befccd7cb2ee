"""The verdict is honest: a check that cannot run, or that raises, is an error of the run
(exit 2) whatever is selected; options do not depend on the selection; workers never
outlive the run; quiet means quiet; lint never writes over its inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ftdata
from ftdata import registry
from ftdata.config import ConfigError
from ftdata.engine.run import InputChangedError
from ftdata.requirements import RequirementError
from tests.conftest import ROOT, run_cli

GOOD = {"messages": [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4."}]}
SAMPLE = ROOT / "ftdata" / "samples" / "support_chat.jsonl"


def _data(tmp_path: Path, n: int = 5, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    rows = [
        {"messages": [{"role": "user", "content": f"Question number {i}?"}, {"role": "assistant", "content": f"A{i}."}]}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


PLUGIN = '''
from ftdata import Issue, Scope, Severity, rule


def _collect(record):
    if "boom" in record.text:
        raise ValueError("collect broke")
    return 1


@rule("XZ001", "breaks-on-records", severity=Severity.WARNING)
def breaks_on_records(record):
    """## What it does
    Raises on every record, for the tests.

    ## Why is this bad?
    It is not.
    """
    raise RuntimeError("record rule broke")


@rule("XZ002", "breaks-on-datasets", scope=Scope.DATASET, severity=Severity.WARNING)
def breaks_on_datasets(dataset):
    """## What it does
    Raises on every dataset, for the tests.

    ## Why is this bad?
    It is not.
    """
    raise RuntimeError("dataset rule broke")
    yield


@rule("XZ003", "breaks-on-files", scope=Scope.FILES, severity=Severity.WARNING)
def breaks_on_files(files):
    """## What it does
    Raises on every pair of files, for the tests.

    ## Why is this bad?
    It is not.
    """
    raise RuntimeError("files rule broke")


@rule("XZ004", "breaks-in-collect", scope=Scope.DATASET, severity=Severity.WARNING, collect=_collect)
def breaks_in_collect(dataset):
    """## What it does
    Its collector raises on records saying boom, for the tests.

    ## Why is this bad?
    It is not.
    """
    return ()
'''


@pytest.fixture
def broken_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real plugin package on PYTHONPATH (for subprocesses) and registered here."""
    site = tmp_path / "site"
    info = site / "broken_rules-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "broken_rules.py").write_text(PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-rules\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ftdata.rules]\nbroken = broken_rules\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(site))
    import importlib

    importlib.import_module("broken_rules")
    yield site
    for code in ("XZ001", "XZ002", "XZ003", "XZ004"):
        rule = registry._RULES.pop(code, None)
        if rule is not None:
            registry._BY_NAME.pop(rule.name, None)
    sys.modules.pop("broken_rules", None)


@pytest.mark.parametrize(("code", "scope"), [("XZ001", "record"), ("XZ002", "dataset"), ("XZ004", "collect")])
def test_a_rule_that_raises_makes_the_report_incomplete_in_every_scope(
    tmp_path: Path, broken_rules: Path, code: str, scope: str
) -> None:
    path = _data(tmp_path)
    with path.open("a") as f:
        f.write(json.dumps({"messages": [{"role": "user", "content": "boom"}, {"role": "assistant", "content": "x"}]}))
        f.write("\n")
    report = ftdata.lint(path, select=[code])  # FT000 itself is not selected
    assert report.incomplete
    assert report.rule_errors
    assert all(f.code == "FT000" for f in report.rule_errors)
    assert any(code in f.message for f in report.rule_errors)
    memory = ftdata.lint([GOOD, {"messages": [{"role": "user", "content": "boom"}]}], select=[code])
    assert memory.incomplete


def test_a_files_rule_that_raises_is_reported_not_a_traceback(tmp_path: Path, broken_rules: Path) -> None:
    train = _data(tmp_path, name="train.jsonl")
    _data(tmp_path, name="eval.jsonl")
    report = ftdata.lint([train, tmp_path / "eval.jsonl"], select=["XZ003"])
    assert report.incomplete
    assert "files rule broke" in report.rule_errors[0].message


@pytest.mark.parametrize("output_format", ["concise", "full", "json", "json-lines", "github", "sarif"])
def test_lint_exits_2_on_a_rule_failure_in_every_output_format(
    tmp_path: Path, broken_rules: Path, output_format: str
) -> None:
    path = _data(tmp_path)
    result = run_cli("lint", path, "--select", "XZ002", "--output-format", output_format)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FT000" in result.stdout
    assert "dataset rule broke" in result.stdout
    assert "verdict is incomplete" in result.stderr
    assert "All checks passed" not in result.stdout


def test_a_baseline_cannot_hide_a_rule_failure(tmp_path: Path, broken_rules: Path) -> None:
    path = _data(tmp_path)
    base = tmp_path / "baseline.json"
    refused = run_cli("lint", path, "--select", "XZ002", "--write-baseline", base)
    assert refused.returncode == 2
    assert not base.exists()
    ftdata.baseline.write_baseline(base, ftdata.lint(path, select=["XZ002"]).findings)
    again = run_cli("lint", path, "--select", "XZ002", "--baseline", base)
    assert again.returncode == 2
    assert "FT000" in again.stdout


def _blocked(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as if ``module`` were not installed."""
    code = f"import sys; sys.modules[{module!r}] = None; sys.argv = ['ftdata', *{list(args)!r}]; from ftdata.cli import run; run()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_a_missing_extra_is_an_error_naming_the_rule_and_the_fix(tmp_path: Path) -> None:
    path = _data(tmp_path)
    result = _blocked("sentence_transformers", "lint", str(path), "--select", "FT405")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "All checks passed" not in result.stdout
    assert "FT405" in result.stderr
    assert "pip install 'ftdata[embed]'" in result.stderr


def test_requirements_are_checked_before_any_data_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file.jsonl"  # never opened: the plan fails first
    with pytest.raises(RequirementError, match="FT503"):
        ftdata.lint([GOOD], select=["FT503"])  # the template check needs a tokenizer
    with pytest.raises(RequirementError, match="no such tokenizer folder"):
        ftdata.lint([GOOD], extend_select=["FT501"], tokenizer=str(tmp_path / "nope"))
    assert not missing.exists()


def test_an_unreachable_hub_fails_within_seconds(tmp_path: Path) -> None:
    path = _data(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "ftdata", "lint", str(path), "--extend-select", "FT501", "--tokenizer", "org/no-model"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    assert "not in the local Hugging Face cache" in result.stderr
    assert "All checks passed" not in result.stdout


@pytest.mark.parametrize(
    "option",
    [
        "FT010.max_bytes=-1",
        "FT010.max_bytes=0",
        "FT010.max_bytes=9223372036854775807",
        "FT009.max_depth=-1",
        "FT009.max_depth=0",
        "FT501.max_length=0",
    ],
)
def test_numeric_options_outside_their_range_are_usage_errors(tmp_path: Path, option: str) -> None:
    result = run_cli("lint", _data(tmp_path), "--option", option)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "must be in" in result.stderr


def test_every_numeric_option_is_bounded() -> None:
    for rule in registry.all_rules():
        for name, default in rule.options.items():
            if isinstance(default, bool) or not isinstance(default, int | float):
                continue
            with pytest.raises(ValueError, match="must be in"):
                rule.check_options({name: 10**30})
            with pytest.raises(ValueError, match="must be in"):
                rule.check_options({name: float("nan")} if isinstance(default, float) else {name: -(10**30)})


def _rules_with_options() -> list[registry.Rule]:
    return [r for r in registry.all_rules() if r.options and r.code not in ("FT405", "FT603", "FT503", "FT504")]


def _of(report: ftdata.Report, code: str) -> list[tuple[object, ...]]:
    return sorted(f.sort_key() for f in report if f.code == code)


def test_options_give_the_same_findings_alone_and_under_select_all(tmp_path: Path) -> None:
    # The options each rule gets must not depend on what else is selected (a shared
    # setting was once lost as soon as a default dataset rule was selected too).
    train = tmp_path / "train.jsonl"
    train.write_bytes(SAMPLE.read_bytes())
    (tmp_path / "eval.jsonl").write_bytes(b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:20]))
    files = [train, tmp_path / "eval.jsonl"]
    shared = {"max_length": 48}
    everything = ftdata.lint(files, select=["ALL"], ignore=["FT405", "FT603", "FT503", "FT504"], config=False, **shared)
    for rule in _rules_with_options():
        alone = ftdata.lint(files, select=[rule.code], config=False, **shared)
        if not rule.superseded_by:
            assert _of(alone, rule.code) == _of(everything, rule.code), rule.code
            continue
        # Records a stronger rule reports are left to it; the others are reported as alone.
        stronger = {(f.source, f.index) for f in everything if f.code in rule.superseded_by}
        kept = {(f.source, f.index) for f in alone if f.code == rule.code} - stronger
        assert {(f.source, f.index) for f in everything if f.code == rule.code} == kept, rule.code
    assert any(f.code == "FT501" for f in everything), "max_length reached FT501 under --select ALL"


def test_lint_refuses_to_write_over_its_input(tmp_path: Path) -> None:
    path = _data(tmp_path)
    before = path.read_bytes()
    for args in (["-o", path], ["--write-baseline", path], ["--output-format", "json", "-o", path]):
        result = run_cli("lint", path, *args)
        assert result.returncode == 2, args
        assert "refusing to overwrite" in result.stderr
        assert path.read_bytes() == before
    link = tmp_path / "link.jsonl"
    link.symlink_to(path)
    assert run_cli("lint", path, "-o", link).returncode == 2
    assert run_cli("lint", path, "-o", tmp_path / "missing" / "out.txt").returncode == 2
    assert path.read_bytes() == before


def test_quiet_means_nothing_on_stderr_but_errors(tmp_path: Path) -> None:
    path = _data(tmp_path, n=150)
    quiet = run_cli("lint", path, "-q", "--extend-select", "FT404,FT501")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    audit = run_cli("audit", path, "-q", "--json", tmp_path / "a.json")
    assert audit.stderr == ""


def test_a_file_replaced_between_passes_is_an_error(tmp_path: Path) -> None:
    path = _data(tmp_path, n=300)
    other = [json.dumps(GOOD) + "\n"] * 300

    @registry.rule("XZ010", "replaces-the-file", scope=registry.Scope.DATASET, severity=ftdata.Severity.WARNING)
    def replaces(dataset):  # type: ignore[no-untyped-def]
        """## What it does
        Replaces the file under the run, as another program might.

        ## Why is this bad?
        It is not.
        """
        replacement = path.with_suffix(".new")
        replacement.write_text("".join(other))
        os.replace(replacement, path)
        return [ftdata.Issue("something", index=3)]

    try:
        with pytest.raises(InputChangedError, match="changed while it was being checked"):
            ftdata.lint(path, select=["XZ010"])
    finally:
        registry._RULES.pop("XZ010")
        registry._BY_NAME.pop("replaces-the-file")


def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pids: list[int]) -> list[int]:
    import psutil

    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_workers_die_with_their_parent(tmp_path: Path, how: signal.Signals) -> None:
    pytest.importorskip("psutil")
    path = tmp_path / "big.jsonl"
    line = (
        json.dumps({"messages": [{"role": "user", "content": "q " * 40}, {"role": "assistant", "content": "a"}]}) + "\n"
    ).encode()
    with path.open("wb") as f:
        f.write(line * (40 * 1024 * 1024 // len(line)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftdata", "lint", str(path), "--jobs", "2", "--select", "FT1", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the run finished before its workers could be seen")
    assert len(workers) >= 2
    proc.send_signal(how)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(workers) == []


def test_unknown_rule_codes_are_errors() -> None:
    with pytest.raises(ConfigError, match="FT999"):
        ftdata.lint([GOOD], select=["FT999"])
    with pytest.raises(ConfigError, match="FT999"):
        ftdata.lint([GOOD], ignore=["FT999"])
