"""The C extension ``ftdata._native`` and its pure-Python definitions in ``ftdata.similarity.native``
agree: on arbitrary text (every Unicode kind, lone surrogates, whitespace of every kind,
long words, empty strings), on every turn of the real files, and in whole ``ftdata lint``
runs with and without ``FTDATA_PURE_PYTHON=1``.

When the extension is not built (no C compiler where ftdata was installed) there is only
the Python path and nothing to compare: the module is skipped and says so. ``make test``
installs ftdata with ``pip install -e``, which builds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ftdata.curation.dedup import read_records
from ftdata.records import Record
from ftdata.rules.replies import _MARKUP_CHARS, prose_of
from ftdata.similarity import native
from ftdata.similarity.text import _ASCII_APOSTROPHES, _ASCII_LOOSE, _WS_BYTES, _WS_CASEFOLD, canonical_bytes
from tests.conftest import ROOT, TESTS

try:
    from ftdata import _native
except ImportError:
    pytest.skip(
        "ftdata._native is not built (no C compiler where ftdata was installed), so only the pure-Python "
        "path exists and the native and Python statistics cannot be compared; `pip install -e .` builds it",
        allow_module_level=True,
    )

REAL = sorted((TESTS / "data" / "real").rglob("*.json*"))
#: The whitespace str.split() knows, and characters that look like it but are not.
SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace()]
NOT_SPACES = ["\u200b", "\u2060", "\ufeff", "\x00", "\x1b", "\u180e"]
STOPS = [".", "!", "?", ". ", "! ", "?\t", ".  \t ", "\n", "\n\n", "\r\n"]

_CHARS = st.one_of(
    st.characters(),  # any code point but surrogates
    st.integers(0xD800, 0xDFFF).map(chr),  # lone surrogates, which a str may hold
    st.sampled_from(SPACES + NOT_SPACES + STOPS),
    st.sampled_from(["a", "b", "ab", "abc", "é", "ÿ", "漢", "😀", "-", "=", "|", "0"]),
)
_PIECES = st.one_of(
    _CHARS,
    st.builds(lambda c, k: c * k, st.sampled_from(["a", "-", "=", "漢", "😀", "ÿ", "0", "."]), st.integers(1, 300)),
    st.text(st.characters(max_codepoint=0x7F), min_size=40, max_size=400),  # long ASCII words
)
#: Arbitrary text of every PEP 393 kind, biased towards repeats, runs and unit breaks.
TEXT = st.lists(_PIECES, max_size=60).map("".join)
ASCII = st.text(st.characters(max_codepoint=0x7F), max_size=300)


def test_the_extension_is_the_path_in_use() -> None:
    assert native.NATIVE
    assert native.word_stats is _native.word_stats


@settings(max_examples=1500, deadline=None)
@given(TEXT, st.integers(-2, 40))
@example("", 4)
@example(" \t\n\x1c\x85\xa0\u3000", 4)
@example("a" * 5000, 1)
@example("\ud800 \udfff \ud800", 2)
def test_word_stats_on_any_text(text: str, n: int) -> None:
    assert _native.word_stats(text, n) == native.py_word_stats(text, n)


@settings(max_examples=1500, deadline=None)
@given(TEXT, st.sampled_from([-1, 0, 1, 2, 8, 64, 65, 200]))
@example("", 8)
@example("abcd. abcd. abcd.\tabcd.\nabcd", 8)
@example("Stop!  \t Stop!\n\n Stop! ", 1)
def test_looped_units_on_any_text(text: str, period: int) -> None:
    assert _native.looped_units(text, period) == native.py_looped_units(text, period)


@settings(max_examples=1500, deadline=None)
@given(TEXT, st.sampled_from([-5, 0, 1, 8, 31, 32, 50, 75, 10_000_000]), st.sampled_from([_MARKUP_CHARS, "", "a"]))
@example("x" * 32, 31, _MARKUP_CHARS)
@example("-" * 201, 50, _MARKUP_CHARS)
@example("-" * 200, 50, _MARKUP_CHARS)
@example("\u3000" * 100, 1, _MARKUP_CHARS)
def test_char_run_on_any_text(text: str, limit: int, markup: str) -> None:
    assert _native.char_run(text, limit, markup) == native.py_char_run(text, limit, markup)


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(ASCII, TEXT),
    st.one_of(st.sampled_from([_WS_BYTES, _WS_CASEFOLD, _ASCII_LOOSE]), st.binary(min_size=256, max_size=256)),
    st.one_of(st.just(b""), st.just(_ASCII_APOSTROPHES), st.binary(max_size=6)),
)
@example("", _WS_BYTES, b"")
@example("  A\t\x1c b\n", _WS_CASEFOLD, b"")
@example("Don't  stop.", _ASCII_LOOSE, _ASCII_APOSTROPHES)
def test_ascii_words_on_any_text(text: str, table: bytes, delete: bytes) -> None:
    assert _native.ascii_words(text, table, delete) == native.py_ascii_words(text, table, delete)


#: Texts that loop, as a whole, at their end or in units, for the loop bounds to say True to.
_LOOPING = st.one_of(
    TEXT,
    st.builds(
        lambda head, unit, k: head + unit * k,
        TEXT,
        st.sampled_from(["ha ", "I am sorry. ", "漢字 ", "😀 x\n"]),
        st.integers(1, 200),
    ),
)


@settings(max_examples=1500, deadline=None)
@given(_LOOPING, st.integers(-5, 2000), st.sampled_from([1, 2, 4, 8, 32]), st.sampled_from([0.0, 0.3, 0.6, 0.9, 1.0]))
@example("", 0, 4, 0.6)
@example("I am sorry. " * 60, 420, 4, 0.6)
@example("Here is a sound start. " * 3 + "Loop! " * 90, 300, 4, 0.6)
@example("a b " * 6, 23, 1, 1.0)
def test_may_loop_on_any_text(text: str, cut: int, n: int, share: float) -> None:
    assert _native.may_loop(text, cut, n, share) == native.py_may_loop(text, cut, n, share)


@settings(max_examples=1500, deadline=None)
@given(_LOOPING, st.sampled_from([1, 2, 3, 8, 64]))
@example("", 8)
@example("Sure! ha ha ha ha ha ha ha", 8)
@example("x" * 300 + " a b a b", 8)
@example(" ".join(["w" * 40] * 12), 8)
@example("a b c a b c a\u3000b \x85", 3)
def test_may_loop_at_end_on_any_text(text: str, period: int) -> None:
    assert _native.may_loop_at_end(text, period) == native.py_may_loop_at_end(text, period)


#: Every control character FT301 reports, and the characters around each range.
CONTROLS = [chr(c) for c in (*range(0x22), *range(0x7E, 0xA1), 0xFEFE, 0xFEFF, 0xFF00)]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.sampled_from(CONTROLS)), max_size=40).map("".join))
@example("")
@example("\t\n\r")
@example("plain \x7f")
@example("漢字\ufeff")
@example("😀\x9f")
def test_control_at_on_any_text(text: str) -> None:
    assert _native.control_at(text) == native.py_control_at(text)


#: The characters of the mojibake pairs and their neighbours.
HINTS = [chr(c) for c in (*range(0x7E, 0x100), *range(0x150, 0x200), *range(0x2C0, 0x2E0), *range(0x2010, 0x2130))]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.sampled_from(HINTS)), max_size=40).map("".join))
@example("")
@example("Ã")
@example("â€™")
@example("ô\u2122 😀")
@example("\u00c1\u0080 \u00f5\u00a0")
def test_mojibake_hint_on_any_text(text: str) -> None:
    assert _native.mojibake_hint(text) == native.py_mojibake_hint(text)


@settings(max_examples=1500, deadline=None)
@given(TEXT)
@example("")
@example(" \t\x1c a\u3000b\x85 ")
@example("\ud800 \udfff 😀 ÿ 漢")
def test_utf8_words_on_any_text(text: str) -> None:
    assert _native.utf8_words(text) == native.py_utf8_words(text)


@settings(max_examples=500, deadline=None)
@given(st.one_of(ASCII, TEXT), st.booleans())
@example("Cafe\u0301  au\u00a0LAIT ", True)
def test_canonical_bytes_is_its_definition(text: str, casefold: bool) -> None:
    """The text key in use (the extension's, here) is NFC, case-folded when asked, and the
    words joined by single spaces, as UTF-8."""
    expected = unicodedata.normalize("NFC", text)
    expected = expected.casefold() if casefold else expected
    assert canonical_bytes(text, casefold=casefold) == " ".join(expected.split()).encode("utf-8", "surrogatepass")


def test_bad_arguments_raise_and_never_crash() -> None:
    with pytest.raises(TypeError):
        _native.word_stats(b"bytes", 4)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _native.looped_units("text")  # type: ignore[call-arg]
    with pytest.raises(OverflowError):
        _native.char_run("text", 10**30, "")
    with pytest.raises(ValueError, match="256 bytes"):
        _native.ascii_words("text", b"short", b"")
    with pytest.raises(TypeError):
        _native.ascii_words("text", _WS_BYTES, "not bytes")  # type: ignore[arg-type]
    for n, share in ((0, 0.5), (10**6 + 1, 0.5), (4, -0.1), (4, 1.5), (4, float("nan"))):
        for may_loop in (_native.may_loop, native.py_may_loop):
            with pytest.raises(ValueError, match="max_share"):
                may_loop("text", 2, n, share)
    with pytest.raises(OverflowError):
        _native.may_loop("text", 10**30, 4, 0.5)
    with pytest.raises(TypeError):
        _native.may_loop("text", 2, 4, "0.5")  # type: ignore[arg-type]
    for period in (0, 65, -1):
        for at_end in (_native.may_loop_at_end, native.py_may_loop_at_end):
            with pytest.raises(ValueError, match="period"):
                at_end("a b a b", period)
    with pytest.raises(TypeError):
        _native.may_loop_at_end(None, 8)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _native.control_at(b"\x00")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _native.utf8_words(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _native.mojibake_hint(None)  # type: ignore[arg-type]


def _records(path: Path) -> list[Record]:
    return [rec for rec in read_records(path, None, None) if type(rec.data) is dict]


def test_every_turn_of_the_real_files() -> None:
    """Each turn, its prose without code and its last 300 characters, as FT309 reads them."""
    seen = 0
    for path in REAL:
        for rec in _records(path):
            for _, text, where in rec.segments:
                for piece in {text, prose_of(rec, text, where), text[-300:]}:
                    for n in (2, 4, 8):
                        assert _native.word_stats(piece, n) == native.py_word_stats(piece, n)
                    assert _native.looped_units(piece, 8) == native.py_looped_units(piece, 8)
                    for limit in (8, 50):
                        assert _native.char_run(piece, limit, _MARKUP_CHARS) == native.py_char_run(
                            piece, limit, _MARKUP_CHARS
                        )
                    for table, delete in ((_WS_BYTES, b""), (_WS_CASEFOLD, b""), (_ASCII_LOOSE, _ASCII_APOSTROPHES)):
                        assert _native.ascii_words(piece, table, delete) == native.py_ascii_words(piece, table, delete)
                    for cut in (0, len(piece) - 300, len(piece) // 2):
                        assert _native.may_loop(piece, cut, 4, 0.6) == native.py_may_loop(piece, cut, 4, 0.6)
                    assert _native.may_loop_at_end(piece, 8) == native.py_may_loop_at_end(piece, 8)
                    assert _native.control_at(piece) == native.py_control_at(piece)
                    assert _native.utf8_words(piece) == native.py_utf8_words(piece)
                    assert _native.mojibake_hint(piece) == native.py_mojibake_hint(piece)
                seen += 1
    assert seen > 10_000


def _lint(paths: list[Path], *args: str, pure: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1", "FTDATA_NO_CACHE": "1"}
    env.pop("FTDATA_PURE_PYTHON", None)
    if pure:
        env["FTDATA_PURE_PYTHON"] = "1"
    cmd = [sys.executable, "-m", "ftdata", "lint", *map(str, paths), "--isolated", "--output-format", "json", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8")


def _corpus(path: Path) -> Path:
    """Replies that loop (on a phrase, a sentence, at the end, in one character), replies
    that almost do, and plain ones, in ASCII and beyond, as one JSONL file."""
    phrase = "I am sorry. " * 60
    replies = [
        phrase,
        "Here is the answer you asked for, in full detail. " + "and then again " * 80,
        "A sound start with real words and a real answer. " * 3 + "Loop! " * 90,
        "0" * 400,
        "-" * 250 + "\n" + "Real text under a rule of dashes, long enough to be judged.",
        "Ça répète: répète répète répète " * 30 + "漢字 " * 50,
        "| a | b |\n|---|---|\n" + "| x | y |\n" * 60,
        " ".join(f"word{k}" for k in range(200)),
        "Thank you!\u3000Thank you!\u2028Thank you!\x85" * 40,
    ]
    lines = []
    for k, reply in enumerate(replies * 2):
        prompt = f"Question {k // len(replies)}: What is It?" if k % 3 else "what is it"
        lines.append(
            json.dumps({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]})
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


#: FT312 (language identification) is left out of the full selection: it costs more than
#: the rest together and reads no statistic of the extension.
SELECTIONS = [(), ("--select", "ALL", "--ignore", "FT312,FT405,FT501,FT502,FT503,FT504")]


@pytest.mark.parametrize("args", SELECTIONS, ids=["default", "all"])
def test_lint_output_is_byte_identical_on_both_paths(tmp_path: Path, args: tuple[str, ...]) -> None:
    # every real file on the default selection; the full one, slower, on one folder of them
    real = TESTS / "data" / "real" / ("llamafactory-0.9.5" if args else "")
    paths = [_corpus(tmp_path / "loops.jsonl"), real]
    fast, pure = _lint(paths, *args, pure=False), _lint(paths, *args, pure=True)
    assert fast.returncode == 1, fast.stderr
    assert (fast.returncode, fast.stdout) == (pure.returncode, pure.stdout)
    found = {finding["code"] for finding in json.loads(fast.stdout)}
    assert {"FT309", "FT401", "FT402"} <= found


def test_pure_python_is_forced_by_the_environment() -> None:
    code = "import ftdata.similarity.native as n; print(n.NATIVE)"
    for value, expected in (("1", "False"), ("", "True"), ("0", "True")):
        env = {**os.environ, "FTDATA_PURE_PYTHON": value}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
        assert out.stdout.strip() == expected, value


@pytest.mark.slow
def test_prefilter_properties_hold_on_the_python_path() -> None:
    """The pre-filter and fast-path properties, which this run checks on the native path,
    on the pure-Python path as well."""
    files = ["tests/test_rule_prefilters.py", "tests/test_fast_paths.py", "tests/test_lint_fast.py"]
    env = {**os.environ, "FTDATA_PURE_PYTHON": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:]
