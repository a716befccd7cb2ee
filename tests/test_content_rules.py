"""The reply rules on real records: FT305 inline labels, FT306 habits, FT309 loops, FT310 slots."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import ftdata
from benchmarks.planted import plant_ft305, plant_ft309, plant_ft310

REPLY = "Drink water, rest in a dark room and take ibuprofen if it persists. See a doctor if it lasts more than a day."


def _record(reply: str, prompt: str = "I have a headache, what should I do?", system: str | None = None) -> dict:
    turns = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return {"messages": [*turns, {"role": "assistant", "content": reply}]}


def _codes(records: list[dict], code: str) -> list[int]:
    return sorted(f.index for f in ftdata.lint(records, select=[code], config=False) if f.index is not None)


def test_planted_cases_are_found_and_the_originals_are_clean() -> None:
    base = _record(REPLY)
    for code, plant in (("FT305", plant_ft305), ("FT309", plant_ft309), ("FT310", plant_ft310)):
        assert _codes([base], code) == []
        planted = [plant(base, random.Random(seed)) for seed in range(12)]
        assert _codes(planted, code) == list(range(12)), code


def test_degenerate_repetition_is_quiet_on_tables_lists_and_code() -> None:
    table = "| Year | Population |\n| --- | --- |\n" + "".join(
        f"| {2000 + i} | {6.1 + i / 10:.2f} |\n" for i in range(60)
    )
    steps = "".join(
        f"{i}. Write a program to print the numbers from 1 to {i * 10} using a loop.\n" for i in range(1, 40)
    )
    code = "```python\n" + "print('hi')\n" * 300 + "```"
    assert _codes([_record(table), _record(steps), _record(code)], "FT309") == []
    assert _codes([_record(REPLY + " " + "Sorry. " * 200)], "FT309") == [0]


def test_inline_label_needs_the_frame_and_no_dialogue_request() -> None:
    system = "You are a support agent helping a customer."
    reply = "It ships today. I hope this helps. Customer: Thanks, that works."
    records = [
        _record(reply, "My order is late.", system),
        _record(reply, "My order is late."),  # no customer in the frame: "Customer:" is prose
        _record(reply, "Write a dialogue between a customer and an agent.", system),
        _record("Set it to 3:1. Note: this is the default.", "Ratio?", system),
    ]
    assert _codes(records, "FT305") == [0]


def test_template_variables_are_quiet_on_code_and_requested_templates() -> None:
    records = [
        _record("Hello! I am {{name}}, an AI assistant developed by {{author}}.", "Who are you?"),
        _record("Use {{ user.name }} in the Jinja template.", "How do I print a name in Jinja?"),
        _record("Dear [Your Name], thanks.", "Fill in this: Dear [Your Name], ..."),
        _record("Write `{name}` and call `.format(name=x)`.", "How do I greet?"),
    ]
    assert _codes(records, "FT310") == [0]


def test_undefined_is_an_answer_to_a_javascript_question() -> None:
    records = [
        _record("undefined", "What does this JavaScript print? let x; console.log(x)"),
        _record("undefined", "Capital of France?"),
    ]
    assert _codes(records, "FT303") == [1]


def test_an_end_of_text_habit_is_one_finding_with_its_count(tmp_path: Path) -> None:
    rows = [_record(f"Answer {i}.<|endoftext|>", f"Question {i}?") for i in range(30)]
    rows.append(_record("Hello <|im_end|> there", "Hi"))
    path = tmp_path / "habit.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftdata",
            "lint",
            "--isolated",
            "--select",
            "FT306",
            "--output-format",
            "json",
            path.name,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    found = json.loads(proc.stdout)
    assert [f["line"] for f in found] == [1, 31]
    assert "30 assistant turns end with the chat-template token '<|endoftext|>'" in found[0]["message"]
    assert "first on lines 1, 2, 3, 4, 5" in found[0]["message"]


def test_bracketed_slots_are_checked_only_when_asked() -> None:
    letter = _record(
        "Dear Ms. Lee,\n\nThank you for the interview.\n\nBest regards,\n[Your Name]", "Write a thank-you letter."
    )
    assert _codes([letter], "FT310") == []  # a drafted letter rightly leaves the name to fill
    strict = ftdata.lint([letter], select=["FT310"], options={"FT310": {"brackets": True}}, config=False)
    assert [f.message for f in strict] == ["assistant text contains the unfilled template variable '[Your Name]'"]
    braces = _record("Thanks for your order, {{customer_name}}!", "Confirm my order.")
    assert _codes([braces], "FT310") == [0]


def test_a_bracketed_todo_is_a_placeholder() -> None:
    rows = [_record(text, "Summarise the report.") for text in ("[TODO]", "(TBD)", "<todo>", "[to do later]")]
    assert _codes(rows, "FT303") == [0, 1, 2]
