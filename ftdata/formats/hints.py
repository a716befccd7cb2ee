"""What FT100 says about a record in no type: the nearest type, which of its keys would
fill it, and the ``--map`` that reads the file as that type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ftdata.problems import Problem
from ftdata.records import Problem as RecordProblem

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
        mapping = fillers(present, [k for k in needed if k not in data], set(have))
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


def fillers(
    present: dict[str, str],
    targets: list[str],
    used: set[str],
    fits: Callable[[str, str], bool] | None = None,
) -> list[tuple[str, str]]:
    """The ``(source, target)`` pairs by which keys of a record would fill ``targets``:
    for each target, the first of its :data:`SYNONYMS` among ``present`` (the record's
    keys by their normalised name) not in ``used`` and, when given, that ``fits(source,
    target)``. ``used`` gains the sources taken, so no key fills two targets."""
    mapping: list[tuple[str, str]] = []
    for target in targets:
        for synonym in SYNONYMS.get(target, ()):
            source = present.get(synonym)
            if source is not None and source not in used and (fits is None or fits(source, target)):
                mapping.append((source, target))
                used.add(source)
                break
    return mapping


#: What a type's reader takes at each key it requires (anything else is FT102), so that a
#: leftover key is offered only for a key it could fill.
ACCEPTS: dict[str, tuple[type, ...]] = {
    "instruction": (str,),
    "output": (str,),
    "text": (str,),
    "prompt": (str, list),
    "completion": (str, list),
    "chosen": (str, list, dict),
    "rejected": (str, list, dict),
    "chosen_messages": (list,),
    "rejected_messages": (list,),
    "messages": (list,),
    "completions": (list,),
    "labels": (list,),
    "label": (bool,),
}
#: The message of a missing required key (FT104; FT103 for ``messages``) as the readers
#: write it, and the key.
MISSING_MESSAGE = {f"record has no {key!r}": key for key in ACCEPTS} | {"record has no 'messages' list": "messages"}
_MISSING_KINDS = frozenset({Problem.MISSING_KEY, Problem.MISSING_MESSAGES})


def missing_fillers(data: dict[str, Any], missing: list[str], known: frozenset[str]) -> list[tuple[str, str]]:
    """The ``(source, target)`` pairs by which keys of ``data`` that its type does not
    know (not in ``known``) would fill the ``missing`` keys it requires, each source a
    value of a type the target takes (a string where a string is wanted)."""
    present = {_norm(k): k for k in data if isinstance(k, str) and k not in known}

    def fits(source: str, target: str) -> bool:
        return type(data[source]) in ACCEPTS.get(target, ())

    return fillers(present, missing, set(), fits)


def hint_missing(
    problems: list[RecordProblem], data: dict[str, Any], known: frozenset[str], given: tuple[tuple[str, str], ...] = ()
) -> None:
    """End each "record has no KEY" problem in ``problems`` (a record's, taken for a
    type whose keys are ``known``) that a leftover key of ``data`` could fill with the
    ``--map`` that reads the file: the mapping ``given`` for the run, then the pairs that
    fill every such missing key. Problems are rewritten in place."""
    at = [
        (k, MISSING_MESSAGE[message])
        for k, (kind, path, message, _) in enumerate(problems)
        if kind in _MISSING_KINDS and not path and message in MISSING_MESSAGE
    ]
    if not at:
        return
    pairs = missing_fillers(data, [key for _, key in at], known)
    if not pairs:
        return
    source_of = {t: s for s, t in pairs}
    # A pair of the run's own mapping whose target is filled here did not fill it.
    kept = [(s, t) for s, t in given if t not in source_of]
    text = ",".join(f"{s}={t}" for s, t in (*kept, *pairs))
    for k, key in at:
        source = source_of.get(key)
        if source is not None:
            kind, path, message, offset = problems[k]
            problems[k] = (kind, path, f"{message}; its key {source!r} would fill it: --map {text}", offset)
