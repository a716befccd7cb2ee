"""Prompt keys (case, punctuation and spacing do not count unless strict) and scripts
written without spaces, on real files and real Chinese data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import ftdata
from ftdata.similarity.minhash import near_duplicate_pairs, shingle_sets
from ftdata.similarity.scripts import has_spaceless, spaced, word_tokens
from ftdata.similarity.text import loose_bytes
from tests.conftest import REAL

ROOT = Path(__file__).resolve().parent.parent
ZH = REAL / "alpaca_zh_demo.json"


def _chat(prompt: str, answer: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _codes(path: Path | list[Path], **kwargs: object) -> list[str]:
    return [f.code for f in ftdata.lint(path, config=False, **kwargs).findings]  # type: ignore[arg-type]


def _zh() -> list[dict[str, str]]:
    return json.loads(ZH.read_text(encoding="utf-8"))


def test_loose_bytes_ignores_case_punctuation_and_spacing() -> None:
    assert loose_bytes("What is the capital of France?") == loose_bytes("what is the capital  of france")
    assert loose_bytes("Don't stop!") == loose_bytes("dont stop")
    assert loose_bytes("end.Start") == loose_bytes("end. Start")
    assert loose_bytes("ＡＢＣ，好吗？") == loose_bytes("abc 好吗")  # full-width forms and CJK punctuation
    assert loose_bytes("what is 2+2") != loose_bytes("what is 2-2")  # symbols change the question


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["alpha", "Beta", "GAMMA", "x1", "dé"]), min_size=1, max_size=8), st.data())
def test_loose_bytes_is_blind_to_case_and_inserted_punctuation(words: list[str], data: st.DataObject) -> None:
    marks = data.draw(
        st.lists(
            st.sampled_from(["", "?", "!", ",", ".", " ", "  ", "\u3002", "..."]),
            min_size=len(words),
            max_size=len(words),
        )
    )
    plain = " ".join(words)
    noisy = " ".join(w.upper() + m for w, m in zip(words, marks, strict=True))
    assert loose_bytes(plain) == loose_bytes(noisy)


def test_case_and_punctuation_variants_answered_differently_conflict_by_default(tmp_path: Path) -> None:
    rows = [
        _chat("What is the capital of Australia?", "Canberra is the capital of Australia."),
        _chat("what is the capital of australia", "Sydney, the largest city, is the capital."),
        _chat("WHAT IS THE CAPITAL OF AUSTRALIA!!", "It is Melbourne."),
    ]
    path = _write(tmp_path / "train.jsonl", rows)
    report = ftdata.lint(path, config=False)
    conflicts = [f for f in report.findings if f.code == "FT403"]
    assert len(conflicts) == 1
    assert conflicts[0].index == 0
    assert set(conflicts[0].related) == {1, 2}
    assert "FT403" not in _codes(path, options={"FT403": {"strict": True}})


def test_strict_option_from_the_command_line(tmp_path: Path) -> None:
    rows = [
        _chat("Can I reset my password?", "Yes, open Settings."),
        _chat("can i reset my password", "No, call us."),
    ]
    path = _write(tmp_path / "train.jsonl", rows)
    cmd = [sys.executable, "-m", "ftdata", "lint", "--isolated", "--select", "FT403", str(path)]
    loose = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert "FT403" in loose.stdout, loose.stdout + loose.stderr
    strict = subprocess.run([*cmd, "--option", "FT403.strict=true"], capture_output=True, text=True, cwd=tmp_path)
    assert strict.returncode == 0, strict.stdout + strict.stderr
    assert "FT403" not in strict.stdout
    assert "1 record" not in strict.stdout


def test_leak_of_a_case_variant_prompt(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.jsonl", [_chat("Translate 'good morning' into French.", "Bonjour.")])
    held = _write(tmp_path / "eval.jsonl", [_chat("translate good morning into french", "Bonjour !")])
    report = ftdata.lint([train, held], select=["FT601"], config=False)
    assert [(f.code, f.index) for f in report.findings] == [("FT601", 0)]
    strict = ftdata.lint([train, held], select=["FT601"], options={"FT601": {"strict": True}}, config=False)
    assert not strict.findings


def test_split_keeps_case_variants_of_a_prompt_together(tmp_path: Path) -> None:
    from ftdata.curation.grouping import record_key
    from ftdata.formats import normalise
    from ftdata.records import Record

    recs = []
    for k, row in enumerate([_chat("Name a prime number.", "7"), _chat("name a prime number", "11")]):
        rec = Record(k, row)
        normalise(rec, None)
        recs.append(rec)
    key = record_key("prompt")
    assert key is not None
    assert key(recs[0]) == key(recs[1])


def test_spaceless_scripts_are_split_into_characters() -> None:
    assert has_spaceless("保持健康的三个提示。")
    assert not has_spaceless("café au lait")
    assert not has_spaceless("안녕 하세요")  # Korean is written with spaces
    assert word_tokens("保持健康 tips") == ["保", "持", "健", "康", "tips"]
    assert spaced("plain text") == "plain text"
    sets = shingle_sets(["保持健康的三个提示", "保持健康的三个建议"], n=3)
    assert sets.unique(0).size == 7  # character 3-grams, not one "word"


def test_chinese_near_duplicates_are_found() -> None:
    data = _zh()[:200]
    texts = [r["instruction"] + r["input"] + r["output"] for r in data]
    base = texts[0]
    texts.append(base.replace("细胞理论", "细胞学说", 1))  # one term changed in a long text
    pairs = near_duplicate_pairs(texts, threshold=0.8)
    assert (0, len(texts) - 1) in {(i, j) for i, j, _ in pairs}
    assert all(j == len(texts) - 1 for _, j, _ in pairs)  # the real records are not near duplicates of each other


def test_chinese_prompts_repeated_with_different_answers_conflict(tmp_path: Path) -> None:
    data = [r for r in _zh() if not r["input"] and len(r["output"]) < 70][:40]
    rows = [{"instruction": r["instruction"], "input": "", "output": r["output"]} for r in data]
    # The first prompt again with another record's (short) answer: a conflict.
    rows.append({"instruction": data[0]["instruction"], "input": "", "output": data[1]["output"]})
    # The second prompt again, its answer with one phrase dropped: the same answer, not a conflict.
    rows.append({"instruction": data[2]["instruction"], "input": "", "output": data[2]["output"][:-6]})
    # The third prompt again with another count: a contradiction, reported by default.
    rows.append({"instruction": data[3]["instruction"], "input": "", "output": "共有 3 个。"})
    rows.append({"instruction": data[3]["instruction"], "input": "", "output": "共有 5 个。"})
    path = tmp_path / "train.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    default = ftdata.lint(path, select=["FT402", "FT403"], config=False)
    assert {(f.code, f.index) for f in default.findings} == {("FT403", 3), ("FT402", 2)}
    assert "different numbers" in next(f.message for f in default.findings if f.code == "FT403")
    wider = ftdata.lint(path, select=["FT403"], options={"FT403": {"report": "different"}}, config=False)
    assert {f.index for f in wider.findings} == {0, 3}


def test_chinese_leak_and_near_duplicates_in_rules(tmp_path: Path) -> None:
    data = [r for r in _zh() if not r["input"] and len(r["instruction"]) > 25][:30]
    train = _write(tmp_path / "train.jsonl", [_chat(r["instruction"], r["output"]) for r in data[:20]])
    edited = data[3]["instruction"][:-2] + "吗？"
    held = _write(
        tmp_path / "eval.jsonl",
        [_chat(r["instruction"] + "，谢谢", r["output"]) for r in data[20:]] + [_chat(edited, "好")],
    )
    report = ftdata.lint([train, held], select=["FT602"], config=False)
    assert [f.index for f in report.findings] == [10]
    rows = [_chat(r["instruction"], r["output"]) for r in data] + [
        _chat(data[5]["instruction"], data[5]["output"] + "。")
    ]
    one = _write(tmp_path / "one.jsonl", rows)
    near = [f for f in ftdata.lint(one, select=["FT404"], config=False).findings]
    assert [(f.index, f.related) for f in near] == [(30, (5,))]


def test_elaboration_is_not_a_conflict_unless_asked(tmp_path: Path) -> None:
    story = (
        "Once upon a time a young astronomer looked up from her garden and counted the planets of our solar "
        "system. She found that there are 8 planets, from little Mercury near the Sun to cold Neptune far away, "
        "and she wrote the number in her notebook so she would never forget it."
    )
    rows = [
        _chat("How many planets are in the solar system?", "There are 8 planets."),
        _chat("How many planets are in the solar system?", story),
    ]
    path = _write(tmp_path / "train.jsonl", rows)
    assert _codes(path, select=["FT403"]) == []
    asked = ftdata.lint(path, select=["FT403"], options={"FT403": {"report": "all"}}, config=False).findings
    assert len(asked) == 1
    assert "elaborates" in asked[0].message
    assert _codes(path, select=["FT402"]) == ["FT402"]  # still a prompt answered twice
    rows.append(_chat("How many planets are in the solar system?", "There are 9 planets."))
    conflict = ftdata.lint(_write(path, rows), select=["FT403"], config=False).findings
    assert len(conflict) == 1
    assert "different numbers" in conflict[0].message


def test_templated_system_prompt_is_reported_once(tmp_path: Path) -> None:
    names = ["Alice", "Bob", "Carol Smith", "Dan", "Eve", "Frank", "Grace Hopper"]
    rows = []
    for k in range(300):
        system = (
            f"You are the Acme support assistant. Session {k * 7919 % 100000:05d}-{k % 13:x} started on "
            f"2024-{k % 12 + 1:02d}-{k % 28 + 1:02d} for {names[k % len(names)]}. Answer briefly."
        )
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": f"Question {k}?"},
                    {"role": "assistant", "content": "Yes."},
                ]
            }
        )
    typo = rows[0]["messages"][0]["content"].replace("support", "suport")  # type: ignore[index]
    rows.append(
        {
            "messages": [
                {"role": "system", "content": typo},
                {"role": "user", "content": "Hi there?"},
                {"role": "assistant", "content": "Hello."},
            ]
        }
    )
    path = _write(tmp_path / "train.jsonl", rows)
    found = ftdata.lint(path, select=["FT202"], config=False).findings
    template = [f for f in found if "template" in f.message]
    assert len(template) == 1
    assert "300 system-prompt variants in 300 records" in template[0].message
    assert "Session {…} started on {…} for {…}. Answer briefly." in template[0].message
    assert len(template[0].related) == 299
    others = [f for f in found if f not in template]
    assert [f.index for f in others] == [300]  # the typo is a variant, not a fill
    assert "'support' → 'suport'" in others[0].message


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), min_size=1))
def test_ascii_fast_path_agrees_with_the_unicode_path(text: str) -> None:
    # A non-ASCII word appended sends the text down the Unicode path.
    assert loose_bytes(text + " é") == b" ".join([*loose_bytes(text).split(), "é".encode()])


def test_text_records_keep_distinct_prompt_keys() -> None:
    """A text record has no prompt turn: its whole text is what a prompt key compares."""
    from ftdata.formats import normalise
    from ftdata.records import Record
    from ftdata.similarity.keys import prompt_key

    records = [Record(k, {"text": f"Document number {k} about gardening."}) for k in range(3)]
    for r in records:
        normalise(r)
    assert len({prompt_key(r, loose=True) for r in records}) == 3
    assert prompt_key(records[0], loose=True) == prompt_key(records[0], loose=True)


def test_per_record_context_in_the_system_prompt_is_not_many_prompts() -> None:
    """CoQA-style reading sets put each record's story in its system prompt."""
    import ftdata

    def record(system: str, k: int) -> dict:
        return {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": f"Question {k} about the story?"},
                {"role": "assistant", "content": f"Answer {k}."},
            ]
        }

    story = "Once upon a time a fox lived by the river and watched the boats go by every morning. "
    stories = [record(f"Story {k}: {story * 6}", k) for k in range(30)]
    assert not ftdata.lint(stories, select=["FT203"], config=False).findings
    drifting = [record(f"You are assistant {k % 20}.", k) for k in range(30)]
    assert [f.code for f in ftdata.lint(drifting, select=["FT203"], config=False)] == ["FT203"]


ALPACA_EN = REAL / "alpaca_en_demo.json"
DPO_EN = REAL / "dpo_en_demo.json"
_FIGURES_SIGNAL = "only in their numbers or dates"


def test_changed_figures_in_a_long_real_reply_conflict(tmp_path: Path) -> None:
    """A real 60-word reply given twice, once with its years and figures changed."""
    record = next(r for r in json.loads(ALPACA_EN.read_text(encoding="utf-8")) if "GlobalFlyer" in r["output"])
    assert len(record["output"].split()) > 40  # past the short-answer signals
    changed = dict(record, output=record["output"].replace("2005", "2008").replace("76 hours", "79 hours"))
    path = _write(tmp_path / "train.jsonl", [record, changed])
    cmd = [sys.executable, "-m", "ftdata", "lint", "--isolated", "--select", "FT403", str(path)]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert f"{_FIGURES_SIGNAL} ('2005' / '2008')" in run.stdout, run.stdout + run.stderr
    # The same reply with an extra sentence of figures elaborates; it does not contradict.
    extra = dict(record, output=record["output"] + " The aircraft weighed 10,000 kilograms at take-off.")
    assert _codes(_write(path, [record, extra]), select=["FT403"]) == []


def test_regenerated_real_answers_do_not_conflict_by_figures() -> None:
    """The chosen and rejected replies of a real preference set are two generations for
    one prompt; read as two answers, their figures alone never make them a conflict."""
    rows = []
    for r in json.loads(DPO_EN.read_text(encoding="utf-8")):
        for reply in (r["chosen"], r["rejected"]):
            rows.append({"conversations": [*r["conversations"], reply]})
    findings = ftdata.lint(rows, select=["FT403"], config=False).findings
    assert findings  # the set has real contradictions (yes/no, other results of a sum)
    assert not [f.message for f in findings if _FIGURES_SIGNAL in f.message]


_TEMPLATE = (
    "The bridge was opened in {} after {} years of work. It is {} metres long, carries {} lanes of traffic "
    "and about {} vehicles cross it on a working day. Its towers rise {} metres above the water, and the "
    "main span was the longest in the country until a second bridge was built upstream, which took the "
    "record from it by a few metres and is still the longer of the two."
)
_LIST = "To plant a tree:\n{} Dig a wide hole.\n{} Loosen the roots.\n{} Fill the hole and water the tree well, " + (
    "then keep the soil moist through the first summer while the roots take hold in the ground around them."
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 99_999), min_size=6, max_size=6),
    st.lists(st.integers(0, 99_999), min_size=6, max_size=6),
    st.integers(1, 50),
)
def test_figures_signal_on_long_replies(first: list[int], second: list[int], start: int) -> None:
    prompt = "Tell me about the bridge."
    rows = [_chat(prompt, _TEMPLATE.format(*first)), _chat(prompt, _TEMPLATE.format(*second))]
    messages = [f.message for f in ftdata.lint(rows, select=["FT403"], config=False).findings]
    if set(first) == set(second):
        assert messages == []
    else:
        assert len(messages) == 1
        assert _FIGURES_SIGNAL in messages[0]
    # Renumbered list enumerators ("1." against "7.") are not figures that differ.
    numbered = [_chat("How do I plant a tree?", _LIST.format(*(f"{start + k}." for k in range(3))))]
    numbered.append(_chat("How do I plant a tree?", _LIST.format("1.", "2.", "3.")))
    assert ftdata.lint(numbered, select=["FT403"], config=False).findings == []
