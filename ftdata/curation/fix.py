"""Safe fixes: byte order mark, CRLF endings, blank lines, the final newline, NFC text and
whitespace around role names. Nothing else is ever rewritten, so a fix cannot change what
a record means; running it twice changes nothing the second time.

Only files that read as UTF-8 JSON Lines or JSON are touched: a compressed file, a UTF-16
or UTF-32 file or any other bytes that are not UTF-8 are left exactly as they are (the
lint findings say what is wrong with them), because a newline appended or a byte removed
would corrupt them.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ftdata import io, jsonstrict
from ftdata.formats import normalise
from ftdata.records import Record

#: What each fix does, by the name of the rule whose findings it repairs. Every rule
#: registered with ``fixable=True`` has an entry here, and every entry is such a rule.
FIXERS: dict[str, str] = {
    "utf8-bom": "remove the byte order mark at the start of the file",
    "crlf-line-ending": "end lines with LF instead of CRLF",
    "blank-line": "remove blank lines",
    "missing-final-newline": "end the file with a newline",
    "non-nfc-text": "normalise text to Unicode NFC",
    "role-whitespace": "strip whitespace around role names",
}


def fixable_rules() -> frozenset[str]:
    """Names of the registered rules declared ``fixable``: the fixes ``--fix`` applies."""
    from ftdata import registry

    return frozenset(r.name for r in registry.all_rules() if r.fixable)


def __getattr__(name: str) -> Any:
    # FIXABLE is read from the registry on first use, not at import: the registry loads
    # the rules (and plugins), which must not happen as a side effect of importing this.
    if name == "FIXABLE":
        return fixable_rules()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Leading bytes of files that are not UTF-8 text, and what they are.
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"BZh", "bzip2-compressed"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian byte order mark)"),
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian byte order mark)"),
    (b"\xfe\xff", "UTF-16 (big-endian byte order mark)"),
    (b"\xff\xfe", "UTF-16 (little-endian byte order mark)"),
)


def unfixable(data: bytes) -> str | None:
    """Why ``data`` must not be fixed (it is not UTF-8 text), or None when it may be."""
    for magic, what in _MAGIC:
        # bzip2's magic is printable ASCII: only trust it with the block header after it.
        if data.startswith(magic) and (magic != b"BZh" or data[4:10] == b"1AY&SY"):
            return f"the file is {what}, not UTF-8 text"
    head = data[:4096]
    # JSON text holds no NUL byte; ASCII written as UTF-16 or UTF-32 is one in two or more.
    if head and head.count(0) * 4 >= len(head):
        return "the file holds NUL bytes throughout: UTF-16 or UTF-32 without a byte order mark?"
    decoder = codecs.getincrementaldecoder("utf-8")()
    step = 1 << 20
    try:
        for start in range(0, len(data), step):
            decoder.decode(data[start : start + step], final=start + step >= len(data))
    except UnicodeDecodeError as e:
        at = start + e.start
        return f"the file is not valid UTF-8 (byte {at:,}: {data[at : at + 4].hex(' ')})"
    return None


@dataclass
class FixResult:
    """The content of one file before and after the fixes. ``skipped`` says why a file
    was left as it is (then ``fixed`` is ``original``)."""

    path: Path
    original: bytes
    fixed: bytes
    applied: Counter[str] = field(default_factory=Counter)
    skipped: str | None = None

    @property
    def changed(self) -> bool:
        return self.fixed != self.original

    @property
    def message(self) -> str:
        """One line for the user, the file name made inert: what was fixed, or
        ``not fixed: reason``."""
        from ftdata.render.text import visible_path

        name = visible_path(self.path)
        if self.skipped is not None:
            return f"{name}: not fixed: {self.skipped}"
        if not self.applied:
            return f"{name}: nothing to fix"
        done = ", ".join(f"{rule} {n:,}" for rule, n in sorted(self.applied.items()))
        return f"{name}: fixed {done}"


# A line's trailing carriage returns: one before the LF is a CRLF ending, more are the
# same ending written twice (all are JSON whitespace, so none is part of a value).
_TRAILING_CR = re.compile(rb"\r+$")


def fix_bytes(
    data: bytes, *, container: str = "jsonl", enabled: frozenset[str] | None = None, format: str | None = None
) -> tuple[bytes, Counter[str]]:
    """Apply the enabled safe fixes (default: all) to a file's bytes; (new bytes, fixes
    applied by rule). Bytes that are not UTF-8 text come back unchanged (see
    :func:`unfixable`); the result of a fix is a fixed point: fixing it changes nothing."""
    if enabled is None:
        enabled = fixable_rules()
    applied: Counter[str] = Counter()
    if unfixable(data) is not None:
        return data, applied
    if "utf8-bom" in enabled and data.startswith(io.BOM):
        # A byte order mark repeated (files concatenated) goes too, else a second run would
        # find the next one at the start of the file.
        while data.startswith(io.BOM):
            data = data[3:]
        applied["utf8-bom"] += 1
    crlf = "crlf-line-ending" in enabled
    if container != "jsonl":
        if crlf and b"\r\n" in data:
            data, n = re.subn(rb"\r+\n", b"\n", data)
            applied["crlf-line-ending"] += n
        return _fix_document(data, container, enabled, format, applied), applied
    if not data:
        return data, applied
    ends_with_newline = data.endswith(b"\n")
    pieces = data.split(b"\n")
    if ends_with_newline:
        pieces.pop()
    final_newline = bool(ends_with_newline or "missing-final-newline" in enabled)
    last = len(pieces) - 1
    out: list[bytes] = []
    leading_blanks = 0
    for k, piece in enumerate(pieces):
        # A line gets an LF after it when it is not the last or the file will end with one:
        # then its CRs before that LF are a CRLF ending to fix.
        if crlf and piece.endswith(b"\r") and (k < last or final_newline):
            piece = _TRAILING_CR.sub(b"", piece)
            applied["crlf-line-ending"] += 1
        if not piece.strip() and "blank-line" in enabled:
            applied["blank-line"] += 1
            leading_blanks += not out
            continue
        if k == 0 and piece.startswith(io.BOM):
            # The file's byte order mark (its fix is off): the record follows it. Anywhere
            # else a BOM is part of the line, which then is not JSON and is left alone.
            out.append(io.BOM + _fix_record_bytes(piece[3:], enabled, format, applied))
        else:
            out.append(_fix_record_bytes(piece, enabled, format, applied))
    if leading_blanks and out and out[0].startswith(io.BOM):
        # Without the blank line before it, this line's byte order mark would become the
        # file's, and the next run would strip it: keep one blank line so a fix stays fixed.
        out.insert(0, b"")
        applied["blank-line"] -= 1
        applied += Counter()  # drops a count that fell to zero
    fixed = b"\n".join(out)
    if out and final_newline:
        if not ends_with_newline:
            applied["missing-final-newline"] += 1
        fixed += b"\n"
    return fixed, applied


# Record-level fixes fail safe: a record they cannot handle is left as it was.
_FIX_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError)


def _fix_record_bytes(raw: bytes, enabled: frozenset[str], format: str | None, applied: Counter[str]) -> bytes:
    nfc = "non-nfc-text" in enabled and not (raw.isascii() and b"\\u" not in raw)
    roles = "role-whitespace" in enabled and (b'"role"' in raw or b'"from"' in raw)
    if not (nfc or roles):
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    # Only a record that parses cleanly is touched: with a duplicate key, an unsafe number
    # or a NaN, which copy or value a trainer reads is not certain, so no edit is safe.
    value, problems = io.parse_record(raw)
    if type(value) is not dict or problems:
        return raw
    local: Counter[str] = Counter()
    try:
        if nfc:
            text = _nfc_strings(text, local)
        if roles:
            text = _strip_roles(text, format, local)
    except _FIX_ERRORS:
        return raw
    applied.update(local)
    return text.encode("utf-8")


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def _nfc_strings(text: str, applied: Counter[str]) -> str:
    """NFC-normalise the decoded value of every JSON string that needs it. The raw text is
    not normalised as a whole: a combining mark after an escape such as ``\\n`` would merge
    into the escape's letter and corrupt it."""

    def fix(m: re.Match[str]) -> str:
        token = m.group()
        if token.isascii() and "\\u" not in token:
            return token
        value = orjson.loads(token)
        if unicodedata.is_normalized("NFC", value):
            return token
        applied["non-nfc-text"] += 1
        return orjson.dumps(unicodedata.normalize("NFC", value)).decode()

    return _STRING.sub(fix, text)


def _strip_roles(text: str, format: str | None, applied: Counter[str]) -> str:
    if '"' not in text or ("role" not in text and "from" not in text):
        return text
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if type(data) is not dict:
        return text
    rec = Record(0, data)
    normalise(rec, format)
    paths = [p for kind, p, _, _ in rec.problems if kind == "role-whitespace"]
    if not paths:
        return text
    spans = jsonstrict.locate(text, paths)
    for path in sorted(paths, key=lambda p: spans.get(p, (0, 0, 0))[1], reverse=True):
        span = spans.get(path)
        if span is None:
            continue
        _, start, end = span
        value = orjson.loads(text[start:end])
        if type(value) is not str:
            continue  # the located value is not the role the normaliser read
        text = text[:start] + orjson.dumps(value.strip()).decode() + text[end:]
        applied["role-whitespace"] += 1
    return text


def _fix_document(
    data: bytes, container: str, enabled: frozenset[str], format: str | None, applied: Counter[str]
) -> bytes:
    if not ({"non-nfc-text", "role-whitespace"} & enabled) or not data.strip():
        return data
    edits: list[tuple[int, int, bytes]] = []
    items = io.array_items if container == "json-array" else io.stream_items
    try:
        found = list(items(data, io.ReadStats(), "<fix>"))
    except _FIX_ERRORS:
        return data
    for item in found:
        if type(item) is not Record or item.raw is None or item.offset is None:
            continue
        fixed = _fix_record_bytes(item.raw, enabled, format, applied)
        if fixed != item.raw:
            edits.append((item.offset, item.offset + len(item.raw), fixed))
    for start, end, replacement in reversed(edits):
        data = data[:start] + replacement + data[end:]
    return data


def fix_file(path: Path, *, enabled: frozenset[str] | None = None, format: str | None = None) -> FixResult:
    """Compute the fixed content of ``path`` (the caller decides whether to write it). A
    file that is not UTF-8 text comes back unchanged with ``skipped`` saying why; an
    unreadable file raises OSError."""
    original = path.read_bytes()
    reason = unfixable(original)
    if reason is not None:
        return FixResult(path, original, original, Counter(), skipped=reason)
    fixed, applied = fix_bytes(original, container=io.container_of(path), enabled=enabled, format=format)
    return FixResult(path, original, fixed, applied)


def write_fix(result: FixResult) -> None:
    """Write a fix in place, atomically (nothing is written for a file left unchanged)."""
    if not result.changed:
        return
    with io.atomic_write(result.path) as f:
        f.write(result.fixed)
