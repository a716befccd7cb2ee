"""Stepwise supervision on a real file: the 19 records of TRL's own PRM test set
(tests/data/real/trl-zen/SOURCES.md), linted, audited, deduplicated, split and converted,
with the findings each step gives on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ftdata
from ftdata.formats import normalise
from ftdata.records import Record
from tests.conftest import TESTS, run_cli

ZEN = TESTS / "data" / "real" / "trl-zen" / "standard_stepwise_supervision.jsonl"


def _rows() -> list[dict]:
    return [json.loads(line) for line in ZEN.read_text(encoding="utf-8").splitlines()]


def test_every_record_is_read_as_stepwise_supervision() -> None:
    rows = _rows()
    assert len(rows) == 19
    for i, row in enumerate(rows):
        rec = Record(i, row)
        normalise(rec)
        assert rec.format == "stepwise-supervision"
        assert rec.problems == []
        assert rec.readable
        assert [m.role for m in rec.messages] == ["user", "assistant"]
        assert rec.messages[0].text == row["prompt"]
        # The steps are one reply, each step a segment of its own.
        assert rec.reply[0].text == "\n".join(row["completions"])
        steps = [(text, path) for role, text, path in rec.segments if role == "assistant"]
        assert steps == [(s, ("completions", k)) for k, s in enumerate(row["completions"])]


def test_lint_finds_only_that_the_set_is_small() -> None:
    """Every rule that runs without a tokenizer: the one finding is FT200 (19 records, a
    test set), which is right; nothing in the steps or labels is malformed."""
    result = run_cli("lint", ZEN, "--isolated", "--select", "ALL", "--ignore", "FT503,FT504", "--output-format", "json")
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)
    assert [(f["code"], f["message"]) for f in findings] == [
        ("FT200", "dataset has 19 records; at least 100 are recommended")
    ]


def test_a_label_dropped_or_spelled_as_a_string_is_found_at_its_line(tmp_path: Path) -> None:
    rows = _rows()
    rows[1]["labels"] = rows[1]["labels"][:-1]
    rows[11]["labels"][2] = "false"
    path = tmp_path / "zen.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = ftdata.lint(path, config=False, select=["FT120", "FT121"])
    assert [(f.code, f.line, f.path, f.message) for f in report] == [
        ("FT120", 2, ("labels",), "2 labels for 3 steps: 'labels' needs one boolean per item of 'completions'"),
        ("FT121", 12, ("labels", 2), "step label 3 must be true or false, got 'false'"),
    ]


def test_audit_measures_the_steps_as_the_reply() -> None:
    report = ftdata.audit(ZEN, config=False)
    assert [f.code for f in report.findings] == ["FT200"]
    (stats,) = report.stats
    assert (stats.records, stats.valid) == (19, 19)
    assert stats.formats == {"stepwise-supervision": 19}
    assert stats.messages_per_role == {"user": 19, "assistant": 19}
    assert stats.without_system_prompt == 19


def test_dedup_keeps_every_record(tmp_path: Path) -> None:
    result = ftdata.dedup(ZEN, tmp_path / "kept.jsonl")
    assert result.kept == list(range(19))
    assert result.clusters == []
    assert (tmp_path / "kept.jsonl").read_bytes() == ZEN.read_bytes()


def test_split_copies_the_records_and_shares_no_prompt(tmp_path: Path) -> None:
    result = run_cli("split", ZEN, "-o", tmp_path / "split")
    assert result.returncode == 0, result.stderr
    lines = ZEN.read_bytes().splitlines(keepends=True)
    train = (tmp_path / "split" / "train.jsonl").read_bytes().splitlines(keepends=True)
    held = (tmp_path / "split" / "eval.jsonl").read_bytes().splitlines(keepends=True)
    assert (len(train), len(held)) == (16, 3)
    assert sorted(train + held) == sorted(lines)
    prompts = {json.loads(line)["prompt"] for line in train}
    assert not prompts & {json.loads(line)["prompt"] for line in held}


@pytest.mark.parametrize("to", ["messages", "prompt-completion", "preference", "text"])
def test_convert_rejects_every_record_with_the_reason(tmp_path: Path, to: str) -> None:
    """TRL's other shapes have no place for a label per step: nothing is converted, and
    each record is in the rejects file with the same reason whatever the target, not
    silently dropped."""
    result = ftdata.convert(ZEN, tmp_path / "out.jsonl", to=to)
    assert result.converted == 0
    assert {(r.reason, r.detail) for r in result.rejected} == {
        ("not-convertible", "records of the stepwise-supervision format have no conversion to TRL's shapes")
    }
    assert [r.line for r in result.rejected] == list(range(1, 20))
    assert (tmp_path / "out.jsonl").read_bytes() == b""
    rejects = [json.loads(line) for line in (tmp_path / "out.rejected.jsonl").read_text().splitlines()]
    assert [json.loads(r["raw"]) for r in rejects] == _rows()
