"""Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer,
Myanmar, Tibetan): their characters are the tokens that word shingles and word overlaps
compare, since splitting such text at spaces gives whole sentences as single "words".

The decision is per text and cheap: ASCII text is never scanned, other text is searched
once for a character of those scripts. Korean is written with spaces and is left to the
word tokeniser."""

from __future__ import annotations

import re

#: Characters of the scripts written without spaces between words.
SPACELESS_CHARS = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3005-\u3007\u3021-\u3029\u3031-\u3035\u303b\u303c"  # CJK marks and numerals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u31f0-\u31ff"  # Katakana extension
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0003134f"  # CJK extensions B-G
)
_SPACELESS = re.compile(f"[{SPACELESS_CHARS}]")
_SPACELESS_RUN = re.compile(f"([{SPACELESS_CHARS}])")
#: A word: one character of a spaceless script, or a run of other word characters.
_TOKEN = re.compile(f"[{SPACELESS_CHARS}]|[^\\W{SPACELESS_CHARS}]+")


def has_spaceless(text: str) -> bool:
    """Whether ``text`` holds a character of a script written without spaces."""
    return not text.isascii() and _SPACELESS.search(text) is not None


def spaced(text: str) -> str:
    """``text`` with a space around each character of a spaceless script, so that a
    tokeniser splitting at spaces sees those characters as words; other text is returned
    unchanged (the same object)."""
    if not has_spaceless(text):
        return text
    return _SPACELESS_RUN.sub(r" \1 ", text)


def word_tokens(text: str) -> list[str]:
    """The words of ``text`` (runs of word characters), each character of a spaceless
    script being a word of its own."""
    return _TOKEN.findall(text)


__all__ = ["SPACELESS_CHARS", "has_spaceless", "spaced", "word_tokens"]
