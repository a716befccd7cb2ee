"""The cheaper paths of the record rules and per-record keys agree with their references:
FT309's word bounds and sentence split, FT305's inline-label search, and the prompt keys
that FT402, FT403 and FT601 share within a record."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ftdata.curation.dedup import read_records
from ftdata.records import Record
from ftdata.rules.duplicates import _prompt_answer
from ftdata.rules.leakage import _prompt_key
from ftdata.rules.replies import _INLINE_LABEL, _UNIT, may_repeat, repeated_share, repetition_issues, units_of
from ftdata.similarity.keys import conversation_key, prompt_key
from tests.conftest import TESTS

REAL = sorted((TESTS / "data" / "real").rglob("*.json*"))
#: FT309's default options, in the order repetition_issues takes them.
FT309 = (300, 4.0, 0.6, 4, 50)
#: The inline-label search as a lookbehind (the reference): the stop is not part of the match.
_INLINE_REFERENCE = re.compile(r"(?<=[.!?)\]])[ \t]+([A-Z][A-Za-z]{1,13}|Q|A)[ \t]*:[ \t]+(?=\S)")
#: Function words first: the most common words of English prose, which make the cheap
#: n-gram bound pass most turns of a few hundred words.
_ZIPF = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "it",
    "for",
    "on",
    "with",
    "as",
    "by",
    "this",
    "be",
    "are",
    "from",
    "or",
    "at",
]
_ZIPF += [f"word{i}" for i in range(200)]


def _records(path: Path) -> list[Record]:
    return [rec for rec in read_records(path, None, None) if type(rec.data) is dict]


def _zipf_text(rng: random.Random, words: int) -> str:
    weights = [1 / (k + 1) for k in range(len(_ZIPF))]
    out = []
    for k, word in enumerate(rng.choices(_ZIPF, weights, k=words)):
        out.append(word + (rng.choice([".", "!", "?", ".\n", "\n\n"]) if k % 11 == 10 else ""))
    return " ".join(out)


def _reference_units(text: str) -> list[str]:
    return [u.strip() for u in _UNIT.split(text) if u.strip()]


_PIECES = st.sampled_from(
    ["a", "Ab", "x.", "y!", "z?", ".", "!", "?", " ", "  ", "\t", " \t ", "\n", "\n\n", "\r", "\r\n", "\u3000", ". "]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_units_split_as_the_reference(text: str) -> None:
    assert units_of(text) == _reference_units(text)


def test_units_on_real_texts() -> None:
    texts = [text for path in REAL for rec in _records(path) for _, text, _ in rec.segments]
    assert len(texts) > 3000
    for text in texts:
        assert units_of(text) == _reference_units(text)


_LABEL_PIECES = st.sampled_from(
    ["Hi", ".", "!", "?", ")", "]", " ", "\t", "\n", "User", "Q", "A", ":", ": ", "Customer", "2.", "ok", "AB", "x"]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_LABEL_PIECES, max_size=30).map("".join))
def test_inline_labels_found_as_the_reference(text: str) -> None:
    fast = [(m.start(1), m.group(2)) for m in _INLINE_LABEL.finditer(text)]
    assert fast == [(m.start(), m.group(1)) for m in _INLINE_REFERENCE.finditer(text)]


@settings(max_examples=600, deadline=None)
@given(st.integers(0, 2**32), st.integers(12, 400), st.floats(0.0, 1.0), st.integers(1, 8))
def test_word_bound_on_function_word_prose(seed: int, words: int, share: float, n: int) -> None:
    text = _zipf_text(random.Random(seed), words)
    if not may_repeat(text, share, n):
        assert repeated_share(text, n=n)[0] <= share


def test_word_bound_rules_out_function_word_prose() -> None:
    """Prose whose common words repeat a lot but that does not loop is ruled out without
    zlib: the n largest word counts stay under the share where W - V + n does not."""
    rng = random.Random(7)
    ruled_out = 0
    cheap = 0
    for _ in range(200):
        text = _zipf_text(rng, 300)
        words = text.split()
        cheap += len(words) - len(set(words)) + 5 > 0.6 * len(words)
        assert repeated_share(text)[0] <= 0.6
        ruled_out += not may_repeat(text, 0.6, 4)
    assert cheap > 150  # the cheap bound alone passes most of them
    assert ruled_out > 190


def _chat(user: str, reply: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]}


def test_ft309_agrees_with_its_reference_on_function_word_prose(tmp_path: Path) -> None:
    rng = random.Random(11)
    rows = []
    for k in range(300):
        reply = _zipf_text(rng, rng.randint(40, 300))
        if k % 5 == 0:  # a sound start, then a loop
            reply += " " + "I am sorry, I cannot do that. " * rng.randint(2, 30)
        rows.append(_chat(_zipf_text(rng, 20), reply))
    path = tmp_path / "prose.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    found = 0
    for rec in _records(path):
        for options in (FT309, (100, 2.5, 0.3, 3, 20), (300, 4.0, 0.9, 8, 50)):
            fast = repetition_issues(rec, *options)
            assert fast == repetition_issues(rec, *options, reference=True)
            found += bool(fast)
    assert found  # the loops are found, so findings are compared too


def test_shared_prompt_turns_change_no_key() -> None:
    """The prompt keys read one list of loose prompt turns per record; each key is the
    same whichever rule asks first, and the same as on a record nothing was asked of."""
    compared = 0
    for path in REAL:
        first, second, alone = _records(path), _records(path), _records(path)
        for a, b, c in zip(first, second, alone, strict=True):
            a_leak, a_pair = _prompt_key(a), _prompt_answer(a)
            b_pair, b_leak = _prompt_answer(b), _prompt_key(b)
            assert (a_leak, a_pair) == (b_leak, b_pair)
            assert conversation_key(a) == conversation_key(b)
            assert a_leak == prompt_key(c, loose=True)
            compared += a_leak is not None
    assert compared > 3000


def test_lint_reports_loops_and_labels_in_function_word_prose(tmp_path: Path) -> None:
    rng = random.Random(3)
    sound = _zipf_text(rng, 150)
    rows = [
        _chat("Say something about the data.", sound),
        _chat("Say something about the data.", sound + " " + "Please try again later. " * 20),
        _chat("My order is late.", sound + " Thanks for waiting. User: Where is it now?"),
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cmd = [sys.executable, "-m", "ftdata", "lint", str(path), "--select", "FT305,FT309"]
    out = subprocess.run([*cmd, "--output-format", "json", "--no-cache"], capture_output=True, text=True)
    assert out.returncode != 2, out.stderr
    found = {(f["code"], f["index"]) for f in json.loads(out.stdout)}
    assert found == {("FT309", 1), ("FT305", 2)}


def test_lint_reports_short_loops_and_signed_slots_in_real_records(tmp_path: Path) -> None:
    """Real Alpaca records with short looping replies, a signature slot in a reply about
    code, and their legitimate look-alikes: only the planted problems are reported."""
    rows = json.loads((TESTS / "data" / "real" / "llamafactory-0.9.5" / "alpaca_en_demo.json").read_text("utf-8"))
    rows = rows[:40]
    replies = {
        3: "Sure! " + "ha " * 40,
        7: "> \n" * 60,
        11: rows[11]["output"][:200] + " " + "I hope this helps. " * 14,
        13: "| Name | Age |\n| --- | --- |\n" + "| Alice | 34 | " * 60,
        17: "Buffalo buffalo Buffalo buffalo buffalo buffalo Buffalo buffalo.",
        19: "".join("* " * i + "\n" for i in range(1, 12)),
        23: "| Day | Hours |\n| --- | --- |\n" + "|  |  |\n" * 14,
    }
    for i, reply in replies.items():
        rows[i]["output"] = reply
    rows[29] = {
        "instruction": "Write a Python function that adds two numbers, then an email announcing it.",
        "input": "",
        "output": "```python\ndef add(a, b):\n    return a + b\n```\n\nHi all,\nit is merged.\n\nBest regards,\n{{author}}",
    }
    rows[31] = {
        "instruction": "Write a Jinja2 template for a welcome email.",
        "input": "",
        "output": "```jinja\nDear {{ name }},\nwelcome!\n\nBest regards,\n{{ sender }}\n```",
    }
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    cmd = [sys.executable, "-m", "ftdata", "lint", str(path), "--select", "FT309,FT310", "--output-format", "json"]
    out = subprocess.run([*cmd, "--no-cache"], capture_output=True, text=True)
    assert out.returncode != 2, out.stderr
    found = {(f["code"], f["index"]) for f in json.loads(out.stdout)}
    assert found == {("FT309", 3), ("FT309", 7), ("FT309", 11), ("FT309", 13), ("FT310", 29)}
