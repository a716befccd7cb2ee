"""What dataset-scope rules see: the whole dataset, once, after the streaming pass."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from ftdata.records import Record

FORMAT_CODES: dict[str | None, int] = {None: 0, "messages": 1, "prompt-completion": 2, "alpaca": 3, "sharegpt": 4}
_FORMAT_NAMES = {code: name for name, code in FORMAT_CODES.items()}


class Formats(Sequence[str | None]):
    """The format of every record, one byte each, read as format names."""

    def __init__(self, codes: bytearray) -> None:
        self._codes = codes

    def __len__(self) -> int:
        return len(self._codes)

    @overload
    def __getitem__(self, index: int) -> str | None: ...
    @overload
    def __getitem__(self, index: slice) -> list[str | None]: ...
    def __getitem__(self, index: int | slice) -> str | list[str | None] | None:
        if isinstance(index, slice):
            return [_FORMAT_NAMES[c] for c in self._codes[index]]
        return _FORMAT_NAMES[self._codes[index]]

    def __iter__(self) -> Iterator[str | None]:
        names = _FORMAT_NAMES
        return (names[c] for c in self._codes)

    def counts(self) -> dict[str, int]:
        """Records per detected format (records of no known format left out)."""
        codes = self._codes
        return {name: n for code, name in _FORMAT_NAMES.items() if name is not None and (n := codes.count(code))}

    def indices(self, name: str | None) -> Iterator[int]:
        """Indices of the records in format ``name``, in order."""
        codes = self._codes
        code = bytes([FORMAT_CODES[name]])
        i = codes.find(code)
        while i != -1:
            yield i
            i = codes.find(code, i + 1)


class Dataset:
    """What the pass keeps for dataset rules: one byte per record (its format) and a way to
    iterate the records again. Memory stays flat however large the file."""

    def __init__(
        self,
        source: str,
        *,
        formats: bytearray | None = None,
        reread: Callable[[], Iterator[Record]] | None = None,
        records: Sequence[Record] | None = None,
    ) -> None:
        self.source = source
        self.formats = Formats(formats if formats is not None else bytearray())
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
    def formats(self) -> Formats:
        return self._dataset.formats

    def __len__(self) -> int:
        return len(self._dataset)

    def records(self) -> Iterator[Record]:
        return self._dataset.records()
