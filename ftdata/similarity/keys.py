"""Keys: what a duplicate, conflict or leak compares, as stable hashes of a record.

Two records get the same key only when training on one teaches the same thing as training
on the other: the text of every turn, and also what the normalised view does not carry
(tool calls with their arguments, tool results and which call they answer, the tools
offered, per-turn loss weights, preference pairs and labels, image and audio references),
read from the raw record.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from ftdata.records import Record
from ftdata.similarity.text import SCOPES, digest_bytes, loose_bytes, prompt_turns, turn_key

#: Where a turn object of the record is: (container key, position).
_TURN_CONTAINERS = frozenset({"messages", "prompt", "completion", "conversations"})
#: Turn keys that the normalised view already holds (role and text); text parts of a
#: ``content`` list are in the text, its other parts are kept (see ``turn_extras``).
_TURN_SEEN = frozenset({"role", "content", "from", "value"})
#: Record fields that change what the prompt shows: the tools offered and attached media.
PROMPT_FIELDS = ("tools", "functions", "images", "image", "videos", "video", "audios", "audio")
#: Record fields that change what is learned from the answers: preference pairs and labels.
ANSWER_FIELDS = ("chosen", "rejected", "rejected_messages", "label", "kto_tag")
_PROMPT_FIELDS = frozenset(PROMPT_FIELDS)
_ANSWER_FIELDS = frozenset(ANSWER_FIELDS)
_RECORD_FIELDS = _PROMPT_FIELDS | _ANSWER_FIELDS
#: Record fields given as JSON text in some dialects (ShareGPT's ``tools``).
_JSON_TEXT_FIELDS = frozenset({"tools", "functions"})

_TURN_SEP = b"\x1e"
_PART_SEP = b"\x1f"
_SECTION_SEP = b"\x1d"


class _Token:
    """A piece of output of the slow canonical serialiser (never a value of the data)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


_OPEN_OBJ, _CLOSE_OBJ = _Token(b"{"), _Token(b"}")
_OPEN_ARR, _CLOSE_ARR = _Token(b"["), _Token(b"]")
_COMMA, _COLON = _Token(b","), _Token(b":")


def _sort_key(key: Any) -> tuple[str, str]:
    return ("", key) if type(key) is str else (type(key).__name__, repr(key))


def _scalar_bytes(value: Any) -> bytes:
    if value is None:
        return b"null"
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if type(value) is str:
        return json.dumps(value).encode("ascii")  # ASCII escapes keep lone surrogates representable
    if type(value) is int:
        try:
            return str(value).encode("ascii")
        except ValueError:  # beyond Python's digit limit for str(): hex has no limit
            return format(value, "#x").encode("ascii")
    if type(value) is float:
        return repr(value).encode("ascii")
    return f"<{type(value).__name__}>{value!r}".encode("utf-8", "backslashreplace")


def _canonical_slow(value: Any) -> bytes:
    """Canonical JSON without recursion, for what orjson refuses (lone surrogates,
    integers beyond 64 bits, deep nesting, keys that are not strings)."""
    out: list[bytes] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is _Token:
            out.append(item.data)
        elif type(item) is dict:
            pending: list[Any] = [_OPEN_OBJ]
            for k, (key, val) in enumerate(sorted(item.items(), key=lambda kv: _sort_key(kv[0]))):
                if k:
                    pending.append(_COMMA)
                pending.extend((_Token(_scalar_bytes(key if type(key) is str else repr(key))), _COLON, val))
            pending.append(_CLOSE_OBJ)
            stack.extend(reversed(pending))
        elif type(item) in (list, tuple):
            pending = [_OPEN_ARR]
            for k, val in enumerate(item):
                if k:
                    pending.append(_COMMA)
                pending.append(val)
            pending.append(_CLOSE_ARR)
            stack.extend(reversed(pending))
        else:
            out.append(_scalar_bytes(item))
    return b"".join(out)


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON bytes: keys sorted, no insignificant whitespace. Equal
    values give equal bytes whatever their key order; never raises (values JSON cannot
    hold are written in a form of their own)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, ValueError):
        return _canonical_slow(value)


def parse_json_text(value: Any) -> Any:
    """``value`` parsed when it is a string holding JSON (tool-call arguments given as
    text), else ``value`` unchanged: so ``'{"a": 1}'`` and ``{"a": 1}`` compare equal."""
    if type(value) is str:
        # The standard parser, not orjson: orjson reads integers beyond 64 bits as floats,
        # and the object form of the same arguments holds them exactly.
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def _call(call: Any) -> Any:
    """One tool call without its id, arguments parsed."""
    if type(call) is not dict:
        return call
    out = {k: v for k, v in call.items() if k != "id"}
    fn = out.get("function")
    if type(fn) is dict and "arguments" in fn:
        out["function"] = {**fn, "arguments": parse_json_text(fn["arguments"])}
    if "arguments" in out:
        out["arguments"] = parse_json_text(out["arguments"])
    return out


def _compute_extras(record: Record) -> list[tuple[dict[str, Any] | None, bool]] | None:
    """Per turn: what it holds beside role and text, and whether its text is a tool call
    whose parsed JSON (in the extras) stands for it. None when no turn holds anything
    else (most records): keys are then the turn texts alone."""
    messages = record.messages
    for m in messages:  # the common record: every turn a plain {role, content} pair
        turn = m.data
        if (
            type(turn) is not dict
            or len(turn) != 2
            or type(turn.get("content")) is not str
            or "role" not in turn
            or m.tool_calls
        ):
            break
    else:
        return None
    calls: dict[str, int] = {}  # call id -> position of the call among the record's calls
    out: list[tuple[dict[str, Any] | None, bool]] = []
    for m in messages:
        turn = m.data
        path = m.path
        if type(turn) is not dict or len(path) != 2 or path[0] not in _TURN_CONTAINERS:
            out.append((None, False))
            continue
        if (
            len(turn) == 2
            and not m.tool_calls
            and (
                ("role" in turn and type(turn.get("content")) is str)
                or ("from" in turn and type(turn.get("value")) is str)
            )
        ):
            out.append((None, False))  # the plain turn: role and text, nothing else
            continue
        extras: dict[str, Any] = {}
        for key, value in turn.items():
            if key in _TURN_SEEN:
                continue
            if key == "tool_calls" and type(value) is list:
                for call in value:
                    ident = call.get("id") if type(call) is dict else None
                    calls.setdefault(ident if type(ident) is str else f"#{len(calls)}", len(calls))
                extras[key] = [_call(c) for c in value]
            elif key == "function_call":
                extras[key] = _call(value)
            elif key == "tool_call_id" and type(value) is str and value in calls:
                extras[key] = calls[value]  # ids are arbitrary labels: keep which call it answers
            else:
                extras[key] = value
        content = turn.get("content")
        if type(content) is list:
            parts = [[k, p] for k, p in enumerate(content) if type(p) is dict and p.get("type", "text") != "text"]
            if parts:
                extras["content"] = parts
        replaced = False
        if m.tool_calls and "from" in turn:  # a ShareGPT function_call turn: its value is JSON
            parsed = parse_json_text(turn.get("value"))
            if type(parsed) is dict:
                extras["value"] = _call(parsed)
                replaced = True
        out.append((extras or None, replaced))
    return out if any(e is not None for e, _ in out) else None


def _extras(record: Record) -> list[tuple[dict[str, Any] | None, bool]] | None:
    return record.memo("turn-extras", lambda: _compute_extras(record))


def turn_extras(record: Record, *, drop: frozenset[str] = frozenset()) -> list[bytes]:
    """For each turn, what it holds beside its role and text, as canonical JSON (``b""``
    when nothing): tool calls (id dropped, arguments parsed when given as JSON text),
    the call a tool result answers (by position: call ids are arbitrary labels), loss
    ``weight``, ``name``, non-text content parts (images, audio), a ShareGPT call turn's
    parsed value, and any other key of the turn. Keys in ``drop`` are left out."""
    extras = _extras(record)
    if extras is None:
        return [b""] * len(record.messages)
    out = []
    for e, _ in extras:
        if e is not None and drop:
            e = {k: v for k, v in e.items() if k not in drop}
        out.append(canonical_json(e) if e else b"")
    return out


def turn_keys(
    record: Record, *, casefold: bool = False, drop: frozenset[str] = frozenset(), loose: bool = False
) -> list[bytes]:
    """Each turn as role, canonical text (``loose_bytes`` with ``loose``) and
    ``turn_extras`` (without the keys in ``drop``): equal exactly when the two turns teach
    the same thing. A ShareGPT call turn is keyed by its parsed JSON, so the key order and
    spacing of the call do not count."""

    def compute() -> list[bytes]:
        base = turn_key(record, casefold=casefold, loose=loose)
        found = _extras(record)
        if found is None:
            return base
        keys = []
        extras = turn_extras(record, drop=drop)
        for m, b, e, (_, replaced) in zip(record.messages, base, extras, found, strict=True):
            if replaced:
                b = m.role.encode() + _PART_SEP
            keys.append(b + _PART_SEP + e if e else b)
        return keys

    return record.memo(("turn-keys", casefold, drop, loose), compute)


def _loose_prompt_turns(record: Record) -> list[bytes]:
    """``turn_keys(record, loose=True)`` for the turns up to the first assistant reply,
    which is all a prompt key reads; the replies (the long texts) are left as ``b""``
    rather than normalised for nothing. Computed once per record: the prompt keys with
    and without the system prompt (FT402, FT601) both read it."""
    return record.memo("loose-prompt-turns", lambda: _compute_loose_prompt_turns(record))


def _compute_loose_prompt_turns(record: Record) -> list[bytes]:
    messages = record.messages
    end = next((k for k, m in enumerate(messages) if m.role == "assistant"), len(messages))
    if end in (0, len(messages)):  # no prompt turn (a text record): every turn is the prompt
        return turn_keys(record, loose=True)
    found = _extras(record)
    extras = turn_extras(record) if found is not None else None
    keys = []
    for k, m in enumerate(messages):
        if k >= end:
            keys.append(b"")
            continue
        base = m.role.encode() + _PART_SEP
        if found is None or not found[k][1]:
            base += loose_bytes(m.text or "")
        e = extras[k] if extras is not None else b""
        keys.append(base + _PART_SEP + e if e else base)
    return keys


def _fields(record: Record, names: frozenset[str]) -> bytes:
    return record.memo(("fields", names), lambda: _compute_fields(record, names))


def _compute_fields(record: Record, names: frozenset[str]) -> bytes:
    data = record.data
    found = {}
    for name in data:  # records have a few keys: fewer lookups than over ``names``
        if name in names:
            value = data[name]
            found[name] = parse_json_text(value) if name in _JSON_TEXT_FIELDS else value
    return canonical_json(found) if found else b""


def _key(turns: list[bytes], fields: bytes) -> int:
    return digest_bytes(_TURN_SEP.join(turns) + _SECTION_SEP + fields)


def conversation_key(record: Record, *, casefold: bool = False, loose: bool = False) -> int | None:
    """A stable 63-bit key of everything a record trains on: every turn (``turn_keys``,
    ``loose`` as there) and the record's tools offered, media, preference fields and
    labels. None for a record that is not ``readable``: it is never a duplicate of
    anything."""
    if not record.readable:
        return None
    return record.memo(
        ("conversation-key", casefold, loose),
        lambda: _key(turn_keys(record, casefold=casefold, loose=loose), _fields(record, _RECORD_FIELDS)),
    )


def prompt_key(record: Record, *, casefold: bool = False, system: bool = False, loose: bool = False) -> int | None:
    """A stable 63-bit key of what the model is asked: the turns before the first
    assistant reply (``turn_keys``; the system prompt only with ``system``; every turn
    when there are none), plus the tools offered and the media attached. With ``loose``
    the texts are compared as ``loose_bytes`` (case, punctuation and spacing do not
    count). None for a record that is not ``readable``."""
    if not record.readable:
        return None

    def compute() -> int:
        turns = turn_keys(record, casefold=casefold) if not loose else _loose_prompt_turns(record)
        if system:
            end = next((k for k, m in enumerate(record.messages) if m.role == "assistant"), len(turns))
            chosen = turns[:end]
        else:
            chosen = [turns[k] for k in prompt_turns(record)]
        return _key(chosen or turns, _fields(record, _PROMPT_FIELDS))

    return record.memo(("prompt-key", casefold, system, loose), compute)


def answer_key(record: Record, *, casefold: bool = False, loose: bool = False) -> int | None:
    """A stable 63-bit key of what the model is taught to answer: the assistant turns
    (``turn_keys``) and the preference fields and labels. None for a record that is not
    ``readable`` or has no answer at all."""
    if not record.readable:
        return None

    def compute() -> int | None:
        turns = turn_keys(record, casefold=casefold, loose=loose)
        chosen = [t for t, m in zip(turns, record.messages, strict=True) if m.role == "assistant"]
        fields = _fields(record, _ANSWER_FIELDS)
        return _key(chosen, fields) if chosen or fields else None

    return record.memo(("answer-key", casefold, loose), compute)


def scope_key(
    record: Record, scope: str = "conversation", *, casefold: bool = False, loose: bool = False
) -> int | None:
    """The key of ``scope``: ``prompt`` (``prompt_key``, system prompt excluded as in
    ``scope_text``), ``answer`` (``answer_key``) or ``conversation`` (``conversation_key``);
    ``loose`` as there."""
    if scope == "prompt":
        return prompt_key(record, casefold=casefold, loose=loose)
    if scope == "answer":
        return answer_key(record, casefold=casefold, loose=loose)
    if scope == "conversation":
        return conversation_key(record, casefold=casefold, loose=loose)
    raise ValueError(f"unknown scope {scope!r} (expected one of {', '.join(SCOPES)})")
