"""The ftdata command, run as a real subprocess: output formats, exit codes, fixes, baselines."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import TESTS, check_golden, run_cli

DATA = TESTS / "data"
GOLDEN = TESTS / "golden"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for name in ("mixed.jsonl", "alpaca.json"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("fmt", ["concise", "full", "json", "json-lines", "github", "sarif"])
def test_output_format_golden(workdir: Path, fmt: str) -> None:
    result = run_cli("lint", "mixed.jsonl", "alpaca.json", "--output-format", fmt, cwd=workdir)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    suffix = {"json": "json", "sarif": "sarif.json", "json-lines": "jsonl"}.get(fmt, "txt")
    check_golden(GOLDEN / f"output.{fmt}.{suffix}", result.stdout)


def test_json_output_is_the_finding_fields(workdir: Path) -> None:
    result = run_cli("lint", "mixed.jsonl", "--output-format", "json", cwd=workdir)
    findings = json.loads(result.stdout)
    assert findings
    for f in findings:
        assert set(f) == {"code", "severity", "message", "source", "line", "column", "index", "path", "related"}
        assert f["severity"] in {"error", "warning", "info"}
    role = next(f for f in findings if f["code"] == "FT107")
    assert (role["line"], role["column"], role["index"], role["path"]) == (2, 63, 1, ["messages", 1, "role"])


def test_sarif_is_valid_against_the_basic_shape(workdir: Path) -> None:
    doc = json.loads(run_cli("lint", "mixed.jsonl", "--output-format", "sarif", cwd=workdir).stdout)
    run = doc["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
        assert region["startColumn"] >= 1


def test_exit_codes(tmp_path: Path) -> None:
    clean = tmp_path / "clean.jsonl"
    records = [
        {"messages": [{"role": "user", "content": f"Hi {i}"}, {"role": "assistant", "content": f"Hello {i}"}]}
        for i in range(3)
    ]
    clean.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    # Only a warning (dataset-too-small): exit 0 by default, 1 with --fail-on warning.
    assert run_cli("lint", clean).returncode == 0
    assert run_cli("lint", clean, "--fail-on", "warning").returncode == 1
    assert run_cli("lint", clean, "--ignore", "FT200", "--fail-on", "warning").returncode == 0
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json}\n")
    assert run_cli("lint", broken).returncode == 1
    assert run_cli("lint", broken, "--exit-zero").returncode == 0
    missing = run_cli("lint", tmp_path / "nope.jsonl")
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    unknown = run_cli("lint", clean, "--select", "FT999")
    assert unknown.returncode == 2
    assert "FT999" in unknown.stderr
    assert run_cli("lint").returncode == 2  # no paths


def test_clean_run_says_so(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    result = run_cli("lint", path, "--ignore", "FT200")
    assert result.returncode == 0
    assert result.stdout == "All checks passed (1 record in 1 file).\n"


def test_output_file_and_quiet(workdir: Path) -> None:
    result = run_cli("lint", "mixed.jsonl", "-q", "--output-file", "out.txt", cwd=workdir)
    assert result.returncode == 1
    assert result.stdout == ""
    written = (workdir / "out.txt").read_text()
    assert "mixed.jsonl:2:63: FT107" in written
    assert "Found" not in written


def test_folder_argument_finds_data_files(workdir: Path) -> None:
    (workdir / "notes.txt").write_text("not data")
    (workdir / ".hidden").mkdir()
    (workdir / ".hidden" / "x.jsonl").write_text("{bad\n")
    result = run_cli("lint", ".", "--output-format", "json", cwd=workdir)
    sources = {f["source"] for f in json.loads(result.stdout)}
    assert sources == {"alpaca.json", "mixed.jsonl"}


def test_max_errors_stops_early(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("{bad\n" * 50)
    result = run_cli("lint", path, "--max-errors", "3", "--output-format", "concise")
    assert result.returncode == 1
    assert result.stdout.count("FT001") == 3
    assert "Stopped early" in result.stdout


def test_fix_repairs_safe_problems_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    rec1 = json.dumps(
        {"messages": [{"role": " user", "content": "Cafe\u0301?"}, {"role": "assistant", "content": "Oui."}]},
        ensure_ascii=False,
    )
    rec2 = json.dumps({"prompt": "a", "completion": "b"})
    original = b"\xef\xbb\xbf" + rec1.encode() + b"\r\n\r\n" + rec2.encode()
    path.write_bytes(original)
    before = run_cli("lint", path, "--ignore", "FT200,FT101", "--output-format", "json")
    assert {f["code"] for f in json.loads(before.stdout)} == {"FT003", "FT004", "FT005", "FT013", "FT119", "FT308"}
    diff = run_cli("lint", path, "--diff")
    assert diff.returncode == 1
    assert '+{"messages": [{"role": "user", "content": "Café?"}' in diff.stdout
    assert path.read_bytes() == original  # --diff writes nothing
    fixed = run_cli("lint", path, "--fix", "--ignore", "FT200,FT101")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "Fixed 7 problem(s)." in fixed.stderr
    expected = rec1.replace('" user"', '"user"').replace("Cafe\u0301", "Café") + "\n" + rec2 + "\n"
    assert path.read_text(encoding="utf-8") == expected
    again = run_cli("lint", path, "--diff")
    assert again.returncode == 0
    assert again.stdout == ""


def test_fix_only_touches_selected_rules(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"prompt": "a", "completion": "b"}\r\n')
    run_cli("lint", path, "--fix", "--select", "FT013")
    assert path.read_bytes() == b'{"prompt": "a", "completion": "b"}\r\n'
    run_cli("lint", path, "--fix", "--select", "FT004")
    assert path.read_bytes() == b'{"prompt": "a", "completion": "b"}\n'


def test_fix_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(
        '[\r\n  {"conversations": [{"from": "human ", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}\r\n]'
    )
    run_cli("lint", path, "--fix")
    assert (
        path.read_text()
        == '[\n  {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}\n]'
    )


def test_baseline_survives_inserted_lines(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    bad = json.dumps({"messages": [{"role": "User", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})
    good = json.dumps({"prompt": "a", "completion": "b"})
    path.write_text(bad + "\n")
    baseline = tmp_path / "baseline.json"
    written = run_cli("lint", path, "--write-baseline", baseline)
    assert written.returncode == 0
    assert run_cli("lint", path, "--baseline", baseline).returncode == 0
    path.write_text(good + "\n" + good + "\n" + bad + "\n")  # same finding, moved to line 3
    assert run_cli("lint", path, "--baseline", baseline, "--ignore", "FT101").returncode == 0
    new_bad = json.dumps({"messages": [{"role": "Assistant", "content": "Hi"}]})
    path.write_text(good + "\n" + bad + "\n" + new_bad + "\n")
    result = run_cli("lint", path, "--baseline", baseline, "--ignore", "FT101,FT200")
    assert result.returncode == 1
    assert result.stdout.count("FT107") == 1
    assert ":3:" in result.stdout


def test_config_file_is_used_and_validated(tmp_path: Path) -> None:
    data = tmp_path / "sub" / "data.jsonl"
    data.parent.mkdir()
    data.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ftdata]\nfail-on = "warning"\n\n[tool.ftdata.rules.dataset-too-small]\nmin_records = 2\n'
    )
    result = run_cli("lint", data)
    assert result.returncode == 1  # FT200 is a warning and fail-on is warning
    assert "at least 2 are recommended" in result.stdout
    assert run_cli("lint", data, "--isolated").returncode == 0
    (tmp_path / "pyproject.toml").write_text('[tool.ftdata]\nselct = ["FT1"]\n')
    bad = run_cli("lint", data)
    assert bad.returncode == 2
    assert "unknown key 'selct'" in bad.stderr
    assert "did you mean 'select'" in bad.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.ftdata.rules.dataset-too-small]\nmin_records = 'many'\n")
    bad = run_cli("lint", data)
    assert bad.returncode == 2
    assert "expects int" in bad.stderr


def test_rule_and_rules_commands() -> None:
    one = run_cli("rule", "FT107")
    assert one.returncode == 0
    assert one.stdout.startswith("# unrecognised-role (FT107)")
    assert "## Why is this bad?" in one.stdout
    assert run_cli("rule", "unrecognised-role").stdout == one.stdout
    assert run_cli("rule", "FT999").returncode == 2
    listed = json.loads(run_cli("rules", "--output-format", "json").stdout)
    assert any(r["code"] == "FT107" and r["severity"] == "error" for r in listed)
    table = run_cli("rules").stdout
    assert re.search(r"^FT110 +empty-content +error +record +Checks for user", table, re.M)


def test_profiles_change_strictness(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "A"},
                    {"role": "system", "content": "B"},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                ]
            }
        )
        + "\n"
    )
    assert run_cli("lint", path).returncode == 0  # two system messages: a warning
    assert run_cli("lint", path, "--profile", "mistral").returncode == 1  # Mistral allows one


def _on_a_terminal(args: list[str], cwd: Path, **env: str) -> str:
    """Run ``ftdata ARGS`` with stderr on a pseudo-terminal; what the terminal got."""
    import os
    import pty
    import subprocess
    import sys

    main, secondary = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "PRE_COMMIT", "FORCE_COLOR")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftdata", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env={**environment, "TERM": "xterm", "COLUMNS": "120", **env},
    )
    os.close(secondary)
    received = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        received += chunk
    proc.wait(timeout=300)
    os.close(main)
    return received.decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    lines = [
        json.dumps({"messages": [{"role": "user", "content": f"q {i}"}, {"role": "assistant", "content": f"a {i}"}]})
        for i in range(20_000)
    ]
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n")
    args = ["lint", "big.jsonl", "--select", "FT101,FT404"]
    assert "reading big.jsonl" in _on_a_terminal(args, tmp_path)
    assert "reading" not in _on_a_terminal(args, tmp_path, CI="true")
    assert "reading" not in _on_a_terminal(args, tmp_path, PRE_COMMIT="1")
    assert "reading" not in _on_a_terminal([*args, "--quiet"], tmp_path)
    piped = run_cli(*args, cwd=tmp_path)
    assert piped.returncode == 0
    assert piped.stderr == ""
