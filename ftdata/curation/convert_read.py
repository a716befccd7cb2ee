"""Reading a record of any format ftdata knows into one :class:`Example` of TRL-style
messages: ``role``, ``content`` (a string, or a list of parts when the turn holds images
or audio), ``reasoning_content``, ``tool_calls`` as ``{"type": "function", "function":
{"name", "arguments"}}`` with the arguments as an object, and ``tool`` results with the
``name`` of their call. Pure functions: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ftdata.formats import (
    ALPACA,
    MESSAGES,
    OPENAI_ROLES,
    PREFERENCE,
    PROMPT_COMPLETION,
    SHAREGPT,
    SHAREGPT_ROLES,
    TEXT,
    UNPAIRED_PREFERENCE,
    read_keys,
    unpaired_shape,
)
from ftdata.formats.preference import LABEL_KEYS

#: Message keys a per-turn training weight is given under.
WEIGHT_KEYS = ("weight", "loss_weight")
_PART_TEXT = ("text", "value")
_REASONING_PARTS = ("reasoning", "thinking")
_MESSAGE_ORDER = ("role", "content", "reasoning_content", "tool_calls", "tool_call_id", "name")


class Refusal(Exception):
    """Why a record cannot be written in the target shape: a stable ``reason`` (a
    kebab-case word), a sentence, and the rule that explains it (None when none does)."""

    def __init__(self, reason: str, detail: str, rule: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.rule = rule


@dataclass
class Example:
    """A record read out of its source format. ``kind`` is ``chat`` (``messages``),
    ``pair`` (``prompt``/``chosen``/``rejected``), ``unpaired`` (``messages`` and
    ``label``) or ``text``. ``extra`` holds the top-level keys the record's dialect is
    not read from (an ``id``, ``images``; see :func:`ftdata.formats.read_keys`), carried
    across unchanged."""

    kind: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    prompt: list[dict[str, Any]] = field(default_factory=list)
    chosen: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    label: bool | None = None
    text: str | None = None
    tools: list[Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_example(data: dict[str, Any], fmt: str) -> Example:
    """``data`` (a record detected or forced as ``fmt``) as an :class:`Example`."""
    # OpenAI's legacy "functions" declares the same thing as "tools".
    tools = _tools(data["tools"] if "tools" in data else data.get("functions"))
    label_key = _label_key(data) if fmt in (UNPAIRED_PREFERENCE, ALPACA, SHAREGPT) else None
    label = bool(data[label_key]) if label_key is not None else None
    # Only what the dialect is read from is consumed: the rest (media lists, an id) is carried.
    consumed = read_keys(data, fmt) - set(LABEL_KEYS) | ({label_key} if label_key else set())
    extra = {k: v for k, v in data.items() if k not in consumed}
    if fmt == TEXT:
        return Example("text", text=_string(data, "text"), extra=extra)
    if fmt == PREFERENCE:
        ex = _pair(data)
        ex.tools, ex.extra = tools, extra
        return ex
    shape = unpaired_shape(data) if fmt == UNPAIRED_PREFERENCE else fmt  # KTO files are any chat layout
    if shape == MESSAGES and "messages" not in data and "conversations" in data:
        # OpenAI-style messages under ShareGPT's key: each turn is read by its own keys.
        messages = _message_list(data.get("conversations"), "conversations")
    elif shape == MESSAGES:
        messages = _message_list(data.get("messages"), "messages")
    elif shape == PROMPT_COMPLETION:
        messages = _side(data.get("prompt"), "prompt", "user") + _side(
            data.get("completion"), "completion", "assistant"
        )
    elif shape == ALPACA:
        messages = [*_alpaca_prompt(data), {"role": "assistant", "content": _string(data, "output")}]
    elif shape == SHAREGPT:
        messages = _system(data) + _turns(data.get("conversations"), "conversations")
    else:
        raise Refusal("not-convertible", f"records of the {fmt} format have no conversion to TRL's shapes")
    if fmt == UNPAIRED_PREFERENCE or label is not None:
        if label is None:
            key = next((k for k in LABEL_KEYS if k in data), LABEL_KEYS[0])
            raise Refusal("invalid-label", f"{key!r} must be true or false", "FT704")
        return Example("unpaired", messages=messages, label=label, tools=tools, extra=extra)
    return Example("chat", messages=messages, tools=tools, extra=extra)


def _label_key(data: dict[str, Any]) -> str | None:
    """The key a KTO label is given under as a boolean (``label`` or ``kto_tag``); None
    when there is none."""
    return next((key for key in LABEL_KEYS if type(data.get(key)) is bool), None)


def _string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if type(value) is not str:
        raise Refusal("unreadable", f"{key!r} must be a string", "FT102")
    return value


def _tools(value: Any) -> list[Any] | None:
    """The ``tools`` declaration as a list of ``{"type": "function", "function": ...}``
    (LLaMA-Factory writes a JSON string of bare ``{"name", "parameters"}`` entries)."""
    if value is None or value == "" or value == []:
        return None
    if type(value) is str:
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Refusal("unconvertible-tools", "'tools' is a string that is not JSON", "FT118") from None
    if type(value) is dict:
        value = [value]
    if type(value) is not list:
        raise Refusal("unconvertible-tools", "'tools' must be a list of tool definitions", "FT118")
    out = []
    for k, tool in enumerate(value):
        if type(tool) is not dict:
            raise Refusal("unconvertible-tools", f"tool definition {k} is not an object", "FT118")
        out.append(tool if "function" in tool else {"type": "function", "function": tool})
    return out or None


def _system(data: dict[str, Any]) -> list[dict[str, Any]]:
    system = data.get("system")
    if system is None or system == "":
        return []
    if type(system) is not str:
        raise Refusal("unreadable", "'system' must be a string", "FT102")
    return [{"role": "system", "content": system}]


def _alpaca_prompt(data: dict[str, Any]) -> list[dict[str, Any]]:
    """System, history pairs, then instruction and input joined by a newline (as
    LLaMA-Factory joins them; an empty input adds nothing)."""
    out = _system(data)
    history = data.get("history") or []
    if type(history) is not list:
        raise Refusal("unreadable", "'history' must be a list of [prompt, response] pairs", "FT102")
    for pair in history:
        if type(pair) is not list or len(pair) != 2 or not all(type(x) is str for x in pair):
            raise Refusal("unreadable", "a history entry must be a [prompt, response] pair of strings", "FT102")
        out += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    query = [_string(data, "instruction")]
    extra = data.get("input")
    if extra is not None and type(extra) is not str:
        raise Refusal("unreadable", "'input' must be a string", "FT102")
    if extra:
        query.append(extra)
    out.append({"role": "user", "content": "\n".join(query)})
    return out


def _side(value: Any, key: str, role: str) -> list[dict[str, Any]]:
    """A ``prompt`` or ``completion``: a string (one turn of ``role``) or a list of turns."""
    if type(value) is str:
        return [{"role": role, "content": value}]
    return _message_list(value, key)


def _message_list(value: Any, key: str) -> list[dict[str, Any]]:
    """A list of OpenAI messages or ShareGPT turns, whichever each item's keys say."""
    if type(value) is not list or not value:
        raise Refusal("unreadable", f"{key!r} must be a non-empty list of messages", "FT102")
    return _turns(value, key)


def _turns(value: Any, key: str) -> list[dict[str, Any]]:
    if type(value) is not list or not value:
        raise Refusal("unreadable", f"{key!r} must be a non-empty list of turns", "FT102")
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # the calls not answered yet, for tool results
    for i, turn in enumerate(value):
        if type(turn) is not dict:
            raise Refusal("unreadable", f"{key}[{i}] is not an object", "FT102")
        m = _sharegpt_turn(turn, f"{key}[{i}]") if "from" in turn else _openai_message(turn, f"{key}[{i}]")
        if m["role"] == "assistant":
            pending = list(m.get("tool_calls", ()))
        elif m["role"] == "tool":
            split = _results(m, pending) if len(pending) > 1 else None
            if split is not None:
                out += split
                pending = []
                continue
            if pending and "name" not in m:
                m["name"] = pending[0]["function"]["name"]
                m = _ordered(m)
            pending = pending[1:]
        out.append(m)
    return out


def _results(m: dict[str, Any], pending: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """One tool message per result when a single one answers parallel calls with a JSON
    list of ``{"name", "content"}`` results, one per call, in order (as LLaMA-Factory's
    files do): chat templates expect a tool message for each call. A result's
    ``tool_call_id`` becomes the id of its call when the call has none. None otherwise."""
    content = m.get("content")
    if type(content) is not str or set(m) - {"role", "content"} or not content.lstrip().startswith("["):
        return None
    try:
        items = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if len(items) != len(pending) or not all(type(i) is dict and "content" in i for i in items):
        return None
    out = []
    for item, call in zip(items, pending, strict=True):
        value = item["content"]
        r: dict[str, Any] = {"role": "tool", "content": value if type(value) is str else orjson.dumps(value).decode()}
        call_id = item.get("tool_call_id")
        if type(call_id) is str and call.get("id", call_id) == call_id:
            if "id" not in call:  # the id first, as in any other call
                rest = dict(call)
                call.clear()
                call.update({"id": call_id, **rest})
            r["tool_call_id"] = call_id
        r["name"] = item["name"] if type(item.get("name")) is str else call["function"]["name"]
        out.append(r)
    return out


def _role(raw: Any, table: dict[str, str], where: str) -> str:
    canon = table.get(raw.strip()) if type(raw) is str else None
    if canon is None:
        raise Refusal("unknown-role", f"{where}: unrecognised role {raw!r}", "FT107")
    return canon


def _sharegpt_turn(turn: dict[str, Any], where: str) -> dict[str, Any]:
    raw = turn["from"]
    role = _role(raw, SHAREGPT_ROLES, where)
    value = turn.get("value")
    if type(value) is not str:
        raise Refusal("unreadable", f"{where}: a turn's 'value' must be a string", "FT102")
    m: dict[str, Any] = {"role": role}
    if type(raw) is str and raw.strip() == "function_call":
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Refusal("unconvertible-tool-call", f"{where}: the function_call value is not JSON", "FT116") from None
        calls = parsed if type(parsed) is list else [parsed]
        m["tool_calls"] = [_call(c, where) for c in calls]
    else:
        m["content"] = value
    for k, v in turn.items():
        if k not in ("from", "value"):
            m[k] = v
    return m


def _openai_message(turn: dict[str, Any], where: str) -> dict[str, Any]:
    if "role" not in turn:
        raise Refusal("unreadable", f"{where}: a message has no 'role'", "FT104")
    role = _role(turn["role"], OPENAI_ROLES, where)
    m: dict[str, Any] = {"role": role}
    calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    content = turn.get("content")
    if type(content) is list:
        content = _parts(content, where, calls, reasoning)
    elif content is not None and type(content) is not str:
        raise Refusal("unreadable", f"{where}: 'content' must be a string or a list of parts", "FT102")
    if type(turn.get("tool_calls")) is list:
        calls = [_call(c, where) for c in turn["tool_calls"]] + calls
    elif "tool_calls" in turn and turn["tool_calls"] is not None:
        raise Refusal("unconvertible-tool-call", f"{where}: 'tool_calls' must be a list", "FT116")
    if type(turn.get("function_call")) is dict:
        calls.append(_call(turn["function_call"], where))
    if content is not None and not (calls and content == ""):
        m["content"] = content
    elif not calls and not reasoning:
        raise Refusal("missing-content", f"{where}: a message without content or tool calls", "FT108")
    elif not calls:
        m["content"] = ""
    if reasoning:
        m["reasoning_content"] = "".join(reasoning)
    if calls:
        m["tool_calls"] = calls
    for k, v in turn.items():
        if k not in ("role", "content", "tool_calls", "function_call") and k not in m:
            m[k] = v
    return _ordered(m)


def _parts(parts: list[Any], where: str, calls: list[dict[str, Any]], reasoning: list[str]) -> Any:
    """Typed content parts: text joined into a string (kept as parts, text under
    ``text``, when images or audio are among them), reasoning and tool calls set aside."""
    texts: list[str] = []
    kept: list[Any] = []
    media = False
    for part in parts:
        if type(part) is str:
            texts.append(part)
            kept.append({"type": "text", "text": part})
            continue
        if type(part) is not dict:
            raise Refusal("unreadable", f"{where}: a content part must be an object", "FT102")
        kind = part.get("type", "text")
        text = next((part[k] for k in _PART_TEXT if type(part.get(k)) is str), None)
        if kind == "text":
            if text is None:
                raise Refusal("unreadable", f"{where}: a text part has no string 'text'", "FT102")
            texts.append(text)
            kept.append({"type": "text", "text": text})
        elif kind in _REASONING_PARTS:
            reasoning.append(text or "")
        elif kind == "tool_call":
            value = part.get("value", part.get("text"))
            try:
                value = orjson.loads(value) if type(value) is str else value
            except orjson.JSONDecodeError:
                raise Refusal("unconvertible-tool-call", f"{where}: a tool_call part is not JSON", "FT116") from None
            calls.extend(_call(c, where) for c in (value if type(value) is list else [value]))
        else:
            media = True
            kept.append(part)
    return kept if media else "".join(texts)


def _call(call: Any, where: str) -> dict[str, Any]:
    """One tool call as ``{"type": "function", "function": {"name", "arguments"}}``
    (its ``id`` kept), arguments as an object; from an OpenAI call or a bare
    ``{"name", "arguments"}``."""
    if type(call) is not dict:
        raise Refusal("unconvertible-tool-call", f"{where}: a tool call is not an object", "FT116")
    fn = call.get("function", call)
    if type(fn) is not dict or type(fn.get("name")) is not str or not fn["name"].strip():
        raise Refusal("unconvertible-tool-call", f"{where}: a tool call has no function name", "FT116")
    args = fn.get("arguments", fn.get("parameters", {}))
    if type(args) is str:
        try:
            args = orjson.loads(args) if args.strip() else {}
        except orjson.JSONDecodeError:
            raise Refusal(
                "unconvertible-tool-call", f"{where}: the arguments of {fn['name']!r} are not JSON", "FT116"
            ) from None
    if type(args) is not dict:
        raise Refusal("unconvertible-tool-call", f"{where}: the arguments of {fn['name']!r} are not an object", "FT116")
    out: dict[str, Any] = {}
    if "id" in call:
        out["id"] = call["id"]
    out["type"] = "function"
    out["function"] = {"name": fn["name"], "arguments": args}
    return out


def _ordered(m: dict[str, Any]) -> dict[str, Any]:
    """A message's keys in one order (role, content, ..., then any others as they came)."""
    out = {k: m[k] for k in _MESSAGE_ORDER if k in m}
    out.update((k, v) for k, v in m.items() if k not in out)
    return out


def reply_start(messages: list[dict[str, Any]]) -> int:
    """Where the final reply starts: after the last turn that is not the assistant's."""
    k = len(messages)
    while k > 0 and messages[k - 1]["role"] == "assistant":
        k -= 1
    return k


def _pair(data: dict[str, Any]) -> Example:
    """A preference pair in any dialect ftdata reads, with its prompt made explicit."""
    if "chosen_messages" in data or "rejected_messages" in data:
        return _implicit(data, "chosen_messages", "rejected_messages")
    if "conversations" in data:
        prompt = _system(data) + _turns(data.get("conversations"), "conversations")
    elif "instruction" in data:
        prompt = _alpaca_prompt(data)
    elif "prompt" in data:
        prompt = _side(data["prompt"], "prompt", "user")
    elif type(data.get("chosen")) is list or type(data.get("rejected")) is list:
        return _implicit(data, "chosen", "rejected")
    else:
        raise Refusal(
            "no-prompt",
            "two strings with no prompt: the prompt would have to be guessed from their shared prefix",
        )
    return Example("pair", prompt=prompt, chosen=_reply(data, "chosen"), rejected=_reply(data, "rejected"))


def _reply(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if type(value) is str:
        return [{"role": "assistant", "content": value}]
    if type(value) is dict:
        return _turns([value], key)
    return _message_list(value, key)


def _implicit(data: dict[str, Any], chosen_key: str, rejected_key: str) -> Example:
    chosen = _message_list(data.get(chosen_key), chosen_key)
    rejected = _message_list(data.get(rejected_key), rejected_key)
    a, b = reply_start(chosen), reply_start(rejected)
    if [without_weights(m) for m in chosen[:a]] != [without_weights(m) for m in rejected[:b]]:
        raise Refusal("prompt-mismatch", f"{chosen_key!r} and {rejected_key!r} do not share their prompt", "FT703")
    return Example("pair", prompt=chosen[:a], chosen=chosen[a:], rejected=rejected[b:])


def without_weights(m: dict[str, Any]) -> dict[str, Any]:
    """A message without its training weight (which does not make it another turn)."""
    return {k: v for k, v in m.items() if k not in WEIGHT_KEYS}
