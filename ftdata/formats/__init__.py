"""Detect a record's format and normalise it to one chat view.

Supported: OpenAI-style ``messages``, ``prompt``/``completion`` (plain strings or, as in
TRL, lists of messages), Alpaca (``instruction``/``input``/``output``, with the optional
``system`` and ``history`` of LLaMA-Factory), ShareGPT (``conversations`` of
``from``/``value`` turns, including ``function_call``/``observation`` turns), language
modelling ``text``, preference pairs (``chosen``/``rejected`` in TRL's, LLaMA-Factory's
and the ``chosen_messages``/``rejected_messages`` dialects) and unpaired preference (KTO:
a ``label`` beside ``prompt``/``completion`` or ``messages``). docs/formats.md maps each
one to the record view.

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
    read_alpaca,
    read_messages,
    read_prompt_completion,
    read_sharegpt,
)
from ftdata.formats.preference import LABEL_KEYS, read_preference, read_text, read_unpaired
from ftdata.problems import Problem as Kind
from ftdata.records import Record

MESSAGES = "messages"
PROMPT_COMPLETION = "prompt-completion"
ALPACA = "alpaca"
SHAREGPT = "sharegpt"
TEXT = "text"
PREFERENCE = "preference"
UNPAIRED_PREFERENCE = "unpaired-preference"
FORMATS = (MESSAGES, PROMPT_COMPLETION, ALPACA, SHAREGPT, TEXT, PREFERENCE, UNPAIRED_PREFERENCE)

MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "weight", "loss_weight", "function_call"}
)
SHAREGPT_TURN_KEYS = frozenset({"from", "value", "weight"})
TOP_LEVEL_KEYS = {
    MESSAGES: frozenset({"messages", "tools", "parallel_tool_calls", "functions"}),
    PROMPT_COMPLETION: frozenset({"prompt", "completion"}),
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
    UNPAIRED_PREFERENCE: frozenset({"prompt", "completion", "messages", "label", "kto_tag", "tools"}),
}
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
        return SHAREGPT
    if "instruction" in data:
        return ALPACA
    if "prompt" in data and "completion" in data:
        return UNPAIRED_PREFERENCE if _kto_label(data, chat=False) else PROMPT_COMPLETION
    if "text" in data:
        return TEXT
    return None


def _kto_label(data: dict[str, Any], *, chat: bool) -> bool:
    """Whether the record carries a KTO label. ``prompt``/``completion`` with a ``label``
    is TRL's unpaired preference type whatever the label holds (a wrong type is then
    reported); beside ``messages`` a ``label`` may be a class label kept as metadata, so
    only a boolean, or a boolean written as 0/1 or text, makes it KTO."""
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
    """Fill ``record.format``, ``.messages``, ``.segments`` and append problems."""
    data = record.data
    fmt = forced or detect(data)
    record.format = fmt
    if fmt is None:
        record.problems.append((Kind.UNKNOWN_FORMAT, (), _unknown_message(data), None))
        return
    if fmt == MESSAGES:
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
    else:
        read_prompt_completion(record, data)


def _unknown_message(data: dict[str, Any]) -> str:
    keys = ", ".join(repr(k) for k in list(data)[:8]) or "none"
    hint = ""
    if "prompt" in data:
        hint = " (a 'prompt' without a 'completion', or 'chosen' and 'rejected')"
    return (
        "record matches no supported format: expected 'messages', 'conversations', "
        f"'instruction'+'output', 'prompt'+'completion', 'chosen'+'rejected' or 'text'; found keys {keys}{hint}"
    )


__all__ = [
    "ALPACA",
    "FORMATS",
    "LABEL_KEYS",
    "MESSAGES",
    "MESSAGE_KEYS",
    "OPENAI_ROLES",
    "PREFERENCE",
    "PROBLEM_KINDS",
    "PROMPT_COMPLETION",
    "SHAREGPT",
    "SHAREGPT_ROLES",
    "SHAREGPT_TURN_KEYS",
    "TEXT",
    "TOP_LEVEL_KEYS",
    "UNPAIRED_PREFERENCE",
    "detect",
    "normalise",
]
