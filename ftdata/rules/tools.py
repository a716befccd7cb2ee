"""FT116, FT118: tool calls and tool declarations."""

from __future__ import annotations

from typing import Any

import orjson

from ftdata.findings import Issue, PathT, Severity
from ftdata.formats import MESSAGES, PREFERENCE, PROMPT_COMPLETION, SHAREGPT, UNPAIRED_PREFERENCE
from ftdata.formats.chat import tool_call_parts
from ftdata.jsonstrict import syntax_error
from ftdata.records import Message, Record
from ftdata.registry import rule

_ARGUMENT_KINDS = ("string", "object", "any")
#: Formats whose records may declare ``tools`` at the top level.
_DECLARING = (MESSAGES, SHAREGPT, PROMPT_COMPLETION, PREFERENCE, UNPAIRED_PREFERENCE)


@rule("FT116", "malformed-tool-call", severity=Severity.ERROR)
def malformed_tool_call(record: Record, *, arguments: str = "any", require_ids: bool = False) -> list[Issue] | None:
    """## What it does
    Checks tool calls and tool results. An assistant's `tool_calls` must be a non-empty
    list of `{"type": "function", "function": {"name", "arguments"}}` whose `arguments`
    is a JSON object (or a JSON string holding one); a `tool` message must follow a call
    (and, when ids are used, carry the `tool_call_id` of an earlier call); a call must be
    answered before the
    conversation goes on; a called function must be among the declared `tools`, when
    there are any. ShareGPT `function_call` turns must hold a JSON object with a `name`
    and be followed by an `observation`. KTO examples are checked too, undesirable ones
    included: a call that does not parse breaks the chat template whatever the label.

    ## Why is this bad?
    The model learns the exact bytes of the call. Arguments as an object where the
    provider expects a string (or the reverse) are rejected or rendered wrongly, a
    result that cannot be matched to its call teaches nonsense, and an undeclared
    function teaches the model to call tools that do not exist.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{city: Paris}"}}]}]}
    ```

    Use instead (`arguments` as a JSON object, or a JSON string holding one), answered:
    ```json
    {"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "18°C"}, {"role": "assistant", "content": "18°C in Paris."}]}
    ```

    ## Options
    - `arguments` (str, default "any"): what `arguments` must be: `string` (a JSON
      string, as OpenAI requires: the `openai` profile), `object` (a JSON object, as
      Hugging Face chat templates and TRL expect) or `any` (either).
    - `require_ids` (bool, default false): require `id` on calls and `tool_call_id` on
      results (OpenAI does: the `openai` profile; TRL and most open-model templates do
      not). A `tool_call_id` that is given must still match an earlier call.
    """
    if arguments not in _ARGUMENT_KINDS:
        raise ValueError(f"option 'arguments' must be one of {', '.join(_ARGUMENT_KINDS)}")
    pattern = record.pattern
    if "C" not in pattern and "T" not in pattern:  # no tool call, no tool result
        return None
    fmt = record.format
    if fmt == SHAREGPT or (fmt == UNPAIRED_PREFERENCE and "conversations" in record.data):
        return _sharegpt_calls(record)
    if fmt not in (MESSAGES, PROMPT_COMPLETION, UNPAIRED_PREFERENCE):
        return None
    messages = record.messages
    out: list[Issue] = []
    declared = _declared_tools(record.data.get("tools"))
    open_calls: dict[str, str] = {}
    pending = 0  # calls made by the last assistant turn not answered yet
    made = False
    inline = inline_turn = False
    for m in messages:
        data = m.data if type(m.data) is dict else {}
        if m.role == "assistant":
            if pending:
                out.append(
                    Issue(f"{pending} tool call(s) are not answered by a tool message before this turn", path=m.path)
                )
            pending = 0
            made = made or m.tool_calls
            if "tool_calls" in data:
                pending = _check_calls(
                    data["tool_calls"], (*m.path, "tool_calls"), arguments, require_ids, declared, open_calls, out
                )
            if "function_call" in data:
                _check_function(data["function_call"], (*m.path, "function_call"), arguments, declared, out)
                pending += 1
            parts = tool_call_parts(data.get("content"))
            inline_turn = bool(parts)
            if parts:
                # LLaMA-Factory v1 writes calls inline, without ids: results cannot name them.
                inline = True
                pending += len(parts)
                for k in parts:
                    _check_inline_call(data["content"][k], (*m.path, "content", k), declared, out)
        elif m.role == "tool":
            # v1 files answer a turn's inline calls in one tool message (a JSON list of results).
            pending = 0 if inline_turn else max(0, pending - 1)
            _check_result(m, data, made, require_ids and not inline, open_calls, out)
        elif m.role == "user" and pending:
            out.append(
                Issue(f"{pending} tool call(s) are not answered by a tool message before this turn", path=m.path)
            )
            pending = 0
    return out or None


def _check_calls(
    calls: Any,
    path: PathT,
    arguments: str,
    require_ids: bool,
    declared: set[str] | None,
    open_calls: dict[str, str],
    out: list[Issue],
) -> int:
    if type(calls) is not list or not calls:
        out.append(Issue("'tool_calls' must be a non-empty list", path=path))
        return 0
    for k, call in enumerate(calls):
        p = (*path, k)
        if type(call) is not dict:
            out.append(Issue("a tool call must be an object", path=p))
            continue
        call_id = call.get("id")
        if call_id is None:
            if require_ids:
                out.append(Issue("tool call has no 'id'", path=p))
        elif type(call_id) is not str or not call_id:
            out.append(Issue("tool call 'id' must be a non-empty string", path=(*p, "id")))
        else:
            open_calls[call_id] = ""
        kind = call.get("type", "function")
        if kind != "function":
            out.append(Issue(f"tool call type must be 'function', got {kind!r}", path=(*p, "type")))
        if "function" not in call:
            out.append(Issue("tool call has no 'function'", path=p))
            continue
        name = _check_function(call["function"], (*p, "function"), arguments, declared, out)
        if name and type(call_id) is str:
            open_calls[call_id] = name
    return len(calls)


def _check_inline_call(part: dict[str, Any], path: PathT, declared: set[str] | None, out: list[Issue]) -> None:
    """A ``{"type": "tool_call", "value": "{json}"}`` content part: a JSON object with a
    ``name`` and object ``arguments`` (a string holding one is accepted too)."""
    key = "value" if "value" in part else "text"
    value = part.get(key)
    vpath = (*path, key)
    if type(value) is str:
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            out.append(Issue(f"tool call is not valid JSON: {syntax_error(part[key]) or 'unreadable'}", path=vpath))
            return
    if type(value) is not dict:
        out.append(Issue("a tool_call part must hold a JSON object with 'name' and 'arguments'", path=vpath))
        return
    name = value.get("name")
    if type(name) is not str or not name.strip():
        out.append(Issue("tool call has no 'name'", path=vpath))
    elif declared is not None and name not in declared:
        out.append(Issue(f"calls {name!r}, which is not among the declared tools", path=vpath))
    args = value.get("arguments", {})
    if type(args) is str:
        try:
            args = orjson.loads(args)
        except orjson.JSONDecodeError:
            out.append(Issue("tool call arguments is not valid JSON", path=vpath))
            return
    if type(args) is not dict:
        out.append(Issue("tool call arguments must be a JSON object", path=vpath))


def _check_function(fn: Any, path: PathT, arguments: str, declared: set[str] | None, out: list[Issue]) -> str | None:
    if type(fn) is not dict:
        out.append(Issue("'function' must be an object with 'name' and 'arguments'", path=path))
        return None
    name = fn.get("name")
    if type(name) is not str or not name.strip():
        out.append(Issue("function call has no 'name'", path=path))
        name = None
    elif declared is not None and name not in declared:
        out.append(Issue(f"calls {name!r}, which is not among the declared tools", path=(*path, "name")))
    if "arguments" not in fn:
        out.append(Issue("function call has no 'arguments'", path=path))
        return name
    args = fn["arguments"]
    apath = (*path, "arguments")
    if type(args) is str:
        if arguments == "object":
            out.append(Issue("arguments must be a JSON object, got a string", path=apath))
        else:
            try:
                parsed = orjson.loads(args)
            except orjson.JSONDecodeError:
                out.append(Issue(f"arguments is not valid JSON: {syntax_error(args) or 'unreadable'}", path=apath))
            else:
                if type(parsed) is not dict:
                    out.append(Issue("arguments must encode a JSON object", path=apath))
    elif type(args) is dict:
        if arguments == "string":
            out.append(Issue("arguments must be a JSON-encoded string, got an object", path=apath))
    else:
        out.append(Issue("arguments must be a JSON string or object", path=apath))
    return name


def _check_result(
    m: Message, data: dict[str, Any], made: bool, require_ids: bool, open_calls: dict[str, str], out: list[Issue]
) -> None:
    if not made:
        out.append(Issue("tool message without a preceding tool call", path=m.path))
        return
    if "tool_call_id" not in data:
        if require_ids and data.get("role") == "tool":
            out.append(Issue("tool message has no 'tool_call_id'", path=m.path))
        return
    call_id = data["tool_call_id"]
    if call_id not in open_calls:
        out.append(Issue(f"tool_call_id {call_id!r} matches no earlier tool call", path=(*m.path, "tool_call_id")))


def _declared_tools(tools: Any) -> set[str] | None:
    if type(tools) is str:
        try:
            tools = orjson.loads(tools)
        except orjson.JSONDecodeError:
            return None
    if type(tools) is not list or not tools:
        return None
    names = set()
    for t in tools:
        if type(t) is dict:
            fn = t.get("function", t)
            if type(fn) is dict and type(fn.get("name")) is str:
                names.add(fn["name"])
    return names or None


def _sharegpt_calls(record: Record) -> list[Issue] | None:
    messages = record.messages
    out: list[Issue] = []
    declared = _declared_tools(record.data.get("tools"))
    for i, m in enumerate(messages):
        nxt = messages[i + 1] if i + 1 < len(messages) else None
        if m.tool_calls:
            path = (*m.path, "value")
            try:
                call = orjson.loads(m.text or "")
            except orjson.JSONDecodeError:
                out.append(Issue("function_call value is not valid JSON", path=path))
                call = None
            if call is not None:
                if type(call) is not dict or type(call.get("name")) is not str:
                    out.append(Issue("function_call value must be a JSON object with a 'name'", path=path))
                elif declared is not None and call["name"] not in declared:
                    out.append(Issue(f"calls {call['name']!r}, which is not among the declared tools", path=path))
            if nxt is not None and nxt.role != "tool":
                out.append(Issue("function_call is not followed by an observation", path=nxt.path))
        elif m.role == "tool":
            prev = messages[i - 1] if i else None
            if prev is None or not (prev.tool_calls or prev.role == "tool"):
                out.append(Issue("observation without a preceding function_call", path=m.path))
    return out or None


@rule("FT118", "malformed-tools", severity=Severity.ERROR)
def malformed_tools(record: Record) -> list[Issue] | None:
    """## What it does
    Checks the top-level `tools` declaration: a list (or, as ShareGPT and LLaMA-Factory's
    v1 files write it, a JSON string of a list) of `{"type": "function", "function": {"name", "description", "parameters"}}`
    where `parameters` is a JSON Schema object. Plain `{"name", "parameters"}` entries,
    as some open-model datasets write them, are accepted.

    ## Why is this bad?
    The declaration is rendered into the prompt; a broken one teaches the model a tool
    list that does not parse, and OpenAI rejects the file.

    ## Example
    ```json
    {"tools": [{"type": "function", "function": {"parameters": {}}}], "messages": []}
    ```
    """
    data = record.data
    if "tools" not in data or record.format not in _DECLARING:
        return None
    tools = data["tools"]
    path: PathT = ("tools",)
    encoded = type(tools) is str
    if encoded:
        # ShareGPT and LLaMA-Factory's v1 messages files declare tools as a JSON string of
        # the list: accepted when it holds a list, which is then checked like one.
        try:
            tools = orjson.loads(tools)
        except orjson.JSONDecodeError:
            return [Issue(f"'tools' is not valid JSON: {syntax_error(data['tools']) or 'unreadable'}", path=path)]
        if type(tools) is not list:
            return [Issue(f"'tools' is a JSON string of {_kind(tools)}, not of a list of tool definitions", path=path)]
    if tools is None:
        return None
    if type(tools) is not list:
        return [Issue("'tools' must be a list of tool definitions", path=path)]
    out = []
    for k, tool in enumerate(tools):
        # Inside a JSON string nothing can be pointed at: the finding names the position.
        p = path if encoded else (*path, k)
        at = f"tool {k + 1}: " if encoded else ""

        if type(tool) is not dict:
            out.append(Issue(f"{at}a tool definition must be an object", path=p))
            continue
        if "function" in tool:
            if tool.get("type", "function") != "function":
                out.append(
                    Issue(
                        f"{at}tool type must be 'function', got {tool.get('type')!r}", path=_under(p, encoded, "type")
                    )
                )
            fn = tool["function"]
            p = _under(p, encoded, "function")
        else:
            fn = tool
        if type(fn) is not dict:
            out.append(Issue(f"{at}'function' must be an object", path=p))
            continue
        if type(fn.get("name")) is not str or not fn["name"].strip():
            out.append(Issue(f"{at}tool definition has no 'name'", path=p))
        params = fn.get("parameters")
        if params is not None and type(params) is not dict:
            out.append(Issue(f"{at}'parameters' must be a JSON Schema object", path=_under(p, encoded, "parameters")))
    return out or None


def _under(path: PathT, encoded: bool, *keys: str | int) -> PathT:
    """``path`` extended by ``keys``, except inside a JSON string, which cannot be pointed into."""
    return path if encoded else (*path, *keys)


def _kind(value: Any) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
