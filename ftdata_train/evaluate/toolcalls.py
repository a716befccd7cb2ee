"""Tool calls in references and in generated replies, and how well one matches the other.

A reference reply is a tool call when its message has ``tool_calls`` (OpenAI's shape, which
:func:`ftdata.tokens.chat_messages` also gives ShareGPT ``function_call`` turns). A generated
reply holds tool calls when it has ``<tool_call>{json}</tool_call>`` blocks (Qwen's and Hermes'
form; a block the generation limit cut before its closing tag counts) or, without blocks, when
the whole reply (code fences aside) is a JSON call or a list of them. A JSON call is an object
with a ``name`` and ``arguments`` (``parameters``, as Llama 3.1 writes it, is read the same),
optionally inside ``{"type": "function", "function": ...}``; arguments given as a JSON string
are decoded before they are compared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCE = re.compile(r"\A```[\w-]*\s*\n?(.*?)\n?```\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call: the function's name and its arguments (decoded from JSON where they were a
    string holding JSON)."""

    name: str
    arguments: Any

    def text(self) -> str:
        """The call as one line of JSON, ``{"name": ..., "arguments": ...}`` (keys sorted)."""
        return json.dumps({"name": self.name, "arguments": self.arguments}, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True, slots=True)
class ToolCallScore:
    """A generated reply's calls against the reference's: the names each made, whether the
    names agree (the same functions, as many times each, in any order) and whether the
    arguments do too (each reference call matched by a generated call with the same name and
    equal arguments)."""

    expected: tuple[str, ...]
    generated: tuple[str, ...]
    name_match: bool
    arguments_match: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "expected": list(self.expected),
            "generated": list(self.generated),
            "name_match": self.name_match,
            "arguments_match": self.arguments_match,
        }


def reference_calls(message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The tool calls of a reference message (its ``tool_calls``); empty when it has none."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return ()
    found = (_call(call) for call in calls)
    return tuple(call for call in found if call is not None)


def parse_tool_calls(text: str) -> tuple[tuple[ToolCall, ...], str]:
    """The tool calls a generated reply makes, and its text outside them. A block or reply that
    is not a JSON call is not a call (the reply then makes none, or fewer)."""
    blocks = list(_BLOCK.finditer(text))
    if blocks:
        calls = tuple(c for b in blocks for c in _calls(_json(b.group(1).strip())))
        return (calls, _BLOCK.sub("", text).strip()) if calls else ((), text)
    body = text.strip()
    fenced = _FENCE.match(body)
    calls = tuple(_calls(_json(fenced.group(1) if fenced else body)))
    return calls, ("" if calls else text)


def score_calls(expected: Sequence[ToolCall], generated: Sequence[ToolCall]) -> ToolCallScore:
    """How ``generated`` matches ``expected``: see :class:`ToolCallScore`."""
    names = sorted(c.name for c in expected) == sorted(c.name for c in generated)
    arguments = names and sorted(c.text() for c in expected) == sorted(c.text() for c in generated)
    return ToolCallScore(tuple(c.name for c in expected), tuple(c.name for c in generated), names, bool(arguments))


def calls_text(calls: Sequence[ToolCall]) -> str:
    """The calls one JSON line each: how a tool-call reference is shown and scored as text."""
    return "\n".join(c.text() for c in calls)


def openai_calls(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """The calls as a message's ``tool_calls``, arguments as the JSON string OpenAI's shape has."""
    return [
        {
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
        }
        for c in calls
    ]


def _calls(value: Any) -> list[ToolCall]:
    items = value if isinstance(value, list) else [value]
    found = [c for c in map(_call, items) if c is not None]
    return found if found and len(found) == len(items) else []  # one unreadable call: none is read


def _call(value: Any) -> ToolCall | None:
    if not isinstance(value, Mapping):
        return None
    inner = value.get("function")
    function: Mapping[str, Any] = inner if isinstance(inner, Mapping) else value
    name = function.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = function.get("arguments", function.get("parameters", {}))
    if isinstance(arguments, str):
        decoded = _json(arguments)
        arguments = decoded if isinstance(decoded, dict | list) else arguments
    return ToolCall(name, arguments)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


__all__ = [
    "ToolCall",
    "ToolCallScore",
    "calls_text",
    "openai_calls",
    "parse_tool_calls",
    "reference_calls",
    "score_calls",
]
