"""Every pre-filter of a record rule leaves its findings as they were: the filtered rule
and its unfiltered reference give the same issues on the real files, on the rule's
fixtures and on generated input aimed at the filter's boundary."""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

import ftdata
from ftdata.curation.dedup import read_records
from ftdata.formats import normalise
from ftdata.records import Record
from ftdata.rules.media import may_use_media, media_count_issues, media_count_mismatch
from ftdata.rules.replies import (
    _looping_prose,
    _looping_reference,
    _may_loop_at_end,
    _row_loop,
    _trailing_loop,
    _without_tables,
    degenerate_repetition,
    may_repeat,
    repeated_share,
    repetition_issues,
    speaker_label,
    unfilled_template_variable,
)
from ftdata.rules.text_quality import _cited, _walk, missing_context
from ftdata.similarity.text import _punctuation_table, canonical_bytes, loose_bytes
from tests.conftest import TESTS

SAMPLE = Path(ftdata.__file__).parent / "samples" / "support_chat.jsonl"
REAL = [*sorted((TESTS / "data" / "real").rglob("*.json*")), SAMPLE]
#: FT309's default options, in the order repetition_issues takes them.
FT309 = (300, 4.0, 0.6, 4, 50)


def _records(path: Path) -> list[Record]:
    return [rec for rec in read_records(path, None, None) if type(rec.data) is dict]


def _fixtures(code: str) -> list[Record]:
    folder = TESTS / "rules" / code
    return [rec for path in sorted(folder.glob("*.json*")) for rec in _records(path)]


def _record(data: dict[str, Any]) -> Record:
    rec = Record(0, data)
    normalise(rec, None)
    return rec


REAL_RECORDS = [rec for path in REAL for rec in _records(path)]


def test_real_files_hold_many_records() -> None:
    assert len(REAL_RECORDS) > 3000


# --------------------------------------------------------------------------- FT309


def _ft309_agrees(rec: Record, options: tuple[int, float, float, int, int] = FT309) -> list[Any] | None:
    fast = repetition_issues(rec, *options)
    assert fast == repetition_issues(rec, *options, reference=True)
    return fast


def test_ft309_on_real_files() -> None:
    found = [rec for rec in REAL_RECORDS if _ft309_agrees(rec)]
    assert found  # the real files hold looping replies, so the comparison covers findings too


def test_ft309_on_real_files_with_other_options() -> None:
    for options in ((100, 2.5, 0.3, 3, 20), (50, 1.5, 0.1, 2, 8), (300, 4.0, 0.9, 8, 50)):
        for rec in REAL_RECORDS:
            _ft309_agrees(rec, options)


def test_ft309_on_its_fixtures() -> None:
    bad = _records(TESTS / "rules" / "FT309" / "bad.jsonl")
    assert all(_ft309_agrees(rec) for rec in bad)
    assert not any(_ft309_agrees(rec) for rec in _records(TESTS / "rules" / "FT309" / "good.jsonl"))
    assert degenerate_repetition(bad[0]) == repetition_issues(bad[0], *FT309, reference=True)


def test_word_bound_on_real_texts() -> None:
    """The bound holds on every turn of the real files, and it passes few of them."""
    texts = [text for rec in REAL_RECORDS for _, text, _ in rec.segments if len(text) >= 300]
    passed = 0
    for text in texts:
        plain = _without_tables(text)
        for share, n in ((0.6, 4), (0.3, 2), (0.8, 6)):
            if not may_repeat(plain, share, n):
                assert repeated_share(plain, n=n)[0] <= share
            elif (share, n) == (0.6, 4):
                passed += 1
    assert passed < len(texts) / 4


# Texts near the bound: few distinct words, sentences and lines that repeat one of the
# units a little before them, and separators of every kind units and words split at.
_WORDS = st.one_of(
    st.sampled_from(["a", "the", "cat", "sat", "on", "mat", "Thank", "you!", "x", "1", "é", "漢字", "ok."]),
    st.integers(0, 10**6).map(lambda i: f"w{i}"),  # words that never repeat by chance
)
_SEP = st.sampled_from([" ", "  ", "\n", "\n\n", ". ", "! ", "? ", "\t", " | ", "\r\n", "\u3000"])


@st.composite
def _looping_text(draw: st.DrawFn) -> str:
    units: list[str] = []
    for _ in range(draw(st.integers(1, 30))):
        if units and draw(st.booleans()):
            units.append(units[-draw(st.integers(1, min(10, len(units))))])
        else:
            words = draw(st.lists(_WORDS, min_size=1, max_size=8))
            units.append(" ".join(words))
    seps = draw(st.lists(_SEP, min_size=len(units), max_size=len(units)))
    return "".join(u + s for u, s in zip(units, seps, strict=True))


@settings(max_examples=800, deadline=None)
@given(_looping_text(), st.floats(0.0, 1.0), st.integers(1, 8))
def test_word_bound_on_fuzzed_texts(text: str, share: float, n: int) -> None:
    if not may_repeat(text, share, n):
        assert repeated_share(text, n=n)[0] <= share


def _unique(count: int, tag: str) -> list[str]:
    return [f"{tag}{i}" for i in range(count)]


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 8), st.integers(3, 12), st.integers(0, 60), st.integers(-2, 2), st.booleans())
def test_word_bound_at_the_ngram_edge(n: int, times: int, fillers: int, nudge: int, spread: bool) -> None:
    """One phrase of n distinct words repeated, the other words all distinct: the share of
    the words the phrase covers is exactly (W - V + n) / W, the bound itself."""
    phrase = " ".join(_unique(n, "p"))
    filler = _unique(fillers, "f")
    parts = [phrase] * times
    if spread:  # the fillers between the repeats, not after them
        parts = [f"{p} {f}" for p, f in zip(parts, [*filler, *[""] * times], strict=False)]
        parts += filler[times:]
    else:
        parts += filler
    text = " ".join(parts)
    words = text.split()
    exact = (len(words) - len(set(words)) + n) / len(words)
    for share in (exact, exact + nudge * 1e-3, exact - 1e-12, exact + 1e-12):
        share = min(1.0, max(0.0, share))
        if not may_repeat(text, share, n):
            assert repeated_share(text, n=n)[0] <= share


@settings(max_examples=500, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(0, 30),
    st.integers(2, 9),
    st.integers(0, 60),
    st.sampled_from([". ", "\n", "! ", "\n\n"]),
)
def test_word_bound_at_the_unit_edge(size: int, longer: int, times: int, others: int, sep: str) -> None:
    """A sentence of a few long words repeated, then a sentence of many short distinct
    words: the units' share of the characters is near what the bound allows while the
    n-gram share is far from it."""
    unit = " ".join(w + "z" * longer for w in _unique(size, "u"))
    text = sep.join([unit] * times + [" ".join(_unique(others, "o"))])
    words = text.split()
    bound = 1 - sum(map(len, set(words))) / len(text)
    for share in (bound, bound - 1e-3, bound - 0.05, bound + 1e-3, bound + 0.05):
        share = min(1.0, max(0.0, share))
        for n in (1, 4, 8):
            if not may_repeat(text, share, n):
                assert repeated_share(text, n=n)[0] <= share


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.floats(0.0, 1.0), st.integers(1, 8))
def test_word_bound_on_any_text(text: str, share: float, n: int) -> None:
    if not may_repeat(text, share, n):
        assert repeated_share(text, n=n)[0] <= share


@settings(max_examples=300, deadline=None)
@given(_looping_text(), _looping_text(), st.integers(0, 3))
def test_ft309_on_fuzzed_replies(start: str, loop: str, times: int) -> None:
    # a sound start then a loop, so that the whole turn and its tail are both judged
    reply = start + (loop * times)
    rec = _record({"messages": [{"role": "user", "content": "Go on."}, {"role": "assistant", "content": reply}]})
    for options in (FT309, (40, 1.5, 0.3, 2, 30), (100, 2.0, 0.6, 4, 50)):
        _ft309_agrees(rec, options)


def _looping_prose_reference(prose: str, min_length: int, options: tuple[float, float, int]) -> str | None:
    message = _looping_reference(prose, *options)
    if message is None and len(prose) > min_length:
        tail = _looping_reference(prose[-min_length:], *options)
        message = tail and tail.replace("repeats itself", "ends in a loop", 1)
    return message


# Words and separators that put the tail's first character inside a word, on a space of
# any kind (str.split's, beyond ASCII too) or on a table border.
_CUT_SEP = st.sampled_from([" ", "\n", "\u00a0", "\u3000", "\u2028", "\x1c", " | ", "+-", "\t"])


@settings(max_examples=800, deadline=None)
@given(_looping_text(), st.lists(st.tuples(_WORDS, _CUT_SEP), max_size=40), st.integers(1, 120))
def test_ft309_tail_words_from_the_whole_split(start: str, more: list[tuple[str, str]], min_length: int) -> None:
    """The tail judged on the words of the whole prose split once (the tail's first word
    cut where the tail starts) says what the tail split on its own says."""
    prose = start + "".join(w + s for w, s in more)
    if len(prose) < min_length:
        return
    for options in ((4.0, 0.6, 4), (1.5, 0.3, 2), (1.0, 0.1, 1)):
        assert _looping_prose(prose, min_length, *options) == _looping_prose_reference(prose, min_length, options)


def test_ft309_tail_cut_inside_a_word() -> None:
    prose = "word " * 20 + "tailword " + "ha " * 60
    for min_length in range(150, 200):
        for options in ((4.0, 0.6, 4), (1.5, 0.3, 2)):
            assert _looping_prose(prose, min_length, *options) == _looping_prose_reference(prose, min_length, options)


# ------------------------------------------------------ FT309 loops at the end of a reply


# What a reply cut off mid-unit ends with after its loop: nothing, a word, a part of one.
_CUT = st.one_of(st.just(""), _WORDS, _WORDS.map(lambda w: w[: len(w) // 2]))
# One unit a loop repeats: a few words (more than the longest unit looked for, at times)
# and a separator.
_LOOP_UNIT = st.builds(lambda w, s: " ".join(w) + s, st.lists(_WORDS, min_size=1, max_size=10), _SEP)


@settings(max_examples=800, deadline=None)
@given(_looping_text(), _LOOP_UNIT, st.integers(0, 40), _CUT, st.integers(2, 12))
@example("a the a the ", "a ", 0, "", 2)  # a text of fewer words than the filter reads
def test_end_loop_filter_on_fuzzed_texts(start: str, unit: str, times: int, cut: str, min_repeats: int) -> None:
    text = start + unit * times + cut
    if not _may_loop_at_end(text):
        assert _trailing_loop(text.split(), min_repeats) is None


def test_a_loop_cut_off_mid_unit_is_found() -> None:
    for reply in ("Sure! " + "ha " * 30 + "h", "Sure! " + "Thank you! " * 10 + "Than"):
        assert _may_loop_at_end(reply)
        assert _trailing_loop(reply.split(), 6) is not None


def test_end_loop_filter_on_real_texts() -> None:
    """The word filter holds on every reply of the real files and passes few of them."""
    texts = [text for rec in REAL_RECORDS for role, text, _ in rec.segments if role == "assistant"]
    passed = 0
    for text in texts:
        if _may_loop_at_end(text):
            passed += 1
        else:
            for min_repeats in (2, 3, 6):
                assert _trailing_loop(text.split(), min_repeats) is None
    assert passed < len(texts) / 20


@settings(max_examples=300, deadline=None)
@given(_looping_text(), _LOOP_UNIT, st.integers(4, 40), _CUT)
def test_ft309_on_fuzzed_short_loops(start: str, loop: str, times: int, cut: str) -> None:
    # short replies that end in many repeats of one unit: the loop-at-end check decides
    reply = start + loop * times + cut
    rec = _record({"messages": [{"role": "user", "content": "Go on."}, {"role": "assistant", "content": reply}]})
    for options, min_repeats in ((FT309, 6), ((40, 1.5, 0.3, 2, 30), 2), ((100, 2.0, 0.6, 4, 50), 12)):
        fast = repetition_issues(rec, *options, min_repeats)
        assert fast == repetition_issues(rec, *options, min_repeats, reference=True)


def test_real_table_rows_are_not_row_loops() -> None:
    rows = [
        line for rec in REAL_RECORDS for _, text, _ in rec.segments for line in text.split("\n") if line.count("|") >= 2
    ]
    assert rows
    assert not any(_row_loop(row) for row in rows)
    wide = "| " + " | ".join(f"col{i}" for i in range(60)) + " |"
    assert _row_loop(wide) == []  # many cells, all distinct: a wide row
    looped = "| Alice | 34 | Paris | " * 30
    cut = _row_loop(looped)
    assert cut.count(" | Alice | 34 | Paris") == 30  # one row a line: the loop of units sees them
    assert "Alice" in _without_tables("| Name | Age | City |\n| --- | --- | --- |\n" + looped)


# --------------------------------------------------------------------------- FT122


def test_ft122_on_real_files() -> None:
    passed = 0
    for rec in REAL_RECORDS:
        assert media_count_mismatch(rec) == media_count_issues(rec)
        passed += may_use_media(rec)
    assert 0 < passed < len(REAL_RECORDS) / 2  # mllm_demo.json has images; most files none


def test_ft122_on_its_fixtures() -> None:
    records = _fixtures("FT122")
    assert any(media_count_issues(rec) for rec in records)
    for rec in records:
        assert media_count_mismatch(rec) == media_count_issues(rec)


def test_ft122_edges() -> None:
    """The places the pre-filter looks: a media key of any value, parts in the prompt, in
    a reply, in the rejected reply alone."""
    user, reply = {"role": "user", "content": "hi <image>"}, {"role": "assistant", "content": "ok"}
    parts = {"role": "assistant", "content": [{"type": "image"}]}
    cases = [
        {"messages": [user, reply], "images": None},
        {"messages": [user, reply], "videos": {"x": 1}},
        {"messages": [user, reply]},
        {"messages": [user, parts]},
        {"prompt": [user], "chosen": [reply], "rejected": [parts]},
        {"prompt": [user], "chosen": [parts], "rejected": [reply]},
        {"prompt": [user], "completion": [parts], "label": True},
    ]
    reported = 0
    for data in cases:
        rec = _record(data)
        assert media_count_mismatch(rec) == media_count_issues(rec)
        reported += bool(media_count_issues(rec))
    assert reported == 5


_PART = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["image", "video", "audio", "text"])}),
    st.fixed_dictionaries({"type": st.just("image"), "image": st.just("a.jpg")}),
    st.fixed_dictionaries({"type": st.just("text"), "text": st.sampled_from(["<image>", "hi", "<audio><video>"])}),
    st.just("loose string"),
)
_CONTENT = st.one_of(st.sampled_from(["hi", "<image>", "<image><image> and <video>", "<audio>"]), st.lists(_PART))
_LIST = st.one_of(st.none(), st.just("a.jpg"), st.lists(st.just("a.jpg"), max_size=3), st.just({"x": 1}), st.just(3))


@st.composite
def _media_record(draw: st.DrawFn) -> dict[str, Any]:
    turns = [
        {"role": role, "content": draw(_CONTENT)}
        for role in draw(st.lists(st.sampled_from(["user", "assistant"]), min_size=1, max_size=4))
    ]
    data: dict[str, Any] = (
        {
            "prompt": turns[:1],
            "chosen": turns[1:] or turns,
            "rejected": [{"role": "assistant", "content": draw(_CONTENT)}],
        }
        if draw(st.booleans())
        else {"messages": turns}
    )
    for key in draw(st.lists(st.sampled_from(["images", "videos", "audios"]), unique=True)):
        data[key] = draw(_LIST)
    return data


@settings(max_examples=600, deadline=None)
@given(_media_record())
def test_ft122_on_fuzzed_records(data: dict[str, Any]) -> None:
    rec = _record(data)
    assert media_count_mismatch(rec) == media_count_issues(rec)


# ------------------------------------------------------- shared prose (FT305, FT309, FT310)


def test_shared_prose_changes_no_finding() -> None:
    """FT305, FT309 and FT310 share each reply's text without code through the record's
    memo: run together on one record, each reports what it reports on a fresh one."""
    rules = (speaker_label, degenerate_repetition, unfilled_template_variable)
    paths = [*REAL, *sorted((TESTS / "rules").glob("FT3*/*.jsonl"))]
    shared = 0
    for path in paths:
        alone = [[rule(rec) for rec in _records(path)] for rule in rules]
        records = _records(path)
        together = [[rule(rec) for rec in records] for rule in rules]
        assert together == alone
        shared += sum(1 for rec in records if rec._memo and any(k[0] == "without-code" for k in rec._memo))
    assert shared > 100


# ----------------------------------------------------------- prompt keys (FT402, FT403, FT601)


@cache
def _full_punctuation() -> dict[int, str | None]:
    """The reference table: all Basic Multilingual Plane punctuation, built up front."""
    full: dict[int, str | None] = {c: " " for c in range(0x10000) if unicodedata.category(chr(c)).startswith("P")}
    for c in "'\u2019\u02bc\u2018`":
        full[ord(c)] = None
    return full


def test_punctuation_table_filled_on_demand_is_the_full_table() -> None:
    """The translate table of loose prompt keys, filled as characters come, maps every
    character as the table of all Basic Multilingual Plane punctuation built up front."""
    text = "".join(chr(c) for c in range(0x20000) if not 0xD800 <= c < 0xE000)
    assert text.translate(_punctuation_table()) == text.translate(_full_punctuation())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_loose_bytes_of_any_text(text: str) -> None:
    expected = " ".join(unicodedata.normalize("NFKC", text).casefold().translate(_full_punctuation()).split())
    assert loose_bytes(text) == expected.encode("utf-8", "surrogatepass")


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(st.characters(max_codepoint=0x7F), max_size=200),  # the ASCII turn, keyed in one pass
        st.text(st.sampled_from([*" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f", "a", "B", "é", "\u3000", "\x85"]), max_size=60),
        st.text(max_size=200),
    ),
    st.booleans(),
)
def test_canonical_bytes_of_any_text(text: str, casefold: bool) -> None:
    """The exact-duplicate key of a turn is its NFC text, case-folded when asked, split at
    whitespace and joined by single spaces, whichever path computes it."""
    expected = unicodedata.normalize("NFC", text)
    expected = expected.casefold() if casefold else expected
    assert canonical_bytes(text, casefold=casefold) == " ".join(expected.split()).encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(max_codepoint=0x7F), max_size=200))
def test_loose_bytes_of_ascii_text(text: str) -> None:
    expected = " ".join(text.casefold().translate(_full_punctuation()).split())
    assert loose_bytes(text) == expected.encode("ascii")


def _missing_context_agrees(rec: Record, min_context_chars: int = 200) -> None:
    joined = rec.text
    if rec.format is None or "://" in joined or "www." in joined or "<" in joined or "[" in joined:
        return
    assert _cited(rec, min_context_chars) == _walk(rec, False, False, min_context_chars)


def test_ft313_early_stop_on_real_files() -> None:
    """FT313 on records without URLs or markers stops at the turn that makes the context
    long enough; the whole walk gives the same findings."""
    for rec in REAL_RECORDS:
        for size in (0, 60, 200, 2000):
            _missing_context_agrees(rec, size)


_CITING = st.sampled_from(
    [
        "According to the article, bridges rust.",
        "The passage above says little.",
        "The image shows a cat.",
        "As the given document states, yes.",
        "Here is a story. The story concludes happily.",
        "Nothing cited here.",
        "",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["system", "user", "assistant"]), st.one_of(_CITING, st.text(max_size=80))),
        max_size=6,
    ),
    st.sampled_from([0, 1, 40, 200]),
)
@example([("user", "<VIDEO>"), ("user", "<VIDEO>")], 0)  # two attachment-only inputs: two findings
def test_ft313_early_stop_on_fuzzed_conversations(turns: list[tuple[str, str]], size: int) -> None:
    rec = _record({"messages": [{"role": role, "content": text} for role, text in turns]})
    _missing_context_agrees(rec, size)
    found = missing_context(rec, min_context_chars=size) or []
    # one finding for the first reply that cites unseen context (each input that is only
    # a URL or an attachment marker is a finding of its own)
    assert sum(" cites " in f.message for f in found) <= 1


def test_ft313_early_stop_finds_a_citation() -> None:
    turns = [("user", "Summarize."), ("assistant", "Sure."), ("assistant", "The passage above says little.")]
    rec = _record({"messages": [{"role": role, "content": text} for role, text in turns]})
    found = _cited(rec, 200)
    assert found is not None
    assert "cites 'The passage above'" in found[0].message
    assert found == _walk(rec, False, False, 200)
    assert _cited(rec, 12) is None  # "Summarize." and "Sure." hold 15 characters
