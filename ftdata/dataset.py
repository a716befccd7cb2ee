"""What dataset-scope rules see: the whole dataset, once, after the streaming pass."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ftdata.records import Record


class Dataset:
    """Per-record columns kept during the pass (format, line, byte span), and a way to
    iterate the records again. Kept small: a few bytes per record."""

    def __init__(
        self,
        source: str,
        *,
        formats: Sequence[str | None] = (),
        lines: Sequence[int] | None = None,
        reread: Callable[[], Iterator[Record]] | None = None,
        records: Sequence[Record] | None = None,
    ) -> None:
        self.source = source
        self.formats: list[str | None] = list(formats)
        self.lines = array("q", lines or [])
        self._reread = reread
        self._records = records

    def __len__(self) -> int:
        return len(self.formats)

    def records(self) -> Iterator[Record]:
        """The valid records, normalised, in order (read again from disk for files)."""
        if self._records is not None:
            return (r for r in self._records if r.valid)
        if self._reread is None:
            return iter(())
        return (r for r in self._reread() if r.valid)


class DatasetView:
    """A dataset as one rule sees it: the shared dataset plus what this rule's
    ``collect`` function gathered during the pass, as ``(index, value)`` pairs."""

    def __init__(self, dataset: Dataset, collected: list[tuple[int, Any]] | None = None) -> None:
        self._dataset = dataset
        self.collected: list[tuple[int, Any]] = collected or []

    @property
    def source(self) -> str:
        return self._dataset.source

    @property
    def formats(self) -> list[str | None]:
        return self._dataset.formats

    def __len__(self) -> int:
        return len(self._dataset)

    def records(self) -> Iterator[Record]:
        return self._dataset.records()
