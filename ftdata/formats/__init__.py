"""Detect a record's format and normalise it to one chat view.

Supported: OpenAI-style ``messages``, ``prompt``/``completion`` (plain strings or, as in
TRL, lists of messages), Alpaca (``instruction``/``input``/``output``, with the optional
``system`` and ``history`` of LLaMA-Factory), ShareGPT (``conversations`` of
``from``/``value`` turns, including ``function_call``/``observation`` turns), language
modelling ``text``, preference pairs (``chosen``/``rejected`` in TRL's, LLaMA-Factory's
and the ``chosen_messages``/``rejected_messages`` dialects) and unpaired preference (KTO:
a ``label`` beside ``prompt``/``completion`` or ``messages``) and stepwise supervision
(``prompt``/``completions``/``labels``). docs/formats.md maps each one to the record view.

A file with its own key names is read through a field mapping
(:mod:`ftdata.formats.fields`): ``normalise`` takes a *format spec*, a format name with an
optional mapping (``prompt-completion[question=prompt,answer=completion]``).

The normaliser never raises: what it cannot make sense of becomes a problem named after
the rule that reports it (a :class:`ftdata.problems.Problem` such as ``MISSING_KEY``),
and the rest of the record is still normalised so later rules can look at it.
"""

from __future__ import annotations

from typing import Any

from ftdata import problems
from ftdata.formats.chat import (
    OPENAI_ROLES,
    SHAREGPT_ROLES,
    message_list,
    openai_turns,
    read_alpaca,
    read_messages,
    read_prompt_completion,
    read_sharegpt,
)
from ftdata.formats.fields import (
    FieldMap,
    FieldsError,
    FormatSpec,
    apply_fields,
    compose,
    parse_map,
    parse_spec,
)
from ftdata.formats.hints import hint_missing, instance_list, unknown_message
from ftdata.formats.preference import LABEL_KEYS, read_preference, read_text, read_unpaired
from ftdata.formats.stepwise import read_stepwise
from ftdata.problems import Problem as Kind
from ftdata.records import Record

MESSAGES = "messages"
PROMPT_COMPLETION = "prompt-completion"
ALPACA = "alpaca"
SHAREGPT = "sharegpt"
TEXT = "text"
PREFERENCE = "preference"
UNPAIRED_PREFERENCE = "unpaired-preference"
STEPWISE = "stepwise-supervision"
FORMATS = (MESSAGES, PROMPT_COMPLETION, ALPACA, SHAREGPT, TEXT, PREFERENCE, UNPAIRED_PREFERENCE, STEPWISE)

MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "weight", "loss_weight", "function_call"}
)
SHAREGPT_TURN_KEYS = frozenset({"from", "value", "weight"})
TOP_LEVEL_KEYS = {
    MESSAGES: frozenset({"messages", "conversations", "tools", "parallel_tool_calls", "functions"}),
    # TRL's SFTTrainer passes a prompt-completion record's own ``tools`` to the chat template.
    PROMPT_COMPLETION: frozenset({"prompt", "completion", "tools"}),
    ALPACA: frozenset({"instruction", "input", "output", "system", "history"}),
    SHAREGPT: frozenset({"conversations", "system", "tools"}),
    TEXT: frozenset({"text"}),
    PREFERENCE: frozenset(
        {
            "prompt",
            "chosen",
            "rejected",
            "chosen_messages",
            "rejected_messages",
            "conversations",
            "instruction",
            "input",
            "history",
            "system",
            "tools",
        }
    ),
    # TRL's prompt/completion and messages, and LLaMA-Factory's Alpaca and ShareGPT KTO files.
    UNPAIRED_PREFERENCE: frozenset(
        {
            "prompt",
            "completion",
            "messages",
            "conversations",
            "instruction",
            "input",
            "output",
            "system",
            "history",
            "label",
            "kto_tag",
            "tools",
        }
    ),
    STEPWISE: frozenset({"prompt", "completions", "labels"}),
}
#: Media reference lists any chat format may carry (LLaMA-Factory, TRL's vision types); FT122 checks them.
MEDIA_KEYS = frozenset({"images", "videos", "audios"})
TOP_LEVEL_KEYS = {fmt: keys | MEDIA_KEYS if fmt != TEXT else keys for fmt, keys in TOP_LEVEL_KEYS.items()}
#: Every problem kind the normaliser emits; each is the name of a registered rule.
PROBLEM_KINDS = problems.NORMALISER


def detect(data: dict[str, Any]) -> str | None:
    """The format a parsed record looks like, from its keys; None when none fits."""
    if "messages" in data:
        return UNPAIRED_PREFERENCE if _kto_label(data, chat=True) else MESSAGES
    if "chosen_messages" in data or "rejected_messages" in data:
        return PREFERENCE
    if ("chosen" in data or "rejected" in data) and "completion" not in data:
        return PREFERENCE
    if "conversations" in data:
        if _kto_label(data, chat=True):
            return UNPAIRED_PREFERENCE  # LLaMA-Factory's ShareGPT KTO file
        return MESSAGES if openai_turns(data["conversations"]) else SHAREGPT
    if "instruction" in data:
        if "output" not in data and instance_list(data) is not None:
            return None  # a task with a list of examples, not one example
        # LLaMA-Factory's Alpaca KTO file: the output is the completion the tag judges.
        return UNPAIRED_PREFERENCE if _kto_label(data, chat=True) else ALPACA
    if "prompt" in data and "completions" in data:
        return STEPWISE
    if "prompt" in data and "completion" in data:
        return UNPAIRED_PREFERENCE if _kto_label(data, chat=False) else PROMPT_COMPLETION
    if "text" in data:
        return TEXT
    return None


#: The keys each chat layout's reader takes its turns from (``messages`` means TRL's key;
#: OpenAI messages under ``conversations`` are read from that key instead).
_SHAPE_KEYS = {
    MESSAGES: frozenset({"messages"}),
    PROMPT_COMPLETION: frozenset({"prompt", "completion"}),
    ALPACA: frozenset({"instruction", "input", "output", "system", "history"}),
    SHAREGPT: frozenset({"conversations", "system"}),
}


def read_keys(data: dict[str, Any], fmt: str) -> frozenset[str]:
    """The top-level keys of ``data`` that its own dialect of ``fmt`` is read from: the
    turns, the tool declarations and the KTO label. The rest, even where ``fmt`` allows
    it (``images``, a ``system`` beside TRL's ``prompt``, ``parallel_tool_calls``), is not
    part of the turns and is the record's own to keep."""
    if fmt == TEXT:
        return frozenset({"text"})
    if fmt == STEPWISE:
        return TOP_LEVEL_KEYS[STEPWISE]
    if fmt == PREFERENCE:
        if "chosen_messages" in data or "rejected_messages" in data:
            keys = frozenset({"chosen_messages", "rejected_messages"})
        elif "conversations" in data:
            keys = _SHAPE_KEYS[SHAREGPT] | {"chosen", "rejected"}
        elif "instruction" in data:
            keys = _SHAPE_KEYS[ALPACA] - {"output"} | {"chosen", "rejected"}
        else:
            keys = frozenset({"prompt", "chosen", "rejected"})
    else:
        shape = unpaired_shape(data) if fmt == UNPAIRED_PREFERENCE else fmt
        keys = _SHAPE_KEYS.get(shape, frozenset())
        if shape == MESSAGES and "messages" not in data:
            keys = frozenset({"conversations"})
        if fmt == UNPAIRED_PREFERENCE:
            keys |= {next((k for k in LABEL_KEYS if k in data), LABEL_KEYS[0])}
    # OpenAI's legacy "functions" declares what "tools" does; read only when "tools" is absent.
    return keys | {"tools" if "tools" in data or "functions" not in data else "functions"}


def unpaired_shape(data: dict[str, Any]) -> str:
    """The chat format an unpaired-preference record's conversation is written in:
    ``messages`` (also OpenAI messages under ``conversations``), ``sharegpt``, ``alpaca``
    or ``prompt-completion`` (LLaMA-Factory's KTO files are Alpaca or ShareGPT)."""
    if "messages" in data:
        return MESSAGES
    if "conversations" in data:
        return MESSAGES if openai_turns(data["conversations"]) else SHAREGPT
    if "instruction" in data:
        return ALPACA
    return PROMPT_COMPLETION


def _kto_label(data: dict[str, Any], *, chat: bool) -> bool:
    """Whether the record carries a KTO label. ``kto_tag`` (LLaMA-Factory's column) always
    does. ``prompt``/``completion`` with a ``label`` is TRL's unpaired preference type
    whatever the label holds (a wrong type is then reported); beside ``messages``,
    ``conversations`` or an Alpaca ``instruction`` (``chat``) a ``label`` may be a class
    label kept as metadata, so only a boolean, or a boolean written as 0/1 or text, makes
    it KTO."""
    if "kto_tag" in data:
        return True
    if "label" not in data:
        return False
    if not chat:
        return True
    label = data["label"]
    if type(label) is bool or (type(label) is int and label in (0, 1)):
        return True
    return type(label) is str and label.strip().lower() in ("true", "false")


def normalise(record: Record, forced: str | None = None) -> None:
    """Fill ``record.format``, ``.messages``, ``.segments`` and append problems.

    ``forced`` is a format spec: a format name (None: detect it) with, optionally, a
    field mapping (``[question=prompt,answer=completion]``) applied to ``record.data``
    first. A malformed spec is a programming error (ValueError); the front doors
    validate what users write."""
    spec = parse_spec(forced) if forced and ("[" in forced or forced not in FORMATS) else None
    if spec is not None:
        forced = spec.format
        if spec.fields and type(record.data) is dict:
            mapped = spec.fields.apply(record.data)
            if mapped != record.data:
                record.original = record.data
                record.data = mapped
                record.fields = spec.fields
    data = record.data
    fmt = forced or detect(data)
    record.format = fmt
    if fmt is None:
        record.problems.append((Kind.UNKNOWN_FORMAT, (), unknown_message(data), None))
        return
    if fmt == MESSAGES:
        if "messages" not in data and openai_turns(data.get("conversations")):
            message_list(record, data["conversations"], "conversations")
        else:
            read_messages(record, data)
    elif fmt == SHAREGPT:
        read_sharegpt(record, data)
    elif fmt == ALPACA:
        read_alpaca(record, data)
    elif fmt == TEXT:
        read_text(record, data)
    elif fmt == PREFERENCE:
        read_preference(record, data)
    elif fmt == UNPAIRED_PREFERENCE:
        read_unpaired(record, data)
    elif fmt == STEPWISE:
        read_stepwise(record, data)
    else:
        read_prompt_completion(record, data)
    if record.problems:
        given = spec.fields.pairs if spec is not None and spec.fields else ()
        hint_missing(record.problems, data, TOP_LEVEL_KEYS.get(fmt, frozenset()), given)


__all__ = [
    "ALPACA",
    "FORMATS",
    "LABEL_KEYS",
    "MEDIA_KEYS",
    "MESSAGES",
    "MESSAGE_KEYS",
    "OPENAI_ROLES",
    "PREFERENCE",
    "PROBLEM_KINDS",
    "PROMPT_COMPLETION",
    "SHAREGPT",
    "SHAREGPT_ROLES",
    "SHAREGPT_TURN_KEYS",
    "STEPWISE",
    "TEXT",
    "TOP_LEVEL_KEYS",
    "UNPAIRED_PREFERENCE",
    "FieldMap",
    "FieldsError",
    "FormatSpec",
    "apply_fields",
    "compose",
    "detect",
    "normalise",
    "parse_map",
    "parse_spec",
    "read_keys",
    "unpaired_shape",
]
