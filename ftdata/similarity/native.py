"""Text statistics for FT309's pre-filters and the ASCII text keys of the duplicate rules,
from the optional C extension ``ftdata._native`` when it is built and in pure Python
otherwise (same values; the ``py_`` functions here define them).

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


def _pure() -> bool:
    return os.environ.get("FTDATA_PURE_PYTHON", "").strip().lower() in ("1", "true", "yes", "on")


word_stats: Callable[[str, int], tuple[int, int, int, int]] = py_word_stats
looped_units: Callable[[str, int], tuple[int, int]] = py_looped_units
char_run: Callable[[str, int, str], tuple[str, int] | None] = py_char_run
ascii_words: Callable[[str, bytes, bytes], bytes | None] = py_ascii_words
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
        NATIVE = True
