"""The text a similarity method compares: normalised, for one scope of a record."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from ftdata.records import Record
from ftdata.similarity import native

SCOPES = ("prompt", "answer", "conversation")


def normalise_text(text: str, *, casefold: bool = False) -> str:
    """Unicode NFC, runs of whitespace collapsed to one space, optionally case-folded."""
    return canonical_bytes(text, casefold=casefold).decode("utf-8", "surrogatepass")


def normalised_turns(record: Record, *, casefold: bool = False) -> list[str]:
    """Every turn's text, normalised once per record and shared by the rules that need it."""
    return record.memo(
        ("turns", casefold), lambda: [normalise_text(m.text or "", casefold=casefold) for m in record.messages]
    )


def prompt_turns(record: Record) -> list[int]:
    """Positions of the prompt's turns: before the first assistant reply, system excluded
    (all turns when there is no reply)."""
    messages = record.messages
    end = next((k for k, m in enumerate(messages) if m.role == "assistant"), len(messages))
    return [k for k in range(end) if messages[k].role != "system"]


def scope_turns(record: Record, scope: str) -> list[int]:
    """Positions of the turns of ``scope`` (see :func:`scope_text`)."""
    messages = record.messages
    if scope == "prompt":
        return prompt_turns(record)
    if scope == "answer":
        return [k for k, m in enumerate(messages) if m.role == "assistant"]
    if scope == "conversation":
        return list(range(len(messages)))
    raise ValueError(f"unknown scope {scope!r} (expected one of {', '.join(SCOPES)})")


def scope_bytes(record: Record, scope: str = "conversation", *, casefold: bool = False) -> bytes:
    """The UTF-8 bytes of ``scope_text(record, scope, casefold=casefold)``, made without
    decoding each turn and encoding the text again (what shingling reads)."""
    messages = record.messages
    return b"\n".join(canonical_bytes(messages[k].text or "", casefold=casefold) for k in scope_turns(record, scope))


def scope_text(record: Record, scope: str = "conversation", *, casefold: bool = False, roles: bool = False) -> str:
    """The text of ``record`` for ``scope``: ``prompt`` (the turns before the first assistant
    reply, without the system prompt, which is shared by design; for Alpaca the
    instruction and input), ``answer`` (the assistant turns) or ``conversation`` (all
    turns). With ``roles`` each turn is
    prefixed by its role, so that the same words said by another speaker differ."""
    chosen = scope_turns(record, scope)
    texts = normalised_turns(record, casefold=casefold)
    messages = record.messages
    if roles:
        return "\x1e".join(f"{messages[k].role}\x1f{texts[k]}" for k in chosen)
    return "\n".join(texts[k] for k in chosen)


_WS_BYTES = bytes.maketrans(b"\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f", b"         ")
_WS_CASEFOLD = bytes.maketrans(
    b"\t\n\r\x0b\x0c\x1c\x1d\x1e\x1fABCDEFGHIJKLMNOPQRSTUVWXYZ", b"         abcdefghijklmnopqrstuvwxyz"
)
# UTF-8 of the whitespace str.split() knows beyond ASCII: U+0085, U+00A0, U+1680,
# U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
_UNICODE_SPACE = re.compile(rb"\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80")


def canonical_bytes(text: str, *, casefold: bool = False) -> bytes:
    """The UTF-8 bytes of the normalised text: NFC, whitespace runs (as ``str.split`` knows
    whitespace) collapsed to one space, stripped, optionally case-folded. Computed on
    bytes, without splitting the text into words, since exact-duplicate keys need only
    the bytes."""
    if native.NATIVE:
        # ASCII text (the common turn) in one pass in C: the translation below, collapsed
        found = native.ascii_words(text, _WS_CASEFOLD if casefold else _WS_BYTES, b"")
        if found is not None:
            return found
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        return native.utf8_words(text.casefold() if casefold else text)  # split, joined and encoded in C
    if text.isascii():
        data = text.encode("ascii")
    else:
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        if casefold:
            text = text.casefold()
            casefold = False
        data = text.encode("utf-8", "surrogatepass")
        if _UNICODE_SPACE.search(data):  # whitespace beyond ASCII: let str.split find it all
            return " ".join(text.split()).encode("utf-8", "surrogatepass")
    data = data.translate(_WS_BYTES)
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    data = data.strip(b" ")
    return data.lower() if casefold else data


#: Apostrophes inside words are dropped ("don't" and "dont" are one word); every other
#: punctuation mark separates words, so "end.Start" and "end. Start" read the same.
_APOSTROPHES = "'\u2019\u02bc\u2018`"


class _Punctuation(dict[int, "str | int | None"]):
    """The ``str.translate`` table of :func:`loose_bytes`: Unicode punctuation (categories
    P*) of the Basic Multilingual Plane to a space, apostrophes to nothing, every other
    character to itself. Filled character by character as texts ask for them: reading
    the category of all 65,536 characters up front costs a tenth of a second in every
    process, more than the prompts of a small file."""

    def __missing__(self, c: int) -> str | int:
        value: str | int = " " if c < 0x10000 and unicodedata.category(chr(c)).startswith("P") else c
        self[c] = value
        return value


_PUNCTUATION = _Punctuation({ord(c): None for c in _APOSTROPHES})


def _punctuation_table() -> dict[int, str | int | None]:
    """The punctuation table (see :class:`_Punctuation`)."""
    return _PUNCTUATION


_ASCII_PUNCTUATION = "".join(
    chr(c) for c in range(128) if unicodedata.category(chr(c)).startswith("P") and chr(c) not in _APOSTROPHES
)
# \x1c-\x1f are whitespace to str.split, not to bytes.split: spaces here.
_ASCII_LOOSE = bytes.maketrans(
    (_ASCII_PUNCTUATION + "\x1c\x1d\x1e\x1fABCDEFGHIJKLMNOPQRSTUVWXYZ").encode(),
    (" " * (len(_ASCII_PUNCTUATION) + 4) + "abcdefghijklmnopqrstuvwxyz").encode(),
)
_ASCII_APOSTROPHES = "".join(c for c in _APOSTROPHES if c.isascii()).encode()


def loose_bytes(text: str) -> bytes:
    """The UTF-8 bytes of ``text`` as a prompt key compares it: NFKC, case-folded,
    punctuation removed and whitespace collapsed, so that "What is 2+2?" and "what is
    2+2" are one prompt. Symbols (``+``, ``=``, ``<``) and digits are kept: they change
    what is asked."""
    if native.NATIVE:
        found = native.ascii_words(text, _ASCII_LOOSE, _ASCII_APOSTROPHES)
        if found is not None:
            return found
    elif text.isascii():  # the common prompt: a byte table does it all
        return b" ".join(text.encode("ascii").translate(_ASCII_LOOSE, _ASCII_APOSTROPHES).split())
    text = unicodedata.normalize("NFKC", text).casefold().translate(_punctuation_table())
    return " ".join(text.split()).encode("utf-8", "surrogatepass")


def turn_key(record: Record, *, casefold: bool = False, loose: bool = False) -> list[bytes]:
    """Each turn as role + canonical text bytes (``loose_bytes`` with ``loose``),
    computed once per record."""
    if loose:
        return record.memo(
            "turn-bytes-loose", lambda: [m.role.encode() + b"\x1f" + loose_bytes(m.text or "") for m in record.messages]
        )
    return record.memo(
        ("turn-bytes", casefold),
        lambda: [m.role.encode() + b"\x1f" + canonical_bytes(m.text or "", casefold=casefold) for m in record.messages],
    )


def digest_bytes(data: bytes) -> int:
    """A stable 63-bit hash of ``data``."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") >> 1


def digest(text: str) -> int:
    """A stable 63-bit hash of ``text`` (not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big") >> 1
