"""What supervised fine-tuning of a text-only model cannot train, found before any tokenisation.

ftdata reads more than SFT data: preference pairs (DPO), unpaired preference examples (KTO)
and multimodal conversations lint clean and would reach TRL's ``SFTTrainer``, which trains the
chosen side of a pair, every KTO completion (the undesirable ones too), and the text around an
``<image>`` placeholder without the image. Per-message ``weight: 0`` (OpenAI's "do not train this
reply") is ignored by TRL, and a chat template that does not render tool calls trains an empty
reply in their place. Each function here answers one of those questions over the gate's records;
the gate turns the answers into refusals.

The gate's own codes (``FTT1xx``, beside ftdata's ``FTxxx``) can be let through with
``data.allow`` like ftdata's; preference data cannot.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: An assistant message whose ``weight`` (or ``loss_weight``) is 0: TRL trains it anyway.
WEIGHT_ZERO_RULE = "FTT101"
#: A row with tool calls (or tools) that the chat template's output does not contain.
TOOLS_NOT_RENDERED_RULE = "FTT102"
#: A record that references images, video or audio, which a text-only fine-tune never sees.
MULTIMODAL_RULE = "FTT103"
#: The gate's own codes, with what each means (``docs/train.md`` lists them).
GATE_RULES = {
    WEIGHT_ZERO_RULE: "an assistant reply has weight 0 and would be trained anyway",
    TOOLS_NOT_RENDERED_RULE: "the chat template does not render the row's tool calls or tools",
    MULTIMODAL_RULE: "the record references images, video or audio",
}

#: Record keys that carry media files (LLaMA-Factory's, TRL's and axolotl's multimodal layouts).
MEDIA_KEYS = {"images": "images", "image": "images", "videos": "videos", "audios": "audio", "audio": "audio"}
#: Content-part types that carry media (OpenAI's and TRL's multimodal messages).
MEDIA_PARTS = {
    "image": "images",
    "image_url": "images",
    "input_image": "images",
    "video": "videos",
    "video_url": "videos",
    "audio": "audio",
    "input_audio": "audio",
}

#: How each non-SFT format is named (one, many) and what to do with it instead.
_NOT_SFT = {
    "preference": (
        ("DPO preference pair", "DPO preference pairs"),
        "(a chosen and a rejected reply)",
        "to fine-tune on the chosen replies, re-shape each record into messages (the prompt turns, then"
        " the chosen reply); to train on the pairs, use TRL's DPOTrainer",
    ),
    "unpaired-preference": (
        ("KTO example", "KTO examples"),
        "(a completion labelled desirable or undesirable)",
        "to fine-tune on the desirable completions, keep the records with label true and re-shape them"
        " into messages without the label; to train on the labels, use TRL's KTOTrainer",
    ),
}


def not_sft(path: str, split: str, formats: Mapping[str, int]) -> tuple[str, str] | None:
    """Why the file with these record counts by format cannot be SFT data, or None when it can.

    A headline (what the file is, with its record count) and a full line that adds that
    ftdata_train trains supervised fine-tuning and what to do instead."""
    kinds = [name for name in _NOT_SFT if formats.get(name)]
    if not kinds:
        return None
    if len(formats) == 1:
        (one, many), shape, todo = _NOT_SFT[kinds[0]]
        n = formats[kinds[0]]
        headline = f"data.{split}: {path} holds {n:,} {one if n == 1 else many}, not supervised fine-tuning data"
        return headline, f"{headline} {shape}; ftdata_train trains supervised fine-tuning: {todo}"
    counts = ", ".join(f"{n:,} {name}" for name, n in sorted(formats.items(), key=lambda kv: (-kv[1], kv[0])))
    todo = "; ".join(_NOT_SFT[name][2] for name in kinds)
    headline = f"data.{split}: {path} mixes record types ({counts})"
    return headline, (
        f"{headline}; ftdata_train trains supervised fine-tuning on one type at a time and never on"
        f" preference data: split the file by type ({todo})"
    )


def zero_weight_replies(rec: Any) -> int:
    """How many of the record's assistant turns carry ``weight: 0`` (or ``loss_weight: 0``)."""
    n = 0
    for m in rec.messages:
        if m.role != "assistant" or type(m.data) is not dict:
            continue
        if any(_is_zero(m.data.get(key)) for key in ("weight", "loss_weight")):
            n += 1
    return n


def _is_zero(value: Any) -> bool:
    return type(value) in (int, float) and value == 0


def media_of(rec: Any) -> list[str]:
    """The kinds of media (``images``, ``videos``, ``audio``) the record references: a non-empty
    media key, or a content part of a media type."""
    found: set[str] = set()
    data = rec.data if type(rec.data) is dict else {}
    for key, kind in MEDIA_KEYS.items():
        value = data.get(key)
        if value not in (None, "", [], {}):
            found.add(kind)
    for m in rec.messages:
        content = m.data.get("content") if type(m.data) is dict else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") in MEDIA_PARTS:
                    found.add(MEDIA_PARTS[part["type"]])
    return sorted(found)


def media_summary(kinds: Iterable[str]) -> str:
    """``"images"``, ``"images and audio"``."""
    names = sorted(set(kinds))
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def unrendered_tools(row: Mapping[str, Any], rendered: str) -> str | None:
    """What of the row's tool calls or tools the rendered text leaves out, or None.

    ``row`` is in TRL's shape (``messages`` or ``prompt``/``completion``, ``tools`` as JSON);
    ``rendered`` is the chat template's output for it. A call counts as rendered when its function
    name appears, or all its argument names and string values; the tools when one of their names appears."""
    calls = [call for m in _messages_of(row) for call in (m.get("tool_calls") or ()) if isinstance(call, dict)]
    missing = sum(1 for call in calls if not _call_rendered(call, rendered))
    if missing:
        return f"{missing} tool call{'s' if missing != 1 else ''} not rendered"
    tools = row.get("tools")
    tools = _json(tools) if isinstance(tools, str) else tools
    names = [name for name in map(_tool_name, tools or ()) if name]
    if names and not any(name in rendered for name in names):
        return "the tools offered are not rendered"
    return None


def _messages_of(row: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    if "messages" in row:
        return [m for m in row["messages"] or () if isinstance(m, dict)]
    out: list[Mapping[str, Any]] = []
    for key in ("prompt", "completion"):
        value = row.get(key)
        if isinstance(value, list):
            out.extend(m for m in value if isinstance(m, dict))
    return out


def _call_rendered(call: Mapping[str, Any], rendered: str) -> bool:
    function: Any = call.get("function") if isinstance(call.get("function"), dict) else call
    name = function.get("name")
    if isinstance(name, str) and name and name in rendered:
        return True
    arguments = function.get("arguments")
    arguments = _json(arguments) if isinstance(arguments, str) else arguments
    if isinstance(arguments, dict) and arguments:
        # every argument name and string value: one common word alone could be in the prompt
        parts = [str(key) for key in arguments] + [v for v in arguments.values() if isinstance(v, str) and v]
        return all(part in rendered for part in parts)
    return False


def _tool_name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    function: Any = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    name = function.get("name")
    return name if isinstance(name, str) else None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def format_counts(records: Iterable[Any]) -> Counter[str]:
    """The records' formats with their counts (unknown formats as ``"unknown"``)."""
    return Counter(rec.format or "unknown" for rec in records)


__all__ = [
    "GATE_RULES",
    "MULTIMODAL_RULE",
    "TOOLS_NOT_RENDERED_RULE",
    "WEIGHT_ZERO_RULE",
    "format_counts",
    "media_of",
    "media_summary",
    "not_sft",
    "unrendered_tools",
    "zero_weight_replies",
]


def row_tools_unrendered(row: Mapping[str, Any], tok: Any, template: str | None) -> str | None:
    """What of the row's tool calls or tools its rendered training text leaves out (None when
    it has none, or all are rendered)."""
    import json

    if not isinstance(row.get("messages", row.get("prompt")), list):
        return None  # plain text: no chat template, no tool calls
    lists: list[Any] = [row.get(key) for key in ("messages", "prompt", "completion")]
    has_calls = any(
        isinstance(m, dict) and m.get("tool_calls") for value in lists if isinstance(value, list) for m in value
    )
    if not has_calls and not row.get("tools"):
        return None
    tools = row.get("tools")
    tools = json.loads(tools) if isinstance(tools, str) else tools
    messages = row["messages"] if "messages" in row else [*row["prompt"], *row["completion"]]
    rendered = tok.apply_chat_template(messages, tools=tools, tokenize=False, chat_template=template)
    return unrendered_tools(row, rendered)
