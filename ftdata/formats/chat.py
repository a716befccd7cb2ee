"""The chat formats: OpenAI-style messages, prompt/completion, Alpaca and ShareGPT."""

from __future__ import annotations

from typing import Any

from ftdata.findings import PathT
from ftdata.problems import Problem as Kind
from ftdata.records import Message, Record

OPENAI_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}


#: Content part types holding the model's reasoning (LLaMA-Factory v1, OpenAI-style exports).
REASONING_PARTS = frozenset({"reasoning", "thinking"})
#: The content part type of a tool call written inline (LLaMA-Factory v1: a JSON string value).
TOOL_CALL_PART = "tool_call"


def tool_call_parts(content: Any) -> list[int]:
    """Positions of the ``{"type": "tool_call", "value": ...}`` parts of a content list."""
    if type(content) is not list:
        return []
    return [k for k, part in enumerate(content) if type(part) is dict and part.get("type") == TOOL_CALL_PART]


def type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _role(record: Record, raw: Any, table: dict[str, str], path: PathT) -> str:
    """Canonical role for ``raw``; records a problem when it is not a known role."""
    if type(raw) is not str:
        record.problems.append((Kind.WRONG_TYPE, path, f"role must be a string, got {type_name(raw)}", None))
        return "?"
    canon = table.get(raw)
    if canon is not None:
        return canon
    stripped = raw.strip()
    canon = table.get(stripped)
    if canon is not None:
        record.problems.append(
            (Kind.ROLE_WHITESPACE, path, f"role {raw!r} has surrounding whitespace (expected {stripped!r})", None)
        )
        return canon
    lowered = stripped.lower()
    hint = f"; did you mean {lowered!r}?" if lowered in table else ""
    known = ", ".join(sorted(table))
    record.problems.append((Kind.UNRECOGNISED_ROLE, path, f"unrecognised role {raw!r} (known: {known}){hint}", None))
    return raw


def _content_text(record: Record, content: Any, path: PathT, role: str) -> str | None:
    """Text of an OpenAI ``content`` value (string or list of parts); segments appended."""
    if type(content) is str:
        record.segments.append((role, content, path))
        return content
    if type(content) is list:
        texts: list[str] = []
        for k, part in enumerate(content):
            if type(part) is dict:
                kind = part.get("type", "text")
                if type(kind) is not str:
                    kind = ""  # a malformed part type: FT102 reports it; never hash a list
                if kind in REASONING_PARTS:
                    # Reasoning is trained on with the reply, but is not the reply: its text
                    # is a segment of its own (duplicates, tokens, content rules read it)
                    # and stays out of the turn's text.
                    key = "value" if "text" not in part else "text"
                    if type(part.get(key)) is str:
                        record.segments.append((role, part[key], (*path, k, key)))
                    continue
                if kind == "text":
                    # LLaMA-Factory's v1 files give a text part its text under "value".
                    key = "value" if "text" not in part and type(part.get("value")) is str else "text"
                    text = part.get(key)
                    if type(text) is str:
                        record.segments.append((role, text, (*path, k, key)))
                        texts.append(text)
                    else:
                        record.problems.append(
                            (Kind.WRONG_TYPE, (*path, k, "text"), "a text content part needs a string 'text'", None)
                        )
            elif type(part) is str:
                record.segments.append((role, part, (*path, k)))
                texts.append(part)
            else:
                record.problems.append(
                    (Kind.WRONG_TYPE, (*path, k), f"content part must be an object, got {type_name(part)}", None)
                )
        return "".join(texts) if texts else None
    record.problems.append(
        (Kind.WRONG_TYPE, path, f"content must be a string or a list of parts, got {type_name(content)}", None)
    )
    return None


def _chat_message(record: Record, m: Any, path: PathT) -> None:
    """One OpenAI-style message at ``path``."""
    if type(m) is not dict:
        record.problems.append((Kind.WRONG_TYPE, path, f"message must be an object, got {type_name(m)}", None))
        return
    if "role" in m:
        role = _role(record, m["role"], OPENAI_ROLES, (*path, "role"))
    else:
        record.problems.append((Kind.MISSING_KEY, path, "message has no 'role'", None))
        role = "?"
    tool_calls = "tool_calls" in m or "function_call" in m or bool(tool_call_parts(m.get("content")))
    text = None
    if "content" in m:
        content = m["content"]
        if content is None:
            if not (tool_calls and role == "assistant"):
                record.problems.append((Kind.MISSING_CONTENT, (*path, "content"), "message content is null", None))
        else:
            text = _content_text(record, content, (*path, "content"), role)
    elif not (tool_calls and role == "assistant"):
        record.problems.append((Kind.MISSING_KEY, path, "message has no 'content'", None))
    record.messages.append(Message(role, text, path, m, tool_calls))


def message_list(record: Record, value: Any, key: str) -> None:
    if type(value) is not list:
        if value is None:
            record.problems.append((Kind.MISSING_MESSAGES, (key,), f"'{key}' is null", None))
        else:
            record.problems.append(
                (Kind.WRONG_TYPE, (key,), f"'{key}' must be a list of messages, got {type_name(value)}", None)
            )
        return
    if not value:
        record.problems.append((Kind.MISSING_MESSAGES, (key,), f"'{key}' is an empty list", None))
        return
    segments = record.segments
    messages = record.messages
    for i, m in enumerate(value):
        # Fast path for the common message: a known role and string content, nothing else to check.
        if type(m) is dict and len(m) == 2:
            role = m.get("role")
            content = m.get("content")
            if type(role) is str and type(content) is str:
                canon = OPENAI_ROLES.get(role)
                if canon is not None:
                    segments.append((canon, content, (key, i, "content")))
                    messages.append(Message(canon, content, (key, i), m, False))
                    continue
        _chat_message(record, m, (key, i))


def openai_turns(turns: Any) -> bool:
    """Whether a ``conversations`` list holds OpenAI messages (``role``/``content``, as
    tool-use sets ship) rather than ShareGPT ``from``/``value`` turns: its first object says."""
    if type(turns) is not list:
        return False
    first = next((t for t in turns if type(t) is dict), None)
    return first is not None and "role" in first and "from" not in first


def read_messages(record: Record, data: dict[str, Any]) -> None:
    if "messages" not in data:
        record.problems.append((Kind.MISSING_MESSAGES, (), "record has no 'messages' list", None))
        return
    message_list(record, data["messages"], "messages")


def read_prompt_completion(record: Record, data: dict[str, Any]) -> None:
    for key, role in (("prompt", "user"), ("completion", "assistant")):
        if key not in data:
            record.problems.append((Kind.MISSING_KEY, (), f"record has no {key!r}", None))
            continue
        value = data[key]
        if type(value) is str:
            record.segments.append((role, value, (key,)))
            record.messages.append(Message(role, value, (key,), value))
        elif type(value) is list:
            message_list(record, value, key)
        else:
            record.problems.append(
                (
                    Kind.WRONG_TYPE,
                    (key,),
                    f"{key!r} must be a string or a list of messages, got {type_name(value)}",
                    None,
                )
            )


def _system_field(record: Record, data: dict[str, Any]) -> None:
    """The optional top-level ``system`` string of Alpaca and ShareGPT records."""
    system = data.get("system")
    if type(system) is str and system:
        record.segments.append(("system", system, ("system",)))
        record.messages.append(Message("system", system, ("system",), system))
    elif system is not None and type(system) is not str:
        record.problems.append(
            (Kind.WRONG_TYPE, ("system",), f"'system' must be a string, got {type_name(system)}", None)
        )


def read_alpaca(record: Record, data: dict[str, Any]) -> None:
    read_alpaca_prompt(record, data)
    value = data.get("output")
    if "output" not in data:
        record.problems.append((Kind.MISSING_KEY, (), "record has no 'output'", None))
    elif type(value) is str:
        record.segments.append(("assistant", value, ("output",)))
        record.messages.append(Message("assistant", value, ("output",), data))
    elif value is None:
        record.problems.append((Kind.MISSING_CONTENT, ("output",), "'output' is null", None))
    else:
        record.problems.append(
            (Kind.WRONG_TYPE, ("output",), f"'output' must be a string, got {type_name(value)}", None)
        )


def read_alpaca_prompt(record: Record, data: dict[str, Any]) -> None:
    """The prompt side of an Alpaca record: system, history, instruction and input."""
    _system_field(record, data)
    history = data.get("history")
    if history is not None:
        if type(history) is not list:
            record.problems.append(
                (
                    Kind.WRONG_TYPE,
                    ("history",),
                    f"'history' must be a list of [prompt, response] pairs, got {type_name(history)}",
                    None,
                )
            )
        else:
            for i, pair in enumerate(history):
                if type(pair) is not list or len(pair) != 2 or not all(type(x) is str for x in pair):
                    record.problems.append(
                        (
                            Kind.WRONG_TYPE,
                            ("history", i),
                            "a history entry must be a [prompt, response] pair of strings",
                            None,
                        )
                    )
                    continue
                record.segments.append(("user", pair[0], ("history", i, 0)))
                record.segments.append(("assistant", pair[1], ("history", i, 1)))
                record.messages.append(Message("user", pair[0], ("history", i, 0), pair))
                record.messages.append(Message("assistant", pair[1], ("history", i, 1), pair))
    strings: dict[str, str] = {}
    for key in ("instruction", "input"):
        if key not in data:
            if key != "input":
                record.problems.append((Kind.MISSING_KEY, (), f"record has no {key!r}", None))
            continue
        value = data[key]
        if type(value) is str:
            strings[key] = value
        elif value is None and key == "input":
            pass
        elif value is None:
            record.problems.append((Kind.MISSING_CONTENT, (key,), f"{key!r} is null", None))
        else:
            record.problems.append((Kind.WRONG_TYPE, (key,), f"{key!r} must be a string, got {type_name(value)}", None))
    if "instruction" in strings:
        instruction = strings["instruction"]
        record.segments.append(("user", instruction, ("instruction",)))
        text = instruction
        extra = strings.get("input", "")
        if extra:
            record.segments.append(("user", extra, ("input",)))
            text = f"{instruction}\n\n{extra}"
        record.messages.append(Message("user", text, ("instruction",), data))


def read_sharegpt(record: Record, data: dict[str, Any]) -> None:
    _system_field(record, data)
    conversations = data.get("conversations")
    if type(conversations) is not list:
        if conversations is None:
            record.problems.append(
                (Kind.MISSING_MESSAGES, ("conversations",), "'conversations' is missing or null", None)
            )
        else:
            record.problems.append(
                (
                    Kind.WRONG_TYPE,
                    ("conversations",),
                    f"'conversations' must be a list of turns, got {type_name(conversations)}",
                    None,
                )
            )
        return
    if not conversations:
        record.problems.append((Kind.MISSING_MESSAGES, ("conversations",), "'conversations' is an empty list", None))
        return
    for i, turn in enumerate(conversations):
        read_sharegpt_turn(record, turn, ("conversations", i))


def read_sharegpt_turn(record: Record, turn: Any, path: PathT) -> None:
    """One ShareGPT ``from``/``value`` turn at ``path``."""
    if type(turn) is not dict:
        record.problems.append((Kind.WRONG_TYPE, path, f"turn must be an object, got {type_name(turn)}", None))
        return
    if "from" in turn:
        role = _role(record, turn["from"], SHAREGPT_ROLES, (*path, "from"))
    else:
        record.problems.append((Kind.MISSING_KEY, path, "turn has no 'from'", None))
        role = "?"
    text = None
    if "value" not in turn:
        record.problems.append((Kind.MISSING_KEY, path, "turn has no 'value'", None))
    else:
        value = turn["value"]
        if type(value) is str:
            text = value
            record.segments.append((role, value, (*path, "value")))
        elif value is None:
            record.problems.append((Kind.MISSING_CONTENT, (*path, "value"), "turn value is null", None))
        else:
            record.problems.append(
                (Kind.WRONG_TYPE, (*path, "value"), f"turn value must be a string, got {type_name(value)}", None)
            )
    record.messages.append(Message(role, text, path, turn, turn.get("from") == "function_call"))
