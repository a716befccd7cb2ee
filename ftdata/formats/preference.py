"""Language-modelling text, preference pairs and unpaired preference (KTO)."""

from __future__ import annotations

import json
from typing import Any

from ftdata.formats.chat import (
    message_list,
    openai_turns,
    read_alpaca,
    read_alpaca_prompt,
    read_messages,
    read_prompt_completion,
    read_sharegpt,
    read_sharegpt_turn,
    type_name,
)
from ftdata.problems import Problem as Kind
from ftdata.records import Message, Record

#: The keys a KTO record may give its label under (TRL's ``label``; ``kto_tag`` is the
#: column LLaMA-Factory's dataset_info.json names by default).
LABEL_KEYS = ("label", "kto_tag")


def read_text(record: Record, data: dict[str, Any]) -> None:
    """Language modelling: the whole ``text`` is trained on, so it is one assistant turn
    with no prompt (rules that need turns skip the format; see docs/formats.md)."""
    value = data["text"]
    if type(value) is str:
        record.segments.append(("assistant", value, ("text",)))
        record.messages.append(Message("assistant", value, ("text",), value))
    elif value is None:
        record.problems.append((Kind.MISSING_CONTENT, ("text",), "'text' is null", None))
    else:
        record.problems.append((Kind.WRONG_TYPE, ("text",), f"'text' must be a string, got {type_name(value)}", None))


def _reply_start(messages: list[Message]) -> int:
    """Where the last reply of a conversation starts: after its last non-assistant turn."""
    k = len(messages)
    while k > 0 and messages[k - 1].role == "assistant":
        k -= 1
    return k


def _aside(record: Record, fill: Any) -> list[Message]:
    """The messages ``fill(record)`` normalises, kept out of the record's view: problems
    are still recorded (with their paths), but the turns and their text are returned
    instead of joining ``messages`` and ``segments``, which content rules judge."""
    messages, segments = record.messages, record.segments
    record.messages, record.segments = [], []
    try:
        fill(record)
        return record.messages
    finally:
        record.messages, record.segments = messages, segments


def _reply(record: Record, data: dict[str, Any], key: str) -> None:
    """A preference reply at ``key``: a string, a list of messages (or of ShareGPT turns)
    or, as in LLaMA-Factory, a single ShareGPT turn object."""
    if key not in data:
        record.problems.append((Kind.MISSING_KEY, (), f"record has no {key!r}", None))
        return
    value = data[key]
    if type(value) is str:
        record.segments.append(("assistant", value, (key,)))
        record.messages.append(Message("assistant", value, (key,), value))
    elif type(value) is dict and "from" in value:
        read_sharegpt_turn(record, value, (key,))
    elif type(value) is list and value and all(type(t) is dict and "from" in t for t in value):
        for i, turn in enumerate(value):
            read_sharegpt_turn(record, turn, (key, i))
    elif type(value) is list:
        message_list(record, value, key)
    elif value is None:
        record.problems.append((Kind.MISSING_CONTENT, (key,), f"{key!r} is null", None))
    else:
        record.problems.append(
            (Kind.WRONG_TYPE, (key,), f"{key!r} must be a string or a list of messages, got {type_name(value)}", None)
        )


def read_preference(record: Record, data: dict[str, Any]) -> None:
    """A preference pair. The view is the conversation trained towards (prompt + chosen)
    in ``messages``; ``reply`` is its chosen part and ``rejected`` the rejected reply,
    kept out of ``segments`` so that content rules never judge it."""
    if "chosen_messages" in data or "rejected_messages" in data:
        _implicit(record, data, "chosen_messages", "rejected_messages")
        return
    if "conversations" in data:
        read_sharegpt(record, data)
    elif "instruction" in data:
        read_alpaca_prompt(record, data)
    elif "prompt" in data:
        read_prompt(record, data["prompt"])
    elif type(data.get("chosen")) is list or type(data.get("rejected")) is list:
        _implicit(record, data, "chosen", "rejected")
        return
    # Else two strings sharing a prefix: TRL finds the prompt in the text, and so the view
    # holds the chosen string alone.
    start = len(record.messages)
    _reply(record, data, "chosen")
    record.reply = record.messages[start:]
    record.rejected = _aside(record, lambda r: _reply(r, data, "rejected"))


def _implicit(record: Record, data: dict[str, Any], chosen: str, rejected: str) -> None:
    """Implicit prompt: ``chosen`` and ``rejected`` are whole conversations and the prompt
    is the turns they share before their last reply."""
    for key in (chosen, rejected):
        if key not in data:
            record.problems.append((Kind.MISSING_KEY, (), f"record has no {key!r}", None))
    if chosen in data:
        _reply(record, data, chosen)
    if rejected not in data:
        record.reply = record.messages[_reply_start(record.messages) :]
        return
    other = _aside(record, lambda r: _reply(r, data, rejected))
    mine, theirs = _reply_start(record.messages), _reply_start(other)
    record.reply = record.messages[mine:]
    record.rejected = other[theirs:]
    if chosen not in data or not record.messages or not other:
        return
    prompt = [(m.role, m.text) for m in record.messages[:mine]]
    if prompt == [(m.role, m.text) for m in other[:theirs]]:
        return
    at = next((k for k, (a, b) in enumerate(zip(prompt, other[:theirs])) if a != (b.role, b.text)), None)
    if at is not None:
        path, detail = other[at].path, f"turn {at + 1} differs"
    else:
        at = min(mine, theirs)
        path = other[at].path if at < len(other) else (rejected,)
        detail = f"the chosen reply follows {mine} turns, the rejected one {theirs}"
    record.problems.append(
        (Kind.PROMPT_MISMATCH, path, f"{chosen!r} and {rejected!r} do not share their prompt: {detail}", None)
    )


def read_prompt(record: Record, value: Any) -> None:
    """A ``prompt``: a string (a user turn) or a list of messages."""
    if type(value) is str:
        record.segments.append(("user", value, ("prompt",)))
        record.messages.append(Message("user", value, ("prompt",), value))
    elif type(value) is list:
        message_list(record, value, "prompt")
    else:
        record.problems.append(
            (
                Kind.WRONG_TYPE,
                ("prompt",),
                f"'prompt' must be a string or a list of messages, got {type_name(value)}",
                None,
            )
        )


def read_unpaired(record: Record, data: dict[str, Any]) -> None:
    """Unpaired preference (KTO): a conversation and whether its completion is desirable.
    ``reply`` is the completion; ``label`` True, False, or None when it is not a boolean.

    The conversation is TRL's ``messages`` or ``prompt``/``completion``, or LLaMA-Factory's
    Alpaca (the ``output`` is the completion) or ``conversations`` (ShareGPT turns, or
    OpenAI messages under that key; the last reply is the completion)."""
    if "messages" in data:
        read_messages(record, data)
        record.reply = record.messages[_reply_start(record.messages) :]
    elif "conversations" in data:
        if openai_turns(data["conversations"]):
            message_list(record, data["conversations"], "conversations")
        else:
            read_sharegpt(record, data)
        record.reply = record.messages[_reply_start(record.messages) :]
    elif "instruction" in data:
        read_alpaca(record, data)
        # Alpaca's turns are fields of the record, not turn objects: the message rules
        # that read a turn's keys (FT105) must not take the record's keys for them.
        record.messages = [Message(m.role, m.text, m.path, m.text, m.tool_calls) for m in record.messages]
        record.reply = [m for m in record.messages if m.path == ("output",)]
    else:
        read_prompt_completion(record, data)
        record.reply = [m for m in record.messages if m.path[:1] == ("completion",)]
    key = next((k for k in LABEL_KEYS if k in data), LABEL_KEYS[0])
    if key not in data:
        record.problems.append((Kind.MISSING_KEY, (), f"record has no {key!r}", None))
        return
    label = data[key]
    if type(label) is bool:
        record.label = label
    else:
        record.problems.append(
            (
                Kind.INVALID_LABEL,
                (key,),
                f"{key!r} must be true (desirable) or false (undesirable), got {_show(label)}",
                None,
            )
        )


def _show(value: Any) -> str:
    """A scalar as JSON writes it (``"yes"``, ``1``, ``null``); a container by its type."""
    if type(value) in (dict, list):
        return f"an {type_name(value)}"
    return json.dumps(value, ensure_ascii=False)
