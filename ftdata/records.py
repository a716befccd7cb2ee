"""Record: one dataset example as read, plus the normalised chat view every rule uses."""

from __future__ import annotations

from collections.abc import Sequence
from sys import intern
from typing import Any

import orjson

from ftdata.findings import PathT
from ftdata.problems import Problem as Kind

#: A piece of text of a record: (canonical role, text, path to the string value).
Segment = tuple[str, str, PathT]

#: A problem found while reading or normalising: (rule name, path, message, char offset).
#: ``offset`` is set by the reader (a position in the raw text) and is None for defects
#: found in the parsed value, which are located through ``path``.
Problem = tuple[str, PathT, str, int | None]

ROLES = ("system", "user", "assistant", "tool")

#: Reader problems that mean the record's layout was not understood (its shape, not a
#: value in it, is wrong), so its normalised view cannot be trusted for comparisons.
MISREAD = frozenset(
    {
        Kind.UNKNOWN_FORMAT,
        Kind.MISSING_MESSAGES,
        Kind.MISSING_KEY,
        Kind.WRONG_TYPE,
        Kind.NOT_AN_OBJECT,
        Kind.INVALID_JSON,
    }
)

#: What :func:`field_value` returns for a path the record does not have.
MISSING: Any = object()
_LETTERS = {"system": "S", "user": "U", "tool": "T"}


class Message:
    """One turn in the normalised view.

    ``role`` is canonical (system, user, assistant, tool) or, when unrecognised, the raw
    value. ``text`` is the turn's text (content parts joined) or None. ``path`` points at
    the turn in the original record and ``data`` is the original turn object.
    """

    __slots__ = ("data", "path", "role", "text", "tool_calls")

    def __init__(
        self,
        role: str,
        text: str | None,
        path: PathT,
        data: Any = None,
        tool_calls: bool = False,
    ) -> None:
        self.role = role
        self.text = text
        self.path = path
        self.data = data
        self.tool_calls = tool_calls

    def __repr__(self) -> str:
        text = self.text if self.text is None or len(self.text) < 40 else self.text[:37] + "..."
        return f"Message({self.role!r}, {text!r}, path={self.path!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.role, self.text, self.path, self.tool_calls) == (
            other.role,
            other.text,
            other.path,
            other.tool_calls,
        )

    __hash__ = None  # type: ignore[assignment]


class Record:
    """One example of a dataset.

    ``index`` is its 0-based position among the records of its source, ``line`` the
    1-based line where it starts (None for in-memory data), ``raw`` its bytes as read.
    ``data`` is the parsed JSON value (None when it could not be parsed). ``format`` is
    the detected or forced format name. ``messages``/``segments`` are the normalised view;
    ``problems`` what the reader and the normaliser found.

    Preference data: ``messages`` is the conversation trained towards (the prompt, then
    the chosen reply), ``reply`` the chosen reply (the last turns of ``messages``) and
    ``rejected`` the rejected reply, whose text is not in ``segments``: it is what the
    model is moved away from, so content rules never judge it. Unpaired preference (KTO):
    ``reply`` is the completion and ``label`` True (desirable), False (undesirable) or
    None (not a boolean). Both are empty, and ``label`` None, for every other format.

    A record read through a field mapping (``--map``, ``[tool.ftdata.fields]``,
    dataset_info.json) holds the mapped value in ``data`` and what was read in
    ``original``; ``fields`` is the :class:`ftdata.formats.fields.FieldMap` applied, which
    turns paths into ``data`` back into paths of the record as written (for locating
    findings). Both are None for a record read as it is.
    """

    __slots__ = (
        "_memo",
        "_pattern",
        "_text",
        "column",
        "data",
        "fields",
        "format",
        "index",
        "label",
        "line",
        "messages",
        "offset",
        "original",
        "problems",
        "raw",
        "rejected",
        "reply",
        "segments",
        "source",
    )

    def __init__(
        self,
        index: int,
        data: Any,
        *,
        source: str = "<memory>",
        line: int | None = None,
        column: int = 1,
        raw: bytes | None = None,
        offset: int | None = None,
    ) -> None:
        self.index = index
        self.line = line
        self.column = column
        self.source = source
        self.raw = raw
        self.offset = offset
        self.data = data
        self.format: str | None = None
        self.messages: list[Message] = []
        self.segments: list[Segment] = []
        self.problems: list[Problem] = []
        self.reply: Sequence[Message] = ()
        self.rejected: Sequence[Message] = ()
        self.label: bool | None = None
        self.fields: Any = None
        self.original: Any = None
        self._text: str | None = None
        self._pattern: str | None = None
        self._memo: dict[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"Record(index={self.index}, line={self.line}, format={self.format!r})"

    @property
    def valid(self) -> bool:
        """True when the record parsed to a JSON object."""
        return type(self.data) is dict

    @property
    def readable(self) -> bool:
        """True when ftdata understood the record: a JSON object in a known format, with
        no problem of its shape (an unknown layout, a missing key, a value of the wrong
        type) and some text in its normalised view. Unreadable records are never compared
        (duplicates, leakage, clusters) nor counted as clean; call after normalisation."""
        if type(self.data) is not dict or self.format is None:
            return False
        # Loops, not any() over generators: this runs on every record of every pass.
        for p in self.problems:
            if p[0] in MISREAD:
                return False
        for s in self.segments:  # noqa: SIM110
            if s[1]:
                return True
        return False

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(m.role for m in self.messages)

    @property
    def text(self) -> str:
        """All segment texts joined by newlines: a cheap haystack for pre-filters."""
        if self._text is None:
            self._text = "\n".join(s[1] for s in self.segments)
        return self._text

    @property
    def pattern(self) -> str:
        """The turns as one letter each: S system, U user, A assistant, C assistant with tool
        calls, T tool, ? unrecognised. Lets rules test role order with fast string operations."""
        if self._pattern is None:
            self._pattern = "".join(
                ("C" if m.tool_calls else "A") if m.role == "assistant" else _LETTERS.get(m.role, "?")
                for m in self.messages
            )
        return self._pattern

    def memo(self, key: Any, compute: Any) -> Any:
        """``compute()`` once per record and key: lets rules share derived values (the
        normalised prompt, a hash) computed during the same pass."""
        memo = self._memo
        if memo is None:
            memo = self._memo = {}
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def judged(self, path: PathT) -> bool:
        """Whether content rules that judge a reply may judge the text at ``path``: False
        inside the completion of an undesirable KTO example, which the model is trained
        away from (a pair's rejected reply is not in ``segments`` at all)."""
        if self.label is not False:
            return True
        return not any(path[: len(m.path)] == m.path for m in self.reply)

    def prompt_messages(self) -> list[Message]:
        """The turns before the first assistant reply."""
        out: list[Message] = []
        for m in self.messages:
            if m.role == "assistant":
                break
            out.append(m)
        return out


def field_value(data: Any, path: str) -> Any:
    """The value at a dotted field path (``metadata.task``, ``tags.0``: object keys, and
    list positions as digits), or :data:`MISSING`. The one meaning of a field path, for
    stratification, grouping, label balance and the audit."""
    value = data
    for part in path.split(".") if path else ():
        if type(value) is dict and part in value:
            value = value[part]
        elif type(value) is list and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def field_label(record: Record, *, field: str = "") -> str | None:
    """The value at ``field`` as a label: text as is, anything else as canonical JSON,
    "" when the record lacks the field; None for an unreadable record (neither counted
    nor missing the field). The collector of the rules that count labels."""
    if not record.readable:
        return None
    if not field:
        return None
    value = field_value(record.data, field)
    if value is MISSING or value is None:
        return ""
    return intern(value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def plain(value: Any) -> Any:
    """pandas/numpy values (arrays, NaN, numpy scalars) as plain JSON-able Python."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        return plain(value.tolist())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value
