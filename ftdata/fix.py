"""Safe fixes: byte order mark, CRLF endings, blank lines, the final newline, NFC text and
whitespace around role names. Nothing else is ever rewritten, so a fix cannot change what
a record means; running it twice changes nothing the second time."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ftdata import io, jsonstrict
from ftdata.formats import normalise
from ftdata.records import Record

#: Rule names whose findings ``fix`` can repair.
FIXABLE = frozenset(
    {"utf8-bom", "crlf-line-ending", "blank-line", "missing-final-newline", "non-nfc-text", "role-whitespace"}
)


@dataclass
class FixResult:
    path: Path
    original: bytes
    fixed: bytes
    applied: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return self.fixed != self.original


def fix_bytes(
    data: bytes, *, container: str = "jsonl", enabled: frozenset[str] = FIXABLE, format: str | None = None
) -> tuple[bytes, Counter[str]]:
    """Apply the enabled safe fixes to a file's bytes; (new bytes, fixes applied by rule)."""
    applied: Counter[str] = Counter()
    if "utf8-bom" in enabled and data.startswith(io.BOM):
        data = data[3:]
        applied["utf8-bom"] += 1
    if "crlf-line-ending" in enabled and b"\r\n" in data:
        applied["crlf-line-ending"] += data.count(b"\r\n")
        data = data.replace(b"\r\n", b"\n")
    if container != "jsonl":
        return _fix_document(data, container, enabled, format, applied), applied
    ends_with_newline = data.endswith(b"\n")
    pieces = data.split(b"\n")
    if ends_with_newline:
        pieces.pop()
    out: list[bytes] = []
    for piece in pieces:
        if not piece.strip() and "blank-line" in enabled:
            applied["blank-line"] += 1
            continue
        out.append(_fix_record_bytes(piece, enabled, format, applied))
    fixed = b"\n".join(out)
    if out and (ends_with_newline or "missing-final-newline" in enabled):
        if not ends_with_newline:
            applied["missing-final-newline"] += 1
        fixed += b"\n"
    return fixed, applied


def _fix_record_bytes(raw: bytes, enabled: frozenset[str], format: str | None, applied: Counter[str]) -> bytes:
    prefix = b""
    if raw.startswith(io.BOM):
        prefix, raw = io.BOM, raw[3:]
    nfc = "non-nfc-text" in enabled and not (raw.isascii() and b"\\u" not in raw)
    roles = "role-whitespace" in enabled and (b'"role"' in raw or b'"from"' in raw)
    if not (nfc or roles):
        return prefix + raw
    try:
        text = raw.decode("utf-8")
        orjson.loads(text)
    except (UnicodeDecodeError, orjson.JSONDecodeError):
        return prefix + raw  # not valid JSON: nothing here is safe to touch
    if nfc:
        text = _nfc_strings(text, applied)
    if roles:
        text = _strip_roles(text, format, applied)
    return prefix + text.encode("utf-8")


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
    for item in items(data, io.ReadStats(), "<fix>"):
        if type(item) is not Record or item.raw is None or item.offset is None:
            continue
        fixed = _fix_record_bytes(item.raw, enabled, format, applied)
        if fixed != item.raw:
            edits.append((item.offset, item.offset + len(item.raw), fixed))
    for start, end, replacement in reversed(edits):
        data = data[:start] + replacement + data[end:]
    return data


def fix_file(path: Path, *, enabled: frozenset[str] = FIXABLE, format: str | None = None) -> FixResult:
    """Compute the fixed content of ``path`` (the caller decides whether to write it)."""
    original = path.read_bytes()
    fixed, applied = fix_bytes(original, container=io.container_of(path), enabled=enabled, format=format)
    return FixResult(path, original, fixed, applied)


def write_fix(result: FixResult) -> None:
    """Write a fix in place, atomically."""
    with io.atomic_write(result.path) as f:
        f.write(result.fixed)
