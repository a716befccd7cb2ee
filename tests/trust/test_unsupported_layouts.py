"""Real public files in layouts ftdata does not read: no command may give a clean verdict on
them, lose or misfile a record, or reject an unread record as a duplicate.

The files are excerpts under tests/data/layouts (origins in SOURCES.md there). Every command
runs as a subprocess; the judging is shared with benchmarks/unsupported_layouts.py, which
prints the same verdicts as a table.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_harness():
    spec = importlib.util.spec_from_file_location("unsupported_layouts", ROOT / "benchmarks" / "unsupported_layouts.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


layouts = _load_harness()
CASES = {case.path.name: case for case in layouts.CORPUS}


@pytest.fixture(scope="module")
def results() -> dict[str, object]:
    # One run per file for every command; the parametrised tests below only read it.
    return {r.case.path.name: r for r in layouts.run_corpus(tuple(CASES.values()), jobs=4)}


def test_corpus_is_real_and_small() -> None:
    sources = (ROOT / "tests" / "data" / "layouts" / "SOURCES.md").read_text(encoding="utf-8")
    assert len(CASES) >= 8
    for name, case in CASES.items():
        assert case.path.stat().st_size <= 40_000, name
        assert name in sources, f"{name} has no origin in SOURCES.md"
        assert layouts.load_records(case.path), name


def test_load_records_reads_each_container(tmp_path: Path) -> None:
    array = tmp_path / "a.json"
    array.write_text(json.dumps([{"a": 1}, {"a": 2}]), encoding="utf-8")
    lines = tmp_path / "b.jsonl"
    lines.write_text('{"a": 1}\n\nnot json\n{"a": 2}\n', encoding="utf-8")
    document = tmp_path / "c.json"
    document.write_text('{\n  "a": [1,\n 2]\n}\n', encoding="utf-8")
    assert layouts.load_records(array) == [{"a": 1}, {"a": 2}]
    assert layouts.load_records(lines) == [{"a": 1}, "not json", {"a": 2}]
    assert layouts.load_records(document) == [{"a": [1, 2]}]


#: KTO files (``messages`` + a boolean ``label``) read as plain chat: the label is not
#: understood yet, so lint and audit judge undesirable replies as training targets. This
#: is the formats issue's to fix; strict, so the mark must go when it is.
NOT_YET = {
    ("llamafactory_kto_en_demo.json", command): "the KTO label is not understood yet (formats)"
    for command in ("lint", "lint-all", "audit")
}


def _cases() -> list[object]:
    return [
        pytest.param(name, command, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[(name, command)]))
        if (name, command) in NOT_YET
        else pytest.param(name, command)
        for name in sorted(CASES)
        for command in layouts.COMMANDS
    ]


@pytest.mark.parametrize(("name", "command"), _cases())
def test_no_clean_verdict_and_no_record_lost(results: dict[str, object], name: str, command: str) -> None:
    verdict = results[name].verdicts[command]  # type: ignore[attr-defined]
    assert verdict.ok, f"{name} ({CASES[name].layout}), {command}: {verdict.reason}\n{verdict.output[-1500:]}"
