"""Every rule, alone, on its bad and good fixture (tests/rules/CODE/), against a golden file."""

from __future__ import annotations

from pathlib import Path

import pytest

import ftdata
from ftdata import registry
from ftdata.render.concise import location
from tests.conftest import TESTS, check_golden

RULES_DIR = TESTS / "rules"
CHECKED = [r for r in registry.all_rules() if r.code != "FT000"]  # FT000 reports crashing rules: test_engine


def _fixture(code: str, kind: str) -> str:
    """``CODE/bad.jsonl`` (or ``.json``), or the folder ``CODE/bad/`` for cross-file rules."""
    if (RULES_DIR / code / kind).is_dir():
        return str(Path(code) / kind)
    found = sorted((RULES_DIR / code).glob(f"{kind}.json*"))
    assert found, f"rule {code} has no {kind} fixture in {RULES_DIR / code}"
    return str(Path(code) / found[0].name)


def _concise(report: ftdata.Report) -> str:
    return "".join(f"{location(f)}: {f.code} {f.message}\n" for f in report)


@pytest.mark.parametrize("rule", CHECKED, ids=lambda r: f"{r.code}-{r.name}")
def test_bad_fixture_matches_golden(rule: registry.Rule, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(RULES_DIR)
    report = ftdata.lint(_fixture(rule.code, "bad"), select=[rule.code])
    assert report.findings, f"{rule.code} found nothing in its bad fixture"
    assert {f.code for f in report} == {rule.code}
    check_golden(RULES_DIR / rule.code / "expected.txt", _concise(report))


@pytest.mark.parametrize("rule", CHECKED, ids=lambda r: f"{r.code}-{r.name}")
def test_good_fixture_is_clean(rule: registry.Rule, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(RULES_DIR)
    report = ftdata.lint(_fixture(rule.code, "good"), select=[rule.code])
    assert not report.findings, _concise(report)
