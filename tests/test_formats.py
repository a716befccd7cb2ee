"""Every format normalised to one chat view, with paths back into the record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ftdata
from ftdata.formats import detect, normalise
from ftdata.records import Record


def _norm(data: dict[str, Any], forced: str | None = None) -> Record:
    rec = Record(0, data)
    normalise(rec, forced)
    return rec


@pytest.mark.parametrize(
    ("data", "fmt", "roles"),
    [
        (
            {
                "messages": [
                    {"role": "developer", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                ]
            },
            "messages",
            ("system", "user", "assistant"),
        ),
        ({"prompt": "Hi", "completion": "Hello"}, "prompt-completion", ("user", "assistant")),
        (
            {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello"}]},
            "prompt-completion",
            ("user", "assistant"),
        ),
        (
            {"instruction": "Add", "input": "2 and 2", "output": "4", "system": "Math.", "history": [["1+1?", "2"]]},
            "alpaca",
            ("system", "user", "assistant", "user", "assistant"),
        ),
        (
            {
                "conversations": [
                    {"from": "human", "value": "Hi"},
                    {"from": "function_call", "value": "{}"},
                    {"from": "observation", "value": "ok"},
                    {"from": "gpt", "value": "Done"},
                ],
                "system": "S",
            },
            "sharegpt",
            ("system", "user", "assistant", "tool", "assistant"),
        ),
    ],
)
def test_formats_normalise_to_roles(data: dict[str, Any], fmt: str, roles: tuple[str, ...]) -> None:
    rec = _norm(data)
    assert detect(data) == fmt
    assert rec.format == fmt
    assert rec.roles == roles
    assert rec.problems == []


def test_alpaca_user_turn_joins_instruction_and_input_but_segments_keep_paths() -> None:
    rec = _norm({"instruction": "Translate", "input": "Bonjour", "output": "Hello"})
    assert rec.messages[0].text == "Translate\n\nBonjour"
    assert [(role, path) for role, _, path in rec.segments] == [
        ("user", ("instruction",)),
        ("user", ("input",)),
        ("assistant", ("output",)),
    ]


def test_content_parts_become_segments() -> None:
    rec = _norm(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "x"}},
                    ],
                },
                {"role": "assistant", "content": "A cat"},
            ]
        }
    )
    assert rec.segments[0] == ("user", "What is this?", ("messages", 0, "content", 0, "text"))
    assert rec.messages[0].text == "What is this?"


def test_forced_format_reports_what_is_missing() -> None:
    rec = _norm({"question": "Hi", "answer": "Hello"}, forced="alpaca")
    assert [(k, m) for k, _, m, _ in rec.problems] == [
        (
            "missing-key",
            "record has no 'instruction'; its key 'question' would fill it: --map question=instruction,answer=output",
        ),
        (
            "missing-key",
            "record has no 'output'; its key 'answer' would fill it: --map question=instruction,answer=output",
        ),
    ]


def test_problems_keep_going_past_the_first() -> None:
    rec = _norm({"messages": [{"role": "User", "content": None}, "oops", {"role": "assistant", "content": "Hello"}]})
    assert [k for k, _, _, _ in rec.problems] == ["unrecognised-role", "missing-content", "wrong-type"]
    assert rec.roles == ("User", "assistant")


@pytest.mark.parametrize(
    ("data", "prompt", "chosen", "rejected"),
    [
        ({"prompt": "Q?", "chosen": "A.", "rejected": "B."}, ["user"], ["A."], ["B."]),
        (
            {
                "prompt": [{"role": "user", "content": "Q?"}],
                "chosen": [{"role": "assistant", "content": "A."}],
                "rejected": [{"role": "assistant", "content": "B."}],
            },
            ["user"],
            ["A."],
            ["B."],
        ),
        (
            {
                "chosen": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
                "rejected": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "B."}],
            },
            ["user"],
            ["A."],
            ["B."],
        ),
        (
            {
                "system": "Be brief.",
                "conversations": [{"from": "human", "value": "Q?"}],
                "chosen": {"from": "gpt", "value": "A."},
                "rejected": {"from": "gpt", "value": "B."},
            },
            ["system", "user"],
            ["A."],
            ["B."],
        ),
        (
            {
                "chosen_messages": [
                    {"role": "user", "content": [{"type": "text", "value": "Q?"}], "loss_weight": 0.0},
                    {"role": "assistant", "content": [{"type": "text", "value": "A."}], "loss_weight": 1.0},
                ],
                "rejected_messages": [
                    {"role": "user", "content": [{"type": "text", "value": "Q?"}], "loss_weight": 0.0},
                    {"role": "assistant", "content": [{"type": "text", "value": "B."}], "loss_weight": 1.0},
                ],
            },
            ["user"],
            ["A."],
            ["B."],
        ),
        ({"instruction": "Q?", "input": "", "chosen": "A.", "rejected": "B."}, ["user"], ["A."], ["B."]),
    ],
)
def test_preference_view_is_prompt_and_chosen_with_rejected_aside(
    data: dict[str, Any], prompt: list[str], chosen: list[str], rejected: list[str]
) -> None:
    rec = _norm(data)
    assert rec.format == "preference"
    assert rec.problems == []
    assert rec.roles == (*prompt, "assistant")
    assert [m.text for m in rec.reply] == chosen
    assert [m.text for m in rec.rejected] == rejected
    # The rejected reply is never in the text content rules judge.
    assert all(text != rejected[0] for _, text, _ in rec.segments)
    assert rec.readable


def test_text_is_one_trained_text() -> None:
    rec = _norm({"text": "Once upon a time."})
    assert (rec.format, rec.roles, rec.problems) == ("text", ("assistant",), [])
    assert rec.segments == [("assistant", "Once upon a time.", ("text",))]
    assert [p[:2] for p in _norm({"text": 3}).problems] == [("wrong-type", ("text",))]
    assert [p[:2] for p in _norm({"text": None}).problems] == [("missing-content", ("text",))]


@pytest.mark.parametrize(
    ("data", "label"),
    [
        ({"prompt": "Q?", "completion": "A.", "label": True}, True),
        (
            {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}], "label": False},
            False,
        ),
        ({"prompt": "Q?", "completion": "A.", "kto_tag": False}, False),
        ({"prompt": "Q?", "completion": "A.", "label": "false"}, None),
    ],
)
def test_unpaired_preference_keeps_its_label(data: dict[str, Any], label: bool | None) -> None:
    rec = _norm(data)
    assert rec.format == "unpaired-preference"
    assert rec.label is label
    assert [m.text for m in rec.reply] == ["A."]
    assert rec.judged(rec.reply[0].path) is (label is not False)
    assert [p[0] for p in rec.problems] == ([] if label is not None else ["invalid-kto-label"])


def test_a_class_label_beside_messages_is_metadata() -> None:
    data = {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}], "label": "spam"}
    assert detect(data) == "messages"


@pytest.mark.parametrize(
    ("data", "label", "roles"),
    [
        ({"instruction": "Q?", "input": "", "output": "A.", "kto_tag": True}, True, ("user", "assistant")),
        (
            {"instruction": "Q?", "output": "A.", "system": "S.", "history": [["1?", "2"]], "kto_tag": False},
            False,
            ("system", "user", "assistant", "user", "assistant"),
        ),
        (
            {"conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}], "kto_tag": False},
            False,
            ("user", "assistant"),
        ),
        (
            {
                "conversations": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
                "kto_tag": True,
            },
            True,
            ("user", "assistant"),
        ),
        ({"instruction": "Q?", "output": "A.", "label": False}, False, ("user", "assistant")),
        ({"instruction": "Q?", "output": "A.", "kto_tag": "false"}, None, ("user", "assistant")),
    ],
)
def test_llamafactory_kto_files_are_unpaired_preference(
    data: dict[str, Any], label: bool | None, roles: tuple[str, ...]
) -> None:
    rec = _norm(data)
    assert detect(data) == rec.format == "unpaired-preference"
    assert rec.label is label
    assert rec.roles == roles
    assert [m.text for m in rec.reply] == ["A."]
    # Only the completion of an undesirable example is kept from content rules.
    assert rec.judged(rec.reply[0].path) is (label is not False)
    assert all(rec.judged(m.path) for m in rec.messages[:-1])
    assert [p[:2] for p in rec.problems] == ([] if label is not None else [("invalid-kto-label", ("kto_tag",))])
    assert rec.readable


def test_a_class_label_beside_alpaca_or_sharegpt_is_metadata() -> None:
    assert detect({"instruction": "Q?", "output": "A.", "label": "spam"}) == "alpaca"
    assert detect({"conversations": [{"from": "human", "value": "Q?"}], "label": 3}) == "sharegpt"


def _lint(tmp_path: Path, rows: list[dict[str, Any]], *select: str) -> list[tuple[str, int | None, int | None]]:
    path = tmp_path / "kto.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    report = ftdata.lint(path, config=False, select=list(select))
    return sorted((f.code, f.line, f.column) for f in report.findings)


def test_unbalanced_fence_is_judged_on_desirable_alpaca_kto_output_only(tmp_path: Path) -> None:
    fence = "```python\nprint(1)"
    rows = [
        {"instruction": "Print one.", "input": "", "output": fence, "kto_tag": False},
        {"instruction": "Print two.", "input": "", "output": fence, "kto_tag": True},
    ]
    col = len(json.dumps(rows[1]).split('"output": ')[0]) + len('"output": ') + 1
    assert _lint(tmp_path, rows, "FT307") == [("FT307", 2, col)]


def test_kto_tag_of_alpaca_and_sharegpt_is_checked_and_counted(tmp_path: Path) -> None:
    turns = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]
    rows = [{"instruction": f"Say {i}.", "output": f"{i}.", "kto_tag": True} for i in range(9)]
    rows += [{"conversations": turns, "kto_tag": False}, {"conversations": turns, "kto_tag": "no"}]
    tag_col = len(json.dumps(rows[-1]).split('"kto_tag": ')[0]) + len('"kto_tag": ') + 1
    # 9 desirable to 1 undesirable (the "no" is neither): FT705 points at the rare kind.
    assert _lint(tmp_path, rows, "FT704", "FT705") == [("FT704", 11, tag_col), ("FT705", 10, 1)]


def test_cli_lints_an_alpaca_kto_file_with_locations(tmp_path: Path) -> None:
    path = tmp_path / "kto.json"
    path.write_text(
        json.dumps([{"instruction": "Q?", "input": "", "output": "A.", "kto_tag": None}], indent=2), encoding="utf-8"
    )
    run = subprocess.run(
        [sys.executable, "-m", "ftdata", "lint", "--select", "FT704", str(path)], capture_output=True, text=True
    )
    assert run.returncode == 1, run.stderr
    assert f"{path}:6:16: FT704 'kto_tag' must be true (desirable) or false (undesirable), got null" in run.stdout


LAYOUTS = Path(__file__).parent / "data" / "layouts"


def test_real_prompt_completion_file_is_read_and_every_finding_is_true(tmp_path: Path) -> None:
    """mlx-examples' WWDC 2025 fine-tuning demo (tests/data/layouts/SOURCES.md):
    each question is answered three times, in a plain, a sourced and a florid style.

    Verdicts: FT200 is true (a 6-record excerpt); FT402 on lines 1 and 4 is true, each prompt
    really is answered three times and the short answer is contained in the longer ones,
    which is what the demo means to teach but what an SFT set should know it contains."""
    path = tmp_path / "valid.jsonl"
    path.write_bytes((LAYOUTS / "mlx_examples_wwdc25_valid.jsonl").read_bytes())
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(detect(row) == "prompt-completion" for row in records)
    run = subprocess.run(
        [sys.executable, "-m", "ftdata", "lint", "--output-format", "json", str(path)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert sorted((f["code"], f["line"]) for f in json.loads(run.stdout)) == [
        ("FT200", 1),
        ("FT402", 1),
        ("FT402", 4),
    ]
