"""In-memory sources of records: a list of dicts, a ``datasets.Dataset`` or a pandas
DataFrame, as plain rows, and rows back in the type they came from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ftdata.records import plain


def kind_of(source: Any) -> str:
    """``"pandas"``, ``"datasets"`` or ``"rows"`` (anything iterable of records)."""
    kind = type(source).__module__.split(".")[0]
    return kind if kind in ("pandas", "datasets") else "rows"


def rows_of(source: Any) -> list[Any]:
    """The records of ``source`` as plain Python values, in order."""
    kind = kind_of(source)
    if kind == "pandas":
        return [plain(r) for r in source.to_dict(orient="records")]
    if kind == "datasets":
        if hasattr(source, "keys") and not hasattr(source, "column_names"):
            raise ValueError("pass one split of a DatasetDict (for example dataset['train'])")
        return [dict(r) for r in source]
    return list(source)


def like(source: Any, indices: Sequence[int], rows: Sequence[Any]) -> Any:
    """The records at ``indices`` in ``source``'s own type: a DataFrame keeps its index
    labels and columns, a Dataset its features, anything else becomes a list of rows."""
    kind = kind_of(source)
    if kind == "pandas":
        return source.iloc[list(indices)]
    if kind == "datasets":
        return source.select(list(indices))
    return [rows[i] for i in indices]
