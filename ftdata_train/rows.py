"""Records as the rows TRL reads, and the ``datasets.Dataset`` that holds them.

Message lists are stored with the ``Json`` feature, one JSON object per message: with plain
Arrow structs every message would get the union of all messages' keys (``tool_calls: None`` on
a plain reply, the arguments of every other tool as ``None``), which a chat template testing
``'tool_calls' in message`` renders wrongly or refuses.
"""

from __future__ import annotations

from typing import Any

import orjson


def record_kind(rec: Any, loss: str) -> str:
    """The row shape a record becomes: ``messages``, ``prompt_completion`` (plain text),
    ``chat_prompt_completion`` or ``text`` (language modelling: TRL's ``dataset_text_field``)."""
    from ftdata.formats import PROMPT_COMPLETION, TEXT

    if rec.format == TEXT:
        return "text"
    if rec.format == PROMPT_COMPLETION:
        data = rec.data
        if isinstance(data.get("prompt"), str) and isinstance(data.get("completion"), str):
            return "prompt_completion"
        return "chat_prompt_completion"
    # Completion-only loss on conversations: the last assistant turn is the completion.
    return "chat_prompt_completion" if loss == "completion" else "messages"


def trl_rows(records: list[Any], kind: str) -> list[dict[str, Any]]:
    """The records as rows in TRL's shape (``kind`` from :func:`record_kind`), with ``tools`` as a
    JSON string."""
    from ftdata.formats import PROMPT_COMPLETION
    from ftdata.tokens import chat_messages

    rows: list[dict[str, Any]] = []
    for rec in records:
        data = rec.data
        if kind == "text":
            row: dict[str, Any] = {"text": data["text"]}
        elif kind == "prompt_completion":
            row = {"prompt": data["prompt"], "completion": data["completion"]}
        else:
            messages = chat_messages(rec)
            if kind == "messages":
                row = {"messages": messages}
            elif rec.format == PROMPT_COMPLETION:
                row = {
                    "prompt": [m for m, src in zip(messages, rec.messages, strict=True) if src.path[:1] == ("prompt",)],
                    "completion": [
                        m for m, src in zip(messages, rec.messages, strict=True) if src.path[:1] == ("completion",)
                    ],
                }
            else:
                last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
                row = {"prompt": messages[:last], "completion": messages[last:]}
        tools = data.get("tools")
        if tools is not None:
            row["tools"] = tools if isinstance(tools, str) else orjson.dumps(tools).decode()
        rows.append(row)
    if any("tools" in row for row in rows):
        for row in rows:
            row.setdefault("tools", None)
    return rows


def dataset_of(rows: list[dict[str, Any]]) -> Any:
    """The rows as a ``datasets.Dataset``; message lists keep each message as in the file."""
    from datasets import Dataset, Features, Json, List, Value

    if not rows:
        return Dataset.from_list([])
    features = {}
    for column, value in rows[0].items():
        features[column] = List(Json()) if isinstance(value, list) else Value("string")
    return Dataset.from_list(rows, features=Features(features))


__all__ = ["dataset_of", "record_kind", "trl_rows"]
