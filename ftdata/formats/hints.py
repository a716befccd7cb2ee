"""What FT100 says about a record in no type: the nearest type, which of its keys would
fill it, and the ``--map`` that reads the file as that type."""

from __future__ import annotations

from typing import Any

#: Each type by the keys it needs (and how a message names them), in the order tried
#: when two fit equally well.
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "prompt-completion": ("prompt/completion", ("prompt", "completion")),
    "preference": ("prompt/chosen/rejected", ("prompt", "chosen", "rejected")),
    "stepwise-supervision": ("prompt/completions/labels", ("prompt", "completions", "labels")),
    "unpaired-preference": ("prompt/completion/label", ("prompt", "completion", "label")),
    "alpaca": ("instruction/input/output", ("instruction", "output")),
    "messages": ("messages", ("messages",)),
    "text": ("text", ("text",)),
}

#: Key names seen in public files for each target key (lower case; "-" and " " read as "_").
SYNONYMS: dict[str, tuple[str, ...]] = {
    "prompt": (
        "question",
        "query",
        "input",
        "instruction",
        "prompt_text",
        "user",
        "human",
        "problem",
        "source",
        "request",
        "context",
        "q",
    ),
    "completion": (
        "answer",
        "response",
        "output",
        "reply",
        "target",
        "assistant",
        "gpt",
        "solution",
        "completion_text",
        "label_text",
        "a",
    ),
    "chosen": ("preferred", "winner", "good", "accepted", "chosen_response", "response_chosen", "better"),
    "rejected": ("dispreferred", "loser", "bad", "rejected_response", "response_rejected", "worse"),
    "completions": ("steps", "reasoning_steps", "solution_steps"),
    "labels": ("step_labels", "step_scores", "ratings"),
    "label": ("desirable", "kto_label", "is_good", "thumbs_up"),
    "messages": ("conversation", "conversations", "dialog", "dialogue", "chat", "turns", "history"),
    "text": ("content", "document", "body", "passage", "raw_text", "article"),
    "instruction": ("question", "query", "prompt", "task", "definition"),
    "output": ("answer", "response", "completion", "target", "solution"),
}


def _norm(key: str) -> str:
    return key.strip().lower().replace("-", "_").replace(" ", "_")


def instance_list(data: dict[str, Any]) -> str | None:
    """The key of a nested list of examples (Super-NaturalInstructions' ``instances``: a
    task's instruction with many ``input``/``output`` objects), or None."""
    for key, value in data.items():
        if type(value) is list and value and type(value[0]) is dict:
            item = value[0]
            answered = "output" in item or "outputs" in item or "answer" in item
            if answered and ("input" in item or "question" in item or "inputs" in item):
                return key
    return None


def unknown_message(data: dict[str, Any]) -> str:
    """The FT100 message for a record whose keys name no type."""
    keys = ", ".join(repr(k) for k in list(data)[:8]) or "none"
    nested = instance_list(data)
    if nested is not None:
        task = next((k for k in ("instruction", "definition", "task", "prompt") if k in data), None)
        head = f"{task!r} with " if task else ""
        return (
            f"record is a task ({head}a list of examples under {nested!r}), not one example: "
            f"write one alpaca record per item of {nested!r} (instruction, its 'input', its 'output'); "
            f"found keys {keys}"
        )
    best = nearest(data)
    if best is None:
        hint = " (a 'prompt' without a 'completion', or 'chosen' and 'rejected')" if "prompt" in data else ""
        return (
            "record matches no supported format: expected 'messages', 'conversations', "
            "'instruction'+'output', 'prompt'+'completion', 'chosen'+'rejected' or 'text'; "
            f"found keys {keys}{hint}"
        )
    label, have, mapping = best
    parts = [f"record matches no supported format (found keys {keys}); looks like {label}"]
    if have:
        parts.append("has " + ", ".join(repr(k) for k in have))
    if mapping:
        parts.append("--map " + ",".join(f"{s}={t}" for s, t in mapping))
    return ": ".join(parts[:1]) + (": " + "; ".join(parts[1:]) if len(parts) > 1 else "")


def nearest(data: dict[str, Any]) -> tuple[str, list[str], list[tuple[str, str]]] | None:
    """(the type's label, the keys it needs the record already has, the ``source=target``
    pairs that would fill the rest) for the type the record is closest to; None when no
    key of the record says anything about a type."""
    present = {_norm(k): k for k in data if isinstance(k, str)}
    best: tuple[int, int, str, list[str], list[tuple[str, str]]] | None = None
    for order, (label, needed) in enumerate(TYPES.values()):
        have = [k for k in needed if k in data]
        used = set(have)
        mapping: list[tuple[str, str]] = []
        for target in needed:
            if target in data:
                continue
            for synonym in SYNONYMS.get(target, ()):
                source = present.get(synonym)
                if source is not None and source not in used:
                    mapping.append((source, target))
                    used.add(source)
                    break
        # Only a type every key of which the record can fill is worth naming: a half
        # mapping would only trade this finding for a missing-key one.
        if not mapping or len(have) + len(mapping) < len(needed):
            continue
        score = len(needed)  # the type that uses more of the record's keys is nearer
        if best is None or score > best[0]:
            best = (score, order, label, have, mapping)
    if best is None:
        return None
    return best[2], best[3], best[4]
