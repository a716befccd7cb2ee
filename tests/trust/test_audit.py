"""An honest audit: it counts only what it could read and says so when much could not be;
its page and JSON survive any record; its outputs never replace an input, and a folder
that is missing or full is a clean error; unknown rule codes are refused."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ftdata.auditing import UNREADABLE_WARNING_SHARE, audit
from tests.conftest import run_cli

GOOD = '{{"messages": [{{"role": "user", "content": "question {i}"}}, {{"role": "assistant", "content": "answer"}}]}}'
# A layout ftdata does not read: a conversation under another key, speakers not roles.
ODD = '{{"dialogue": [{{"speaker": "A", "utterance": "hello {i}"}}, {{"speaker": "B", "utterance": "hi"}}]}}'
# The right key, but turns it cannot read (no role, no content): every role would be "?".
MISREAD = '{{"messages": [{{"from": "A", "text": "hello {i}"}}, {{"from": "B", "text": "hi"}}]}}'


def _write(path: Path, good: int, odd: int, template: str = ODD) -> Path:
    lines = [GOOD.format(i=i) for i in range(good)] + [template.format(i=i) for i in range(odd)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("template", [ODD, MISREAD])
def test_unreadable_records_are_not_counted_and_a_banner_says_why(tmp_path: Path, template: str) -> None:
    data = _write(tmp_path / "mixed.jsonl", 60, 40, template)
    report = audit(data, config=False)
    stats = report.stats[0]
    assert (stats.valid, stats.records, stats.unreadable) == (60, 100, 40)
    assert stats.messages_per_role == {"user": 60, "assistant": 60}
    assert stats.cause_code is not None
    assert stats.cause_count == 40
    [warning] = report.warnings
    assert "40 of 100 records (40%) could not be read" in warning
    assert stats.cause_code in warning
    assert stats.cause_message in warning
    assert report.to_json()["warnings"] == [warning]
    assert 'class="banner"' in report.to_html()
    assert 'class="banner"' in report._repr_html_()

    html, out = tmp_path / "a.html", tmp_path / "a.json"
    result = run_cli("audit", data, "--html", html, "--json", out)
    assert result.returncode == 0, result.stderr
    assert "Warning:" in result.stdout
    assert "60 of 100" in result.stdout
    assert "100 of 100" not in result.stdout
    assert json.loads(out.read_bytes())["warnings"] == [warning]
    assert "could not be read" in html.read_text(encoding="utf-8")


def test_no_banner_under_the_threshold(tmp_path: Path) -> None:
    odd = int(100 * UNREADABLE_WARNING_SHARE) - 1
    report = audit(_write(tmp_path / "mostly.jsonl", 100 - odd, odd), config=False)
    assert report.stats[0].unreadable == odd
    assert report.warnings == []
    assert 'class="banner"' not in report.to_html()


def test_every_file_of_a_multi_file_audit_is_measured(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", 10, 0)
    b = _write(tmp_path / "b.jsonl", 3, 7)
    report = audit([a, b], config=False)
    assert {s.source: (s.valid, s.records) for s in report.stats} == {str(a): (10, 10), str(b): (3, 10)}
    result = run_cli("audit", a, b)
    assert result.returncode == 0, result.stderr
    assert "10 of 10" in result.stdout
    assert "3 of 10" in result.stdout


HOSTILE = [
    # A lone surrogate in the system prompt, a role and the content.
    b'{"messages": [{"role": "system", "content": "sys \\ud800"}, {"role": "user\\udfff", "content": "q \\udc80"},'
    b' {"role": "assistant", "content": "a"}]}',
    # Integers beyond 64 bits, where a finding points (the excerpt shows them).
    b'{"messages": 123456789012345678901234567890123456789}',
    b'{"messages": [{"role": "user", "content": 99999999999999999999999999}, {"role": "assistant", "content": "b"}]}',
]


def test_html_and_json_survive_surrogates_and_huge_integers(tmp_path: Path) -> None:
    data = tmp_path / "hostile.jsonl"
    data.write_bytes(b"\n".join(HOSTILE) + b"\n")
    report = audit(data, config=False)
    for page in (report.to_html(), report._repr_html_()):
        page.encode("utf-8")
        assert "\\ud800" in page
    rows = [{"messages": [{"role": "user", "content": "x\ud800"}, {"role": "assistant", "content": "y"}], "n": 10**40}]
    audit(rows).to_html().encode("utf-8")
    html, out = tmp_path / "h.html", tmp_path / "h.json"
    result = run_cli("audit", data, "--html", html, "--json", out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "\\ud800" in html.read_text(encoding="utf-8")
    assert json.loads(out.read_bytes())["findings"]


def test_outputs_that_would_replace_an_input_are_refused(tmp_path: Path) -> None:
    data = _write(tmp_path / "d.jsonl", 5, 0)
    before = data.read_bytes()
    for args in (
        ["--html", data],
        ["--json", data],
        ["--html", tmp_path / "same.out", "--json", tmp_path / "same.out"],
    ):
        # With a tokenizer that cannot load: refusing first shows nothing was read.
        result = run_cli("audit", data, "--tokenizer", tmp_path / "no-such-tokenizer", *args)
        assert result.returncode == 2, result.stdout
        assert "refusing" in result.stderr or "same file" in result.stderr
        assert "Traceback" not in result.stderr
        assert data.read_bytes() == before
    folder = tmp_path / "set"
    folder.mkdir()
    inner = _write(folder / "train.jsonl", 5, 0)
    result = run_cli("audit", folder, "--json", inner)
    assert result.returncode == 2
    assert inner.read_text(encoding="utf-8").startswith('{"messages"')
    link = tmp_path / "link.html"
    link.symlink_to(data)
    assert run_cli("audit", data, "--html", link).returncode == 2
    assert data.read_bytes() == before


def test_missing_or_unwritable_output_folder_is_a_clean_error(tmp_path: Path) -> None:
    data = _write(tmp_path / "d.jsonl", 5, 0)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for target in (tmp_path / "missing" / "out.html", blocker / "out.html"):
        result = run_cli("audit", data, "--html", target)
        assert result.returncode == 2, result.stdout
        assert result.stderr.startswith("ftdata: error:")
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
    if os.geteuid() != 0:  # root writes through any mode bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        result = run_cli("audit", data, "--json", locked / "out.json")
        assert result.returncode == 2


def _limit_file_size() -> None:
    # A file-size limit stands in for a full disk: writes past it fail with EFBIG.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


def test_a_full_disk_is_a_clean_error_and_leaves_no_partial_file(tmp_path: Path) -> None:
    data = _write(tmp_path / "d.jsonl", 50, 0)
    out = tmp_path / "out"
    out.mkdir()
    old = out / "report.html"
    old.write_text("previous report")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "ftdata", "audit", str(data), "--html", str(old), "-q"],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_limit_file_size,
        timeout=300,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "cannot write" in result.stderr
    assert "Traceback" not in result.stderr
    assert old.read_text() == "previous report"
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    data = _write(tmp_path / "d.jsonl", 10, 10)
    result = run_cli("audit", "-q", data, "--html", tmp_path / "q.html")
    assert result.returncode == 0
    assert (result.stdout, result.stderr) == ("", "")
    assert (tmp_path / "q.html").stat().st_size > 0


def test_unknown_rule_codes_are_refused(tmp_path: Path) -> None:
    report = audit(_write(tmp_path / "d.jsonl", 5, 5), config=False)
    for call in (report.get_findings, report.flagged, report.records):
        with pytest.raises(ValueError, match="ftdata rules"):
            call("FT999")
    with pytest.raises(ValueError, match="unknown rule 'no-such-rule'"):
        report.get_findings("no-such-rule")
    assert set(report.get_findings("FT1")["code"]) == {"FT100"}
    assert report.flagged("unknown-format") == list(range(5, 10))
    assert len(report.records("FT100")) == 5
