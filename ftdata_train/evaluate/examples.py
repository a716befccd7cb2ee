"""Eval examples: the records of an eval file in the shapes the model and the scorer need, and
their tokenisation for the loss, exactly as training tokenised them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ftdata_train.labels import TokenizedExample


PathLike = str | os.PathLike[str]


class EvalError(ValueError):
    """An evaluation that cannot run: an unreadable model, adapter or eval file."""


# ---------------------------------------------------------------------------------------------
# Eval examples


@dataclass(frozen=True, slots=True)
class EvalExample:
    """One eval record, in the shapes the model and the scorer need.

    ``record`` is a ``messages`` or ``prompt``/``completion`` record (other formats are
    converted to ``messages``); ``conversation`` is what the loss is computed on (the whole
    record as trained), ``prompt`` what the model continues (every turn before the last
    assistant reply, or the prompt text) and ``reference`` that reply (a tool call as its
    calls, one JSON line each).
    """

    index: int
    line: int | None
    record: dict[str, Any]
    prompt: list[dict[str, Any]] | str
    reference: str
    tools: Any = None

    @property
    def chat(self) -> bool:
        return not isinstance(self.prompt, str)

    def prompt_text(self) -> str:
        """The prompt as plain text, one ``role: content`` line group per turn."""
        if isinstance(self.prompt, str):
            return self.prompt
        return "\n\n".join(f"{m.get('role')}: {content_text(m.get('content'))}" for m in self.prompt)


@dataclass(frozen=True, slots=True)
class Skipped:
    """An eval record that was not scored: its file, its line (None when unknown) and why."""

    source: str
    line: int | None
    reason: str

    @property
    def where(self) -> str:
        """``file:line``."""
        return f"{self.source}:{self.line}" if self.line is not None else self.source

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "reason": self.reason}


def read_eval_file(path: PathLike, *, limit: int | None = None) -> tuple[list[EvalExample], list[Skipped]]:
    """The eval examples of a JSONL or JSON file (at most ``limit``) and the records skipped
    on the way, each with its line and why: unreadable (the reader's reason) or without an
    assistant reply. Raises :class:`EvalError` when the file cannot be read."""
    from ftdata.formats import normalise
    from ftdata.io import ReadStats, read
    from ftdata.records import Record

    file = Path(path)
    if not file.is_file():
        raise EvalError(f"{file}: no such eval file")
    examples: list[EvalExample] = []
    skipped: list[Skipped] = []
    try:
        for item in read(file, ReadStats()):
            if not isinstance(item, Record):
                continue
            if limit is not None and len(examples) >= limit:
                break
            if type(item.data) is dict:
                normalise(item)
            if not item.readable:
                why = next((message for _, _, message, _ in item.problems), "not a record ftdata can read")
                skipped.append(Skipped(str(file), item.line, f"unreadable: {why}"))
                continue
            example = _example(item)
            if example is None:
                skipped.append(Skipped(str(file), item.line, "no assistant reply"))
            else:
                examples.append(example)
    except OSError as exc:
        raise EvalError(f"{file}: cannot read the eval file ({exc.strerror or exc})") from exc
    return examples, skipped


def read_examples(path: PathLike, *, limit: int | None = None) -> tuple[list[EvalExample], list[str]]:
    """The eval examples of a JSONL or JSON file and notes on what was skipped (unreadable
    records and records without an assistant reply are skipped, counted, with their lines;
    :func:`read_eval_file` gives them one by one). Raises :class:`EvalError` when the file
    cannot be read."""
    examples, skipped = read_eval_file(path, limit=limit)
    return examples, skipped_notes(skipped)


def skipped_notes(skipped: Sequence[Skipped]) -> list[str]:
    """One note per reason a record was skipped, with the count and the lines."""
    unreadable = [s.line for s in skipped if s.reason.startswith("unreadable")]
    no_reply = [s.line for s in skipped if not s.reason.startswith("unreadable")]
    notes = []
    if unreadable:
        notes.append(f"skipped {len(unreadable)} unreadable record(s) at line(s) {_lines(unreadable)}")
    if no_reply:
        notes.append(f"skipped {len(no_reply)} record(s) without an assistant reply at line(s) {_lines(no_reply)}")
    return notes


def _lines(lines: Sequence[int | None]) -> str:
    shown = ", ".join(str(n) for n in lines[:10] if n is not None)
    return shown + (", ..." if len(lines) > 10 else "")


def _example(record: Any) -> EvalExample | None:
    data = record.data
    if record.format == "prompt-completion" and isinstance(data.get("prompt"), str):
        if not isinstance(data.get("completion"), str):
            return None
        return EvalExample(
            record.index,
            record.line,
            {"prompt": data["prompt"], "completion": data["completion"]},
            data["prompt"],
            data["completion"],
        )
    if record.format == "messages" and isinstance(data.get("messages"), list):
        messages = [dict(m) for m in data["messages"] if isinstance(m, Mapping)]
        tools = data.get("tools")
    elif record.format == "prompt-completion":
        prompt, completion = data.get("prompt"), data.get("completion")
        if not isinstance(prompt, list) or not isinstance(completion, list):
            return None
        messages = [dict(m) for m in prompt + completion if isinstance(m, Mapping)]
        tools = data.get("tools")
    else:  # ShareGPT, Alpaca: as training renders them, function_call turns as tool calls
        from ftdata.tokens import chat_messages, chat_tools

        messages = chat_messages(record)
        tools = chat_tools(record)
    k = last_assistant(messages)
    if k is None:
        return None
    from ftdata_train.evaluate.toolcalls import calls_text, reference_calls

    calls = reference_calls(messages[k])
    reference = calls_text(calls) if calls else content_text(messages[k].get("content"))
    out: dict[str, Any] = {"messages": messages}
    if tools is not None:
        out["tools"] = tools
    return EvalExample(record.index, record.line, out, messages[:k], reference, tools)


def training_row(example: EvalExample) -> dict[str, Any]:
    """The example as a row in TRL's shape (``messages`` with optional ``tools``, or plain-text
    ``prompt``/``completion``), for :func:`ftdata_train.labels.tokenize_example`."""
    if not example.chat:
        return {"prompt": example.prompt, "completion": example.reference}
    row: dict[str, Any] = {"messages": example.record["messages"]}
    if example.tools is not None:
        row["tools"] = example.tools
    return row


def tokenize_for_loss(
    example: EvalExample, tokenizer: Any, *, max_length: int | None = None, loss: str = "auto"
) -> TokenizedExample:
    """Tokenise ``example`` exactly as training did (:func:`ftdata_train.labels.tokenize_example`:
    the chat template's assistant-token mask for a conversation, the completion and its
    end-of-sequence token for prompt/completion text), truncated to ``max_length``. Raises
    :class:`EvalError` when the loss cannot be had (a template without ``{% generation %}``
    markers)."""
    from ftdata_train.labels import LossError, example_kind, resolve_loss, tokenize_example, training_chat_template

    row = training_row(example)
    try:
        resolved = resolve_loss(example_kind(row), loss)
        template = training_chat_template(tokenizer, resolved)
        return tokenize_example(row, tokenizer, max_length=max_length, loss=resolved, chat_template=template)
    except LossError as exc:
        raise EvalError(str(exc)) from None


def prompt_ids(example: EvalExample, tokenizer: Any, max_length: int | None) -> list[int]:
    """The token ids the model continues: the prompt with the generation prompt, its end kept."""
    if example.chat:
        encoded = tokenizer.apply_chat_template(
            example.prompt, tools=example.tools, tokenize=True, return_dict=True, add_generation_prompt=True
        )
        ids = list(encoded["input_ids"])
    else:
        ids = list(tokenizer(example.prompt)["input_ids"])
    # Keep the end of an overlong prompt: it holds the question and the generation prompt.
    return ids[-max_length:] if max_length is not None else ids


def last_assistant(messages: Sequence[Any]) -> int | None:
    """The index of the last assistant turn, or None."""
    for k in range(len(messages) - 1, -1, -1):
        m = messages[k]
        if isinstance(m, Mapping) and m.get("role") == "assistant":
            return k
    return None


def content_text(value: Any) -> str:
    """A turn's text: a string, or the text parts of a content list joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p.get("text", "") for p in value if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""
