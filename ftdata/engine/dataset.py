"""What dataset-scope rules see: the whole dataset, once, after the streaming pass.

The engine keeps one :class:`DatasetHandle` per file (formats, and ways to read records
again); each dataset rule gets a :class:`DatasetView` of it with its own collected
:class:`Column`. Named ``DatasetHandle`` so that it is never mistaken for Hugging Face's
``datasets.Dataset``. Nothing here imports the engine: rules import these views directly.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from ftdata import names
from ftdata.progress import Progress
from ftdata.records import Record

if TYPE_CHECKING:
    from ftdata.similarity.embeddings import Embedder

#: One byte per record in the shard views; the order of names.INPUT_FORMATS, so a new format
#: cannot be left out.
FORMAT_CODES: dict[str | None, int] = {None: 0, **{name: code for code, name in enumerate(names.INPUT_FORMATS, 1)}}
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


class Column:
    """What one rule's ``collect`` function gathered during the pass: a value per record
    (records for which it returned None are left out), with the record's index."""

    __slots__ = ("indices", "values")

    def __init__(self) -> None:
        self.indices = array("q")
        self.values: list[Any] = []

    def append(self, index: int, value: Any) -> None:
        self.indices.append(index)
        self.values.append(value)

    def extend(self, other: Column, shift: int = 0) -> None:
        self.indices.extend(i + shift for i in other.indices) if shift else self.indices.extend(other.indices)
        self.values.extend(other.values)

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return zip(self.indices, self.values, strict=True)


Fetch = Callable[[Iterable[int]], dict[int, Record]]


class DatasetHandle:
    """What the pass keeps for dataset rules: one byte per record (its format), and ways to
    read records again: all of them (``records``), some by index (``fetch``), or only their
    line numbers (``line_of``). Memory stays flat however large the file."""

    def __init__(
        self,
        source: str,
        *,
        formats: bytearray | None = None,
        reread: Callable[[], Iterator[Record]] | None = None,
        records: Sequence[Record] | None = None,
        fetch: Fetch | None = None,
        lines: Callable[[], Sequence[int]] | None = None,
        progress: Progress | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.source = source
        self.progress = progress
        self.embedder = embedder
        self.formats = Formats(formats if formats is not None else bytearray())
        self._reread = reread
        self._records = records
        self._fetch = fetch
        self._lines_factory = lines
        self._lines: Sequence[int] | None = None
        self._memo: dict[Any, Any] = {}

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per dataset and key, shared by the rules of one run."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def __len__(self) -> int:
        return len(self.formats)

    def records(self) -> Iterator[Record]:
        """The valid records, normalised, in order (read again from disk for files)."""
        if self._records is not None:
            return (r for r in self._records if r.valid)
        if self._reread is None:
            return iter(())
        return (r for r in self._reread() if r.valid)

    def fetch(self, indices: Iterable[int]) -> dict[int, Record]:
        """The records at ``indices``, normalised (one more read of the file)."""
        wanted = set(indices)
        if not wanted:
            return {}
        if self._records is not None:
            return {r.index: r for r in self._records if r.index in wanted}
        if self._fetch is None:
            return {}
        return self._fetch(wanted)

    def line_of(self, index: int) -> int | None:
        """The line where record ``index`` starts (None for in-memory data)."""
        if self._lines is None:
            if self._lines_factory is None:
                return None
            self._lines = self._lines_factory()
        return self._lines[index] if 0 <= index < len(self._lines) else None


class DatasetView:
    """A dataset as one rule sees it: the shared :class:`DatasetHandle` plus the Column its
    ``collect`` function filled during the pass."""

    def __init__(self, dataset: DatasetHandle, collected: Column | None = None) -> None:
        self._dataset = dataset
        self.collected: Column = collected if collected is not None else Column()

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

    def fetch(self, indices: Iterable[int]) -> dict[int, Record]:
        return self._dataset.fetch(indices)

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        return self._dataset.memo(key, compute)

    @property
    def progress(self) -> Progress | None:
        """Where a long rule reports how far it is (``None``: nobody is watching)."""
        return self._dataset.progress

    @property
    def embedder(self) -> Embedder | None:
        """Where the semantic rules embed their texts (a cluster's workers); None: here."""
        return self._dataset.embedder

    def line_of(self, index: int) -> int | None:
        return self._dataset.line_of(index)

    def where(self, index: int) -> str:
        """``"the record on line 12"`` for a file, ``"record 11"`` (its 0-based index) in memory."""
        line = self.line_of(index)
        return f"the record on line {line}" if line is not None else f"record {index}"
