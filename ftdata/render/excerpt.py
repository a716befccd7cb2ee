"""Source lines for excerpts, read once per file and only for the lines asked for."""

from __future__ import annotations

from collections.abc import Iterable


def read_lines(path: str, wanted: Iterable[int]) -> dict[int, str]:
    """{line number: text} for the wanted 1-based lines of ``path`` (empty if unreadable)."""
    todo = set(wanted)
    out: dict[int, str] = {}
    if not todo:
        return out
    last = max(todo)
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if number in todo:
                    out[number] = raw.rstrip(b"\r\n").decode("utf-8", "replace").removeprefix("\ufeff")
                if number >= last:
                    break
    except (OSError, ValueError):  # ValueError: a name no file can have (a NUL, a lone surrogate)
        return {}
    return out


def window(text: str, column: int, width: int = 100) -> tuple[str, int]:
    """A slice of ``text`` around the 1-based ``column`` and the caret's position in it."""
    at = max(0, column - 1)
    if len(text) <= width:
        return text, at
    start = max(0, min(at - width // 3, len(text) - width))
    piece = text[start : start + width]
    caret = at - start
    if start > 0:
        piece = "…" + piece
        caret += 1
    if start + width < len(text):
        piece += "…"
    return piece, caret
