"""A missing key that a leftover key of the record could fill ends its finding with the
exact ``--map`` to write; running ``ftdata lint`` with that ``--map`` reads the file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

LAYOUTS = ROOT / "tests" / "data" / "layouts"
REAL = ROOT / "tests" / "data" / "real"
TORCHTUNE = LAYOUTS / "torchtune_instruct_tiny.json"
GSM8K = LAYOUTS / "gsm8k_train.jsonl"
#: The findings of a record whose layout was not understood.
LAYOUT_CODES = {"FT100", "FT103", "FT104"}
_MAP = re.compile(r": --map (\S+)$")


def lint(*args: str | Path) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "ftdata", "lint", *map(str, args), "--output-format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def layout_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in findings if f["code"] in LAYOUT_CODES]


def hinted_map(findings: list[dict[str, Any]]) -> str:
    """The one ``--map`` the layout findings of a run suggest."""
    maps = {m.group(1) for f in layout_findings(findings) if (m := _MAP.search(f["message"]))}
    assert len(maps) == 1, [f["message"] for f in findings]
    return maps.pop()


def test_torchtune_instruct_gets_the_map_and_the_map_reads_it() -> None:
    _, findings = lint(TORCHTUNE)
    missing = layout_findings(findings)
    assert [(f["code"], f["line"]) for f in missing] == [("FT104", 2), ("FT104", 6)]
    assert {f["message"] for f in missing} == {
        "record has no 'output'; its key 'response' would fill it: --map response=output"
    }
    rc, findings = lint(TORCHTUNE, "--map", hinted_map(findings))
    assert layout_findings(findings) == []
    assert rc == 0, findings


def write(tmp_path: Path, name: str, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


CASES = [
    pytest.param([{"prompt": "Q?", "chosen": "A.", "bad": "B."}], (), "bad=rejected", id="preference"),
    pytest.param(
        [{"prompt": "2+2?", "completions": ["2+2", "is 4"], "step_labels": [True, True]}],
        (),
        "step_labels=labels",
        id="stepwise",
    ),
    pytest.param(
        [{"conversation": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}],
        ("--format", "messages"),
        "conversation=messages",
        id="forced-messages",
    ),
    pytest.param(
        [{"instruction": "Say hi.", "output": "Hi."}],
        ("--format", "prompt-completion"),
        "instruction=prompt,output=completion",
        id="forced-prompt-completion",
    ),
]


@pytest.mark.parametrize(("records", "options", "expected"), CASES)
def test_the_hinted_map_reads_the_record(
    tmp_path: Path, records: list[dict[str, Any]], options: tuple[str, ...], expected: str
) -> None:
    path = write(tmp_path, "data.jsonl", records)
    _, findings = lint(path, *options)
    assert layout_findings(findings), findings
    assert hinted_map(findings) == expected
    _, findings = lint(path, *options, "--map", expected)
    assert layout_findings(findings) == []


def test_forced_alpaca_on_a_real_file_names_every_key_it_needs() -> None:
    _, findings = lint(GSM8K, "--format", "alpaca")
    missing = layout_findings(findings)
    assert len(missing) == 16  # 'instruction' and 'output' on each of 8 records
    assert hinted_map(findings) == "question=instruction,answer=output"
    _, findings = lint(GSM8K, "--format", "alpaca", "--map", "question=instruction,answer=output")
    assert layout_findings(findings) == []


def test_the_hint_keeps_the_runs_own_mapping() -> None:
    _, findings = lint(GSM8K, "--map", "question=instruction")
    assert {f["message"] for f in layout_findings(findings)} == {
        "record has no 'output'; its key 'answer' would fill it: --map question=instruction,answer=output"
    }
    _, findings = lint(GSM8K, "--map", hinted_map(findings))
    assert layout_findings(findings) == []


@pytest.mark.parametrize(
    ("record", "options", "message"),
    [
        # A number cannot be Alpaca's output string.
        ({"instruction": "Q", "response": 5}, (), "record has no 'output'"),
        # ShareGPT turns under a key the messages type knows: renaming them would not read them.
        (
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
            ("--format", "messages"),
            "record has no 'messages' list",
        ),
        # No key of the record is a name for the missing one.
        ({"prompt": "Q?", "chosen": "A.", "other": "B."}, (), "record has no 'rejected'"),
    ],
)
def test_no_hint_where_no_leftover_key_fills_the_missing_one(
    tmp_path: Path, record: dict[str, Any], options: tuple[str, ...], message: str
) -> None:
    _, findings = lint(write(tmp_path, "data.jsonl", [record]), *options)
    assert [f["message"] for f in layout_findings(findings)] == [message]


def test_real_files_get_a_hint_only_where_one_applies() -> None:
    """Of the real files, only torchtune's instruct file has a missing key that a leftover
    key fills; every other file's layout findings are what they were without hints (a
    hint is a reader problem of one record, so linting the files together changes none)."""
    files = sorted(p for p in [*LAYOUTS.glob("*.json*"), *REAL.rglob("*.json*")] if p.suffix in (".json", ".jsonl"))
    assert len(files) > 20
    _, findings = lint(*files)
    hinted: dict[str, set[str]] = {}
    for f in findings:
        if f["code"] in ("FT103", "FT104") and "would fill it" in f["message"]:
            hinted.setdefault(Path(f["source"]).name, set()).add(f["message"])
    assert hinted == {
        "torchtune_instruct_tiny.json": {
            "record has no 'output'; its key 'response' would fill it: --map response=output"
        }
    }
