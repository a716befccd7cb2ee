"""One record into one of TRL's dataset shapes, or the reason it cannot be: the record
is read into an :class:`~ftdata.curation.convert_read.Example` (a conversation, a
preference pair, an unpaired KTO example, or a text) and the target shape is cut from
it. Pure functions: no I/O.
"""

from __future__ import annotations

from typing import Any

from ftdata.curation.convert_read import WEIGHT_KEYS, Example, Refusal, read_example, reply_start, without_weights
from ftdata.formats import (
    MEDIA_KEYS,
    MESSAGES,
    PREFERENCE,
    PROMPT_COMPLETION,
    STEPWISE,
    TEXT,
    UNPAIRED_PREFERENCE,
    detect,
    read_keys,
)
from ftdata.formats.preference import LABEL_KEYS

#: The shapes ``convert`` writes (``--to``).
TARGETS = ("messages", "prompt-completion", "preference", "text")


def to_shape(example: Example, to: str) -> dict[str, Any]:
    """``example`` as a record of the ``to`` shape (see :data:`TARGETS`). The record's
    own keys (``example.extra``) are carried across unchanged, media lists included
    (TRL's vision types keep ``images`` beside the turns); a key the shape cannot take
    beside its own refuses the record, naming the key, rather than dropping it."""
    media = [k for k in sorted(MEDIA_KEYS) if example.extra.get(k)]
    if to == "text":
        if example.kind != "text":
            lost = f"; its {' and '.join(map(repr, media))} would be lost too" if media else ""
            raise Refusal(
                "needs-chat-template",
                f"a {_kind_name(example)} has turns; writing it as one text needs the model's chat template, "
                f"which a data file does not say{lost}",
            )
        if media:
            raise Refusal(
                "media-in-text",
                f"a language-modelling text cannot hold media: {' and '.join(map(repr, media))} would be dropped",
            )
        out: dict[str, Any] = {"text": example.text}
    elif example.kind == "text":
        raise Refusal("no-turns", "a language-modelling text has no turns to convert; only --to text keeps it")
    elif to == "messages":
        out = _messages_shape(example)
    elif to == "prompt-completion":
        out = _prompt_completion_shape(example)
    elif to == "preference":
        out = _preference_shape(example)
    else:
        raise ValueError(f"unknown target {to!r} (expected one of {', '.join(TARGETS)})")
    if example.tools and to != "text":
        out["tools"] = example.tools
    for key, value in example.extra.items():
        if key in out:
            raise Refusal(
                "key-conflict",
                f"the record's own {key!r} would be replaced by the {key!r} of the {to} shape",
            )
        out[key] = value
    return out


def _kind_name(example: Example) -> str:
    return {"chat": "conversation", "pair": "preference pair", "unpaired": "KTO example"}.get(example.kind, "record")


def _messages_shape(example: Example) -> dict[str, Any]:
    if example.kind == "pair":
        raise Refusal("type-mismatch", "a preference pair is not one conversation; convert it with --to preference")
    messages = example.messages
    if not any(m["role"] == "assistant" for m in messages):
        raise Refusal("no-assistant-turn", "the conversation has no assistant turn to train on", "FT109")
    out: dict[str, Any] = {"messages": messages}
    if example.kind == "unpaired":
        out["label"] = example.label
    return out


def _split(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The prompt and the final reply of a conversation, without per-turn weights, which
    prompt-completion and preference data cannot hold (the prompt is never trained on)."""
    start = reply_start(messages)
    prompt, reply = messages[:start], messages[start:]
    if not reply:
        raise Refusal("no-assistant-turn", "the conversation does not end with an assistant reply", "FT111")
    if not prompt:
        raise Refusal("no-prompt", "the conversation has no turn before the assistant's reply")
    return [without_weights(m) for m in prompt], _trained(reply)


def _trained(reply: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The turns of a completion without their weights, refused when one says it is not
    trained on."""
    for m in reply:
        for key in WEIGHT_KEYS:
            if key in m and m[key] == 0:
                raise Refusal(
                    "weight-conflict",
                    f"a turn of the final reply has {key} 0: a completion is always trained on",
                )
    return [without_weights(m) for m in reply]


def _prompt_completion_shape(example: Example) -> dict[str, Any]:
    if example.kind == "pair":
        raise Refusal("type-mismatch", "a preference pair has two completions; convert it with --to preference")
    prompt, completion = _split(example.messages)
    out: dict[str, Any] = {"prompt": prompt, "completion": completion}
    if example.kind == "unpaired":
        out["label"] = example.label
    return out


def _preference_shape(example: Example) -> dict[str, Any]:
    if example.kind == "chat":
        raise Refusal("not-preference", "a conversation without a rejected reply or a label is not preference data")
    if example.kind == "unpaired":
        prompt, completion = _split(example.messages)
        return {"prompt": prompt, "completion": completion, "label": example.label}
    if not example.chosen or not example.rejected:
        raise Refusal("no-assistant-turn", "the pair lacks a chosen or a rejected reply", "FT702")
    for side, turns in (("chosen", example.chosen), ("rejected", example.rejected)):
        if any(m["role"] != "assistant" for m in turns):
            raise Refusal("no-assistant-turn", f"the {side} reply is not an assistant turn", "FT702")
    if not example.prompt:
        raise Refusal("no-prompt", "the pair has no prompt")
    # a prompt that ends with an assistant turn stays the prompt (FT114 warns about it):
    # the replies are only what the pair holds as chosen and rejected
    prompt = [without_weights(m) for m in example.prompt]
    return {"prompt": prompt, "chosen": _trained(example.chosen), "rejected": _trained(example.rejected)}


def expected_format(to: str, example: Example) -> str:
    """The format ftdata detects in a record of shape ``to`` made from ``example``."""
    if to == "text":
        return TEXT
    if example.kind == "unpaired":
        return UNPAIRED_PREFERENCE
    return {"messages": MESSAGES, "prompt-completion": PROMPT_COMPLETION, "preference": PREFERENCE}[to]


def convert_record(data: dict[str, Any], fmt: str, to: str) -> dict[str, Any]:
    """``data`` (of format ``fmt``) in the ``to`` shape; raises :class:`Refusal`. The
    result is checked to be detected as the intended format, so its keys cannot say
    another one."""
    if fmt == STEPWISE:
        # Step labels have no place in any target shape: refused whatever the target.
        raise Refusal("not-convertible", f"records of the {fmt} format have no conversion to TRL's shapes")
    unlabelled = fmt not in (PREFERENCE, UNPAIRED_PREFERENCE) and not any(type(data.get(k)) is bool for k in LABEL_KEYS)
    if (
        (to == "text") != (fmt == TEXT)
        or (fmt == PREFERENCE and to in ("messages", "prompt-completion"))
        or (to == "preference" and unlabelled)
    ):
        # The type alone rules the target out: say so before looking at the turns.
        media = {k: data[k] for k in MEDIA_KEYS if k in data}
        to_shape(Example({TEXT: "text", PREFERENCE: "pair"}.get(fmt, "chat"), extra=media), to)
    example = read_example(data, fmt)
    out = to_shape(example, to)
    want = expected_format(to, example)
    got = detect(out)
    # A key carried across must not be one the converted record is read from (a
    # ``conversations`` beside the new ``prompt``): it would be read as something else.
    own = [k for k in example.extra if got is not None and k in read_keys(out, got)]
    if got != want or own:
        how = [f"as {got or 'no format'}, not {want}"] if got != want else []
        how += [f"from its own {' and '.join(map(repr, own))}"] if own else []
        raise Refusal("ambiguous-keys", "the converted record would be read " + ", ".join(how))
    return out
