"""Text statistics for FT309's pre-filters, FT301's search for control characters, FT311's
for a hint of mojibake, and the text keys of the duplicate rules, from the optional C extension ``ftdata._native``
when it is built and in pure Python otherwise (same values; the ``py_`` functions here
define them).

``FTDATA_PURE_PYTHON=1`` in the environment forces the Python path; :data:`NATIVE` says
which path this process uses.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from heapq import nlargest


def py_word_stats(text: str, n: int) -> tuple[int, int, int, int]:
    """``(words, distinct, top, chars)`` of ``text.split()``: the number of words, of
    distinct words, the ``n`` largest word counts added up, and the characters of the
    distinct words added up."""
    counts = Counter(text.split())
    return counts.total(), len(counts), sum(nlargest(n, counts.values())), len("".join(counts))


def py_units(text: str) -> list[str]:
    """The sentences and lines of ``text``: cut after ``.``, ``!`` or ``?`` followed by
    spaces or tabs, and at line breaks; stripped; empty ones left out."""
    # the spaces after a stop become a line break, then lines are split: several times
    # faster than a split at a lookbehind
    units = [u.strip() for u in _STOP_SPACES.sub(_stop_line, text).split("\n")]
    return [u for u in units if u]


_STOP_SPACES = re.compile(r"[.!?][ \t]+")


def _stop_line(m: re.Match[str]) -> str:
    return m.group()[0] + "\n"


def py_looped_units(text: str, period: int) -> tuple[int, int]:
    """``(total, looped)`` of :func:`py_units`: the characters of the units added up, and
    those of the units longer than 3 characters equal to one of the ``period`` before them."""
    units = py_units(text)
    looped = [u for i, u in enumerate(units) if len(u) > 3 and u in units[max(0, i - period) : i]]
    return len("".join(units)), len("".join(looped))


def py_char_run(text: str, limit: int, markup: str) -> tuple[str, int] | None:
    """The first maximal run of one non-space character, 32 long or more, longer than
    ``limit`` (``4 * limit`` for a character of ``markup``), as (character, length)."""
    for m in _RUN.finditer(text):
        ch, n = m.group(1), len(m.group())
        if n > (4 * limit if ch in markup else limit):
            return ch, n
    return None


_RUN = re.compile(r"(\S)\1{31,}")


def py_ascii_words(text: str, table: bytes, delete: bytes) -> bytes | None:
    """``b" ".join(text.encode("ascii").translate(table, delete).split())``: the ASCII
    bytes of ``text`` mapped by ``table``, without ``delete``, split at whitespace and
    joined by single spaces; None when ``text`` is not ASCII."""
    if not text.isascii():
        return None
    return b" ".join(text.encode("ascii").translate(table, delete).split())


def py_may_loop(text: str, cut: int, n: int, max_share: float) -> tuple[bool, bool]:
    """``(whole, tail)``: whether ``text``, and ``text[cut:]`` when ``0 < cut < len(text)``,
    may repeat itself by more than ``max_share`` (FT309's bounds, from :func:`py_word_stats`
    and :func:`py_looped_units`; False is certain, True asks for the exact measure).
    ``n`` (the n-gram size) is from 1 to 1,000,000 and ``max_share`` from 0 to 1."""
    if not (1 <= n <= 1_000_000 and 0.0 <= max_share <= 1.0):
        raise ValueError("may_loop() expects n from 1 to 1,000,000 and max_share from 0 to 1")
    tail = 0 < cut < len(text) and _may_repeat(text[cut:], n, max_share)
    return _may_repeat(text, n, max_share), tail


def _may_repeat(text: str, n: int, max_share: float) -> bool:
    """The n-gram bounds (the words of the most repeated n-gram are occurrences of at most
    n distinct words), then the unit bound (the first occurrence of each distinct word is
    in a unit that repeats none before it) and, when that does not rule a loop out, the
    units' share itself."""
    words, distinct, top, chars = py_word_stats(text, n)
    if words < 3 * n:
        return False
    limit = max_share * words
    if words - distinct + n + 1 > limit and top + 1 > limit:
        return True
    if chars < (1.0 - max_share) * len(text) + 1:
        total, looped = py_looped_units(text, 8)
        return looped / (total or 1) > max_share
    return False


def py_may_loop_at_end(text: str, period: int) -> bool:
    """False when the last ``period + 3`` words of ``text`` cannot end in a loop of one to
    ``period`` words: the word before the last must occur among the ``period`` words before
    it, and some unit of ``p`` words must repeat its last two words ``p`` back, at the last
    word or at the one before. ``period`` is from 1 to 64."""
    if not 1 <= period <= 64:
        raise ValueError("may_loop_at_end() expects a period from 1 to 64")
    count = period + 3
    # the last words, from the end of the text alone as a rule (text.split() of a long
    # reply costs far more)
    words = text[-_TAIL:].rsplit(None, count)
    if len(words) <= count and len(text) > _TAIL:
        words = text.rsplit(None, count)  # long words: the tail holds too few of them
    if len(words) > count:
        words = words[1:]  # [0] is the rest of the text, or part of a word
    if len(words) < 3 or words[-2] not in words[max(0, len(words) - 2 - period) : -2]:
        return False
    last = len(words) - 1
    for end in (last, last - 1):
        for p in range(1, min(period, end - 1) + 1):
            if words[end] == words[end - p] and words[end - 1] == words[end - 1 - p]:
                return True
    return False


# Characters of a reply's end that hold its last dozen words, as a rule.
_TAIL = 240


#: The control characters FT301 reports: C0 but tab, newline and carriage return, DEL, C1
#: and a stray byte-order mark.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")
_NOT_C0 = bytes(b for b in range(256) if not (b < 0x20 or b == 0x7F))


def py_control_at(text: str) -> int:
    """The index of the first :data:`CONTROL` character of ``text``, -1 when there is none."""
    # ASCII text holds only C0 controls and DEL: deleting every other byte leaves them,
    # a C loop far cheaper than the search
    if text.isascii() and not text.encode("ascii").translate(None, _NOT_C0).translate(None, b"\t\n\r"):
        return -1
    m = CONTROL.search(text)
    return -1 if m is None else m.start()


# UTF-8 read as Latin-1 or Windows-1252 turns a lead byte (0xC2-0xF4) into "Â".."ô" and
# the continuation bytes (0x80-0xBF) into C1 controls, Latin-1 symbols or the
# Windows-1252 punctuation of 0x80-0x9F.
MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)


def py_mojibake_hint(text: str) -> bool:
    """Whether ``text`` holds a pair of characters of :data:`MOJIBAKE_HINT`: a lead byte
    of UTF-8 read as Latin-1, then what a continuation byte reads as."""
    return MOJIBAKE_HINT.search(text) is not None


def py_utf8_words(text: str) -> bytes:
    """``" ".join(text.split())`` as UTF-8 (lone surrogates as ``surrogatepass`` writes
    them): the words of ``text`` joined by single spaces."""
    return " ".join(text.split()).encode("utf-8", "surrogatepass")


def _pure() -> bool:
    return os.environ.get("FTDATA_PURE_PYTHON", "").strip().lower() in ("1", "true", "yes", "on")


word_stats: Callable[[str, int], tuple[int, int, int, int]] = py_word_stats
looped_units: Callable[[str, int], tuple[int, int]] = py_looped_units
char_run: Callable[[str, int, str], tuple[str, int] | None] = py_char_run
ascii_words: Callable[[str, bytes, bytes], bytes | None] = py_ascii_words
may_loop: Callable[[str, int, int, float], tuple[bool, bool]] = py_may_loop
may_loop_at_end: Callable[[str, int], bool] = py_may_loop_at_end
control_at: Callable[[str], int] = py_control_at
utf8_words: Callable[[str], bytes] = py_utf8_words
mojibake_hint: Callable[[str], bool] = py_mojibake_hint
#: True when this process uses the C extension.
NATIVE = False

if not _pure():
    try:
        import ftdata._native as _native
    except ImportError:  # not built (no compiler where ftdata was installed): the Python path
        pass
    else:
        word_stats = _native.word_stats
        looped_units = _native.looped_units
        char_run = _native.char_run
        ascii_words = _native.ascii_words
        may_loop = _native.may_loop
        may_loop_at_end = _native.may_loop_at_end
        control_at = _native.control_at
        utf8_words = _native.utf8_words
        mojibake_hint = _native.mojibake_hint
        NATIVE = True
