"""Every fast path agrees with the reference path it stands in for, on real and fuzzed input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import ftdata
from ftdata import io
from ftdata.rules.replies import _MARKUP, _char_run, _char_run_scan
from tests.conftest import TESTS

SAMPLE = Path(ftdata.__file__).parent / "samples" / "support_chat.jsonl"
REAL = [*sorted((TESTS / "data" / "real").rglob("*.json*")), SAMPLE]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _real_texts() -> list[str]:
    texts: list[str] = []
    for path in REAL:
        for item in io.read(path, io.ReadStats()):
            texts.extend(_strings(getattr(item, "data", None)))
    return texts


def test_char_run_prefilter_on_real_text() -> None:
    texts = _real_texts()
    assert len(texts) > 1000
    for text in texts:
        for limit in (1, 10, 31, 32, 50, 200):
            assert _char_run(text, limit) == _char_run_scan(text, limit)


# Text around planted runs: every length near the regex's minimum of 32 and the stride of
# 16, at every offset modulo 16, of markup and ordinary characters.
_run = st.tuples(st.sampled_from(["a", "0", "é", "-", "=", "|", " ", "\n", "漢", "\U0001f600"]), st.integers(1, 260))
_piece = st.one_of(st.text(max_size=40), _run.map(lambda r: r[0] * r[1]))


@settings(max_examples=600, deadline=None)
@given(st.lists(_piece, max_size=12), st.integers(1, 300))
def test_char_run_prefilter_on_fuzzed_text(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    assert _char_run(text, limit) == _char_run_scan(text, limit)


def test_char_run_prefilter_at_every_offset() -> None:
    for ch in ("x", "-", "\u2500"):
        for length in range(28, 70):
            for lead in range(34):
                text = "ab" * lead + ch * length + "cd"
                expected = _char_run_scan(text, 31)
                assert _char_run(text, 31) == expected
                assert (expected is not None) == (length >= 32 and (ch not in _MARKUP or length > 124))


def test_lint_reports_planted_runs(tmp_path: Path) -> None:
    """End to end: runs the prefilter passes to the scan are still reported, runs too short
    to report are not."""
    path = tmp_path / "runs.jsonl"
    replies = [
        "Fine. " + "0" * 51,  # reported: longer than 50
        "Fine. " + "0" * 50 + " then more text",  # not: 50 is allowed
        "Fine. " + "-" * 201,  # reported: markup, longer than 200
        "Fine. " + "-" * 200,  # not
        "Fine. " + "x" * 31 + " " + "x" * 31,  # not
    ]
    with path.open("w") as f:
        for reply in replies:
            record = {
                "messages": [{"role": "user", "content": "Hello there?"}, {"role": "assistant", "content": reply}]
            }
            f.write(json.dumps(record) + "\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftdata",
            "lint",
            str(path),
            "--isolated",
            "--select",
            "FT309",
            "--output-format",
            "json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "FTDATA_NO_CACHE": "1"},
    )
    findings = json.loads(out.stdout)
    assert [(f["line"], f["code"]) for f in findings] == [(1, "FT309"), (3, "FT309")]
    assert "run of 51 '0' characters" in findings[0]["message"]


def test_plan_derived_values_follow_the_plan() -> None:
    """What a plan computes once (format spec, collectors) is its own: alternating plans
    must give each its own."""
    records = [{"question": "What is two plus two?", "answer": "Four."}]
    mapped = {"question": "prompt", "answer": "completion"}
    for _ in range(2):
        plain = ftdata.lint(records, select=["FT100"])
        through_map = ftdata.lint(records, select=["FT100"], fields=mapped)
        assert [f.code for f in plain] == ["FT100"]
        assert list(through_map) == []
