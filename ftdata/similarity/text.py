"""The text a similarity method compares: normalised, for one scope of a record."""

from __future__ import annotations

import hashlib
import unicodedata

from ftdata.records import Record

SCOPES = ("prompt", "answer", "conversation")


def normalise_text(text: str, *, casefold: bool = False) -> str:
    """Unicode NFC, runs of whitespace collapsed to one space, optionally case-folded."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    text = " ".join(text.split())
    return text.casefold() if casefold else text


def scope_text(record: Record, scope: str = "conversation", *, casefold: bool = False, roles: bool = False) -> str:
    """The text of ``record`` for ``scope``: ``prompt`` (every turn before the first
    assistant reply, system included; for Alpaca the instruction and input), ``answer``
    (the assistant turns) or ``conversation`` (all turns). With ``roles`` each turn is
    prefixed by its role, so that the same words said by another speaker differ."""
    parts = []
    if scope == "prompt":
        turns = [(m.role, m.text) for m in record.prompt_messages()]
    elif scope == "answer":
        turns = [(m.role, m.text) for m in record.messages if m.role == "assistant"]
    elif scope == "conversation":
        turns = [(m.role, m.text) for m in record.messages]
    else:
        raise ValueError(f"unknown scope {scope!r} (expected one of {', '.join(SCOPES)})")
    for role, text in turns:
        text = normalise_text(text or "", casefold=casefold)
        parts.append(f"{role}\x1f{text}" if roles else text)
    return ("\x1e" if roles else "\n").join(parts)


def digest(text: str) -> int:
    """A stable 63-bit hash of ``text`` (not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big") >> 1
