"""Real public files in layouts ftdata does not read: no command may give a clean verdict on
them, lose or misfile a record, or reject an unread record as a duplicate.

The files are excerpts under tests/data/layouts (origins in SOURCES.md there). Every command
runs as a subprocess; the judging is shared with benchmarks/unsupported_layouts.py, which
prints the same verdicts as a table.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
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


def _cases() -> list[object]:
    return [pytest.param(name, command) for name in sorted(CASES) for command in layouts.COMMANDS]


@pytest.mark.parametrize(("name", "command"), _cases())
def test_no_clean_verdict_and_no_record_lost(results: dict[str, object], name: str, command: str) -> None:
    verdict = results[name].verdicts[command]  # type: ignore[attr-defined]
    assert verdict.ok, f"{name} ({CASES[name].layout}), {command}: {verdict.reason}\n{verdict.output[-1500:]}"


_JSON = ("--output-format", "json")


def _lint_codes(path: Path, tmp_path: Path) -> list[tuple[str, int | None]]:
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    # FT501 is an estimate without a tokenizer; FT405, FT503 and FT504 need a model.
    ignore = "FT405,FT501,FT503,FT504"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftdata",
            "lint",
            "--isolated",
            "--select",
            "ALL",
            "--ignore",
            ignore,
            *_JSON,
            copy.name,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return sorted((f["code"], f["line"]) for f in json.loads(proc.stdout))


#: Every finding on the real files of the types read since these layouts were added, each
#: read and judged true: a replacement character in the C4 text (line 11), a chosen reply
#: cut inside a code block (dpo_en, element 8), "hi"/"hello" with the same answer (v1_sft),
#: and the identity records of v1_sft (lines 1-50), whose replies hold LLaMA-Factory's
#: `{{name}}`/`{{author}}` slots, to be filled before training.
EXPECTED = {
    "llamafactory_c4_demo.jsonl": [("FT200", 1), ("FT302", 11)],
    "mlx_examples_lora_train.jsonl": [("FT200", 1)],
    "llamafactory_dpo_en_demo.json": [("FT200", 1), ("FT307", 147)],
    "torchtune_hh_rlhf_tiny.json": [("FT200", 1)],
    "llamafactory_v1_dpo_demo.jsonl": [("FT200", 1)],
    "llamafactory_kto_en_demo.json": [("FT200", 1)],
    "llamafactory_v1_sft_demo.jsonl": sorted([("FT200", 1), ("FT404", 2), *(("FT310", n) for n in range(1, 51))]),
    "llamafactory_reason_tool_use_demo.jsonl": [("FT200", 1)],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_files_of_the_new_types_have_no_false_finding(name: str, tmp_path: Path) -> None:
    assert _lint_codes(CASES[name].path, tmp_path) == EXPECTED[name]


def test_typed_text_parts_are_read(tmp_path: Path) -> None:
    path = CASES["llamafactory_v1_sft_demo.jsonl"].path
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    report = tmp_path / "audit.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ftdata", "audit", copy.name, "--json", str(report)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    audit = json.loads(report.read_text(encoding="utf-8"))
    assert audit["stats"][0]["valid"] == 70


def test_undesirable_completions_are_not_judged_but_still_checked(tmp_path: Path) -> None:
    reply = "Assistant: here.\n```python\nprint('hi')"  # a speaker label and an open fence
    rows = [
        {"messages": [{"role": "user", "content": "Print hi"}, {"role": "assistant", "content": reply}], "label": label}
        for label in (False, True)
    ]
    rows.append({"messages": [{"role": "user", "content": "Print hi"}], "label": False})
    path = tmp_path / "kto.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "ftdata", "lint", "--isolated", "--select", "FT305,FT307,FT109", *_JSON, path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    found = sorted((f["code"], f["line"]) for f in json.loads(proc.stdout))
    # The desirable copy is judged; the undesirable one is not; a missing reply is still structure.
    assert found == [("FT109", 3), ("FT305", 2), ("FT307", 2)]
