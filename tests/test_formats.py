"""Every format normalised to one chat view, with paths back into the record."""

from __future__ import annotations

from typing import Any

import pytest

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
        ("missing-key", "record has no 'instruction'"),
        ("missing-key", "record has no 'output'"),
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
