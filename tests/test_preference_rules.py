"""Preference pairs across records: contradictory preferences (FT707) and duplicate pairs
(FT401), on real files written and linted as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import ftdata
from tests.conftest import run_cli


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _codes(path: Path, *codes: str) -> list[tuple[str, int | None, tuple[int, ...]]]:
    return [(f.code, f.line, f.related) for f in ftdata.lint(path, config=False, select=list(codes))]


def test_a_flipped_pair_is_reported_at_the_later_record_with_the_earlier_one_related(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
            {"prompt": "Capital of Spain?", "chosen": "Madrid.", "rejected": "Seville."},
            # Normalised prompt: case, spacing and Unicode composition do not count.
            {"prompt": "  CAPITAL of\tFrance? ", "chosen": "lyon.", "rejected": "Paris."},
            {"prompt": "Capital of France?", "chosen": "Lyon.", "rejected": "Paris."},
        ],
    )
    assert _codes(data, "FT707") == [("FT707", 3, (0,)), ("FT707", 4, (0,))]
    (first, _) = ftdata.lint(data, config=False, select=["FT707"]).findings
    assert "the record on line 1" in first.message


def test_dialects_of_one_pair_are_compared_through_the_record_view(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "pairs.jsonl",
        [
            {
                "prompt": [{"role": "user", "content": "Caf\u00e9 hours?"}],
                "chosen": [{"role": "assistant", "content": "9 to 5."}],
                "rejected": [{"role": "assistant", "content": "Always open."}],
            },
            {
                "conversations": [{"from": "human", "value": "Cafe\u0301 hours?"}],
                "chosen": {"from": "gpt", "value": "Always  open."},
                "rejected": {"from": "gpt", "value": "9 to 5."},
            },
        ],
    )
    assert _codes(data, "FT707") == [("FT707", 2, (0,))]


def test_what_is_not_a_contradiction(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
            {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},  # a duplicate
            {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Nice."},  # another pair
            {"prompt": "Largest city of France?", "chosen": "Lyon.", "rejected": "Paris."},  # another prompt
            {"prompt": "Same?", "chosen": "Yes.", "rejected": "Yes."},  # nothing to prefer (FT701)
            {"prompt": "Same?", "chosen": "Yes.", "rejected": "Yes."},
            # Another system prompt is another prompt: the preference may rightly flip.
            {
                "prompt": [
                    {"role": "system", "content": "Answer wrongly on purpose."},
                    {"role": "user", "content": "Capital of France?"},
                ],
                "chosen": [{"role": "assistant", "content": "Lyon."}],
                "rejected": [{"role": "assistant", "content": "Paris."}],
            },
            # Other media attached: another prompt.
            {"prompt": "What is in <image>?", "chosen": "A cat.", "rejected": "A dog.", "images": ["a.jpg"]},
            {"prompt": "What is in <image>?", "chosen": "A dog.", "rejected": "A cat.", "images": ["b.jpg"]},
        ],
    )
    assert _codes(data, "FT707") == []


def test_unreadable_and_unpaired_records_are_never_compared(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
            {"prompt": "Capital of France?", "chosen": "Lyon."},  # no rejected reply
            {"prompt": "Capital of France?", "chosen": "Lyon.", "rejected": 7},  # wrong type
            {"prompt": "Capital of France?", "completion": "Lyon.", "label": True},  # KTO
        ],
    )
    assert _codes(data, "FT707") == []


def test_a_repeated_pair_is_an_exact_duplicate_and_a_flipped_one_is_not(tmp_path: Path) -> None:
    pair = {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}
    data = _write(
        tmp_path / "pairs.jsonl",
        [
            pair,
            {"prompt": "Capital of France?", "chosen": "Lyon.", "rejected": "Paris."},
            {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Marseille."},
            pair,
        ],
    )
    assert _codes(data, "FT401") == [("FT401", 4, (0,))]
    # The copy on line 4 flips line 2 back: a contradiction of its own.
    assert _codes(data, "FT707") == [("FT707", 2, (0,)), ("FT707", 4, (1,))]
    # dedup, which applies FT401, keeps the flipped and the other pair.
    out = tmp_path / "clean.jsonl"
    result = run_cli("dedup", data, "-o", out, "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        json.loads(line) for line in data.read_text().splitlines()[:3]
    ]


def test_the_cli_reports_the_contradiction_as_a_warning(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
            {"prompt": "Capital of France?", "chosen": "Lyon.", "rejected": "Paris."},
        ],
    )
    result = run_cli("lint", data, "--isolated", "--select", "FT707")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{data}:2:1: FT707 the same prompt prefers the opposite reply in the record on line 1" in result.stdout
    assert run_cli("lint", data, "--isolated", "--select", "FT707", "--fail-on", "warning").returncode == 1


def test_tool_calls_of_kto_examples_are_checked_in_both_dialects(tmp_path: Path) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    sharegpt = [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": json.dumps(call)},
        {"from": "observation", "value": "18C"},
        {"from": "gpt", "value": "18C in Paris."},
    ]
    broken = [sharegpt[0], {"from": "function_call", "value": "get_weather(Paris)"}, sharegpt[3]]
    openai_call = {
        "role": "assistant",
        "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{x"}}],
    }
    data = _write(
        tmp_path / "kto.jsonl",
        [
            {"conversations": sharegpt, "kto_tag": True},
            # undesirable, yet a call that does not parse breaks the template whatever the label
            {"conversations": broken, "kto_tag": False},
            {"prompt": [{"role": "user", "content": "x?"}], "completion": [openai_call], "label": True},
            {"conversations": sharegpt, "kto_tag": True, "tools": "[not json"},
        ],
    )
    found = [(f.code, f.line, f.message) for f in ftdata.lint(data, config=False, select=["FT116", "FT118"])]
    assert [(code, line) for code, line, _ in found] == [("FT116", 2), ("FT116", 2), ("FT116", 3), ("FT118", 4)]
    assert "function_call value is not valid JSON" in found[0][2]
    assert "not valid JSON" in found[2][2]
    assert "'tools' is not valid JSON" in found[3][2]
