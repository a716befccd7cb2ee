"""Text from a dataset made inert before it reaches a terminal, a CI log or a page.

Record text, role names and file names are data: printed raw, a newline in them could start
a GitHub workflow command (``::error::``), an ANSI escape could recolour or rewrite the
terminal, a bidirectional override could hide what a line says, and a lone surrogate could
not even be encoded. :func:`visible` is the one escaping function every text renderer uses;
the data formats (JSON, SARIF) keep text exact and rely on JSON escaping instead.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL, the Unicode line and paragraph separators, the bidirectional
# controls (which reorder what a reader sees) and surrogates (which cannot be encoded).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}\ud800-\udfff]")
# The same, but keeping tabs and line breaks, for places that show text on several lines.
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029{_BIDI}\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Prefixes that CI systems read as commands when a log line starts with them ("::", "##"):
# one character is enough, since renderers put ``:`` after the name (``:`` + ``:1:1``).
_COMMAND_STARTS = (":", "#")


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object, *, keep_lines: bool = False) -> str:
    """``text`` with every control character, escape, line separator, bidirectional
    control and surrogate shown as a visible escape (``\\n``, ``\\x1b``, ``\\u2028``), so
    it prints on one line and means nothing to a terminal. With ``keep_lines`` tabs and
    line breaks stay (for text shown as a block, such as a system prompt on a page)."""
    s = text if type(text) is str else str(text)
    pattern = _UNSAFE_KEEP_LINES if keep_lines else _UNSAFE
    return pattern.sub(_escape, s) if pattern.search(s) else s


def visible_path(path: object) -> str:
    """A file name made :func:`visible`, with ``./`` put before a relative name that
    would start a line with a CI workflow command (a file named ``::error::x.jsonl``, or
    ``:``, whose ``path:line`` location reads ``::1:1``)."""
    shown = visible(path)
    return "./" + shown if shown.startswith(_COMMAND_STARTS) else shown


def shift(text: str, column: int) -> int:
    """Where the 0-based ``column`` of ``text`` lands once ``text`` is made
    :func:`visible` (escapes are wider than the characters they stand for)."""
    return len(visible(text[:column]))


__all__ = ["shift", "visible", "visible_path"]
