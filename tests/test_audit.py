"""The audit: the notebook API on every kind of source, the HTML page in a real headless
browser, the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftdata
from ftdata.auditing import audit
from ftdata.findings import Finding, Severity
from ftdata.render.html import top_findings
from scripts.screenshot_report import chromium, screenshot
from tests.conftest import PLAIN_TOKENIZER_DIR, ROOT, TOKENIZER_DIR, run_cli
from tests.png import count_colour, read_png

SAMPLE = ROOT / "ftdata" / "samples" / "support_chat.jsonl"
BAR = (0x4C, 0x78, 0xA8)


@pytest.fixture(scope="module")
def report() -> ftdata.auditing.AuditReport:  # type: ignore[name-defined]
    return audit(SAMPLE, stratify_by="metadata.category", max_length=100, config=False)


def test_audit_of_a_file(report, capsys: pytest.CaptureFixture[str]) -> None:
    stats = report.stats[0]
    assert (stats.records, stats.valid) == (110, 109)
    assert stats.formats == {"messages": 109}
    assert stats.messages_per_role["assistant"] == 145
    assert stats.without_system_prompt == 4
    assert stats.system_prompts[0][1] == 102
    assert stats.duplicate_clusters == {2: 3}
    assert stats.strata["account"] == 40
    assert stats.tokens_estimated
    assert 0 < stats.trained_share < 1
    assert report.flagged("FT401") == [93, 94, 95]
    assert [r["metadata"]["id"] for r in report.records("duplicate-record")] == ["s0001", "s0004", "s0006"]
    frame = report.get_findings("FT4")
    assert set(frame["code"]) == {"FT401", "FT403"}
    with pytest.raises(ValueError, match="FT999"):
        report.get_findings("FT999")
    html = report._repr_html_()
    assert html.count("<svg") >= 8
    assert "FT107" in html
    assert capsys.readouterr() == ("", "")  # nothing displayed as a side effect


def test_audit_of_records_dataframes_and_datasets() -> None:
    import pandas as pd
    from datasets import Dataset

    lines = SAMPLE.read_text().splitlines()
    # Arrow needs one type per column: leave out the lines with tool calls and the broken ones.
    rows = [json.loads(line) for line in lines if not any(x in line for x in ("broken1", "NaN", "tool", '"weight"'))]
    by_list = audit(rows)
    by_frame = audit(pd.DataFrame(rows))
    by_dataset = audit(Dataset.from_list(rows))
    for other in (by_frame, by_dataset):
        assert other.stats[0].formats == by_list.stats[0].formats
        assert other.stats[0].messages_per_role == by_list.stats[0].messages_per_role
    assert by_list.records([0])[0] == rows[0]


def test_exact_token_counts_with_a_real_tokenizer() -> None:
    report = audit(SAMPLE, tokenizer=str(TOKENIZER_DIR), max_length=64, config=False)
    stats = report.stats[0]
    assert not stats.tokens_estimated
    assert stats.over_max_length > 0
    assert stats.truncated_tokens > 0
    assert "FT501" not in {f.code for f in report}  # token rules stay opt-in


def test_label_view_keeps_what_the_template_refuses_and_needs_a_tokenizer() -> None:
    rows = [
        {"messages": [{"role": "user", "content": "Hi <b>"}, {"role": "assistant", "content": "Hello & bye"}]},
        {"messages": "not a list"},  # unreadable: never shown
        {"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}]},
        {"messages": [{"role": "user", "content": "Again?"}, {"role": "assistant", "content": "Yes."}]},
    ]
    report = audit(rows, tokenizer=str(TOKENIZER_DIR), show_labels=2, config=False)
    assert [(v.index, v.error) for v in report.labels] == [(0, None), (2, "TemplateError: unsupported role tool")]
    first = report.labels[0]
    assert "".join(t for trained, t in first.pieces if trained) == "Hello & bye<|im_end|>"
    page = report.to_html()
    assert "Hello &amp; bye" in page
    assert "Hi &lt;b&gt;" in page
    assert "unsupported role tool" in page
    assert report.to_json()["labels"][1]["error"] == "TemplateError: unsupported role tool"
    # assistant-only loss without {% generation %} markers: the reason, not a guess
    plain = audit(rows, tokenizer=str(PLAIN_TOKENIZER_DIR), show_labels=1, config=False)
    assert "{% generation %}" in (plain.labels[0].error or "")
    estimated = audit(rows, config=False)
    assert estimated.labels == []
    assert "What the trainer trains on" not in estimated.to_html()
    assert "labels" not in estimated.to_json()


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (make test installs it)")
def test_html_report_renders_in_a_headless_browser(report, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(report.to_html())
    assert page.stat().st_size < 5_000_000
    assert not re.search(r"<script|\bsrc=|\bhref=|<link|url\(", page.read_text()), (
        "the page must not fetch or run anything"
    )
    shot = tmp_path / "shot.png"
    result = screenshot(page, shot, tmp_path / "profile", size=(1280, 2400), extra=["--enable-logging=stderr", "--v=0"])
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Failed to load resource" in line]
    assert console == [], console
    width, height, rows = read_png(shot)
    assert (width, height) == (1280, 2400)
    assert count_colour(rows, BAR) > 20_000, "the plots were not drawn"


def test_cli_audit_writes_html_and_json(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "data.jsonl")
    result = run_cli(
        "audit", "data.jsonl", "--html", "report.html", "--json", "report.json", "--max-length", "100", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "110 records in 1 file(s): 8 errors" in result.stdout
    assert "\x1b[" not in result.stdout  # plain when not a terminal
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["stats"][0]["records"] == 110
    assert {f["code"] for f in data["findings"]} >= {"FT001", "FT401"}
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert run_cli("audit", "data.jsonl", "-q", "--fail-on", "error", cwd=tmp_path).returncode == 1


@given(
    st.lists(st.tuples(st.sampled_from(["FT110", "FT303", "FT401", "FT404"]), st.integers(1, 500)), max_size=60),
    st.integers(1, 20),
)
def test_top_findings_show_every_rule(found: list[tuple[str, int]], limit: int) -> None:
    severity = {"FT110": Severity.ERROR}
    findings = [Finding(code, severity.get(code, Severity.WARNING), "m", "a.jsonl", line) for code, line in found]
    chosen = top_findings(findings, limit)
    assert len(chosen) == min(limit, len(findings))
    assert all(chosen.count(f) <= findings.count(f) for f in chosen)
    codes = {f.code for f in findings}
    if len(codes) <= limit:  # room for every rule: each one is shown
        assert {f.code for f in chosen} == codes
    if "FT110" in codes:  # errors first
        assert chosen[0].code == "FT110"
