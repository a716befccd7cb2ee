"""Records as the rows TRL reads, and the ``datasets.Dataset`` that holds them.

Message lists are stored with the ``Json`` feature, one JSON object per message: with plain
Arrow structs every message would get the union of all messages' keys (``tool_calls: None`` on
a plain reply, the arguments of every other tool as ``None``), which a chat template testing
``'tool_calls' in message`` renders wrongly or refuses.
"""

from __future__ import annotations

from typing import Any

from ftdata.labels import record_kind, record_row


def trl_rows(records: list[Any], kind: str) -> list[dict[str, Any]]:
    """The records as rows in TRL's shape (``kind`` from :func:`record_kind`), with ``tools`` as a
    JSON string; once one row has tools every row has the column (None without)."""
    rows = [record_row(rec, kind) for rec in records]
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
