"""Stepwise supervision (TRL's PRM type): a prompt, the steps of one reply, a label per step."""

from __future__ import annotations

from typing import Any

from ftdata.findings import plural
from ftdata.formats.chat import type_name
from ftdata.formats.preference import read_prompt
from ftdata.problems import Problem as Kind
from ftdata.records import Message, Record


def read_stepwise(record: Record, data: dict[str, Any]) -> None:
    """``prompt`` is the user turn (a string, or messages); the ``completions`` (the steps)
    are one assistant reply, each step a segment of its own; ``labels`` must be one
    boolean per step (FT120, FT121)."""
    if "prompt" not in data:
        record.problems.append((Kind.MISSING_KEY, (), "record has no 'prompt'", None))
    else:
        read_prompt(record, data["prompt"])
    steps = data.get("completions")
    count: int | None = None
    if "completions" not in data:
        record.problems.append((Kind.MISSING_KEY, (), "record has no 'completions'", None))
    elif type(steps) is not list:
        record.problems.append(
            (
                Kind.WRONG_TYPE,
                ("completions",),
                f"'completions' must be a list of steps (strings), got {type_name(steps)}",
                None,
            )
        )
    elif not steps:
        record.problems.append((Kind.MISSING_MESSAGES, ("completions",), "'completions' is an empty list", None))
        count = 0
    else:
        count = len(steps)
        texts: list[str] = []
        for k, step in enumerate(steps):
            if type(step) is str:
                record.segments.append(("assistant", step, ("completions", k)))
                texts.append(step)
            else:
                record.problems.append(
                    (Kind.WRONG_TYPE, ("completions", k), f"a step must be a string, got {type_name(step)}", None)
                )
        reply = Message("assistant", "\n".join(texts), ("completions",), steps)
        record.messages.append(reply)
        record.reply = [reply]
    _labels(record, data, count)


def _labels(record: Record, data: dict[str, Any], count: int | None) -> None:
    if "labels" not in data:
        record.problems.append((Kind.MISSING_KEY, (), "record has no 'labels'", None))
        return
    labels = data["labels"]
    if type(labels) is not list:
        record.problems.append(
            (
                Kind.INVALID_STEP_LABEL,
                ("labels",),
                f"'labels' must be a list of booleans, one per step, got {type_name(labels)}",
                None,
            )
        )
        return
    for k, label in enumerate(labels):
        if type(label) is not bool:
            shown = repr(label) if type(label) in (str, int, float) else type_name(label)
            record.problems.append(
                (Kind.INVALID_STEP_LABEL, ("labels", k), f"step label {k + 1} must be true or false, got {shown}", None)
            )
    if count is not None and len(labels) != count:
        record.problems.append(
            (
                Kind.STEPWISE_LENGTH_MISMATCH,
                ("labels",),
                f"{plural(len(labels), 'label')} for {plural(count, 'step')}: "
                "'labels' needs one boolean per item of 'completions'",
                None,
            )
        )
