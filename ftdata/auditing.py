"""``ftdata.audit``: the lint report plus the dataset's shape (formats, roles, turns, token
lengths, system prompts, duplicates, balance; the length bias of preference pairs and the
label balance of KTO data), for notebooks and an HTML page.

Nothing is displayed as a side effect: in Jupyter the report renders itself through
``_repr_html_``; ``to_html()`` gives a self-contained page.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdata import io
from ftdata.engine.run import FileStats
from ftdata.findings import Finding, Report, SourceStats
from ftdata.formats import normalise
from ftdata.measure import (
    UNREADABLE_WARNING_SHARE,
    AuditStats,
    Figures,
    duplicate_cluster_sizes,
    explain_unreadable,
    measure,
)
from ftdata.progress import Progress
from ftdata.records import Record
from ftdata.rules.preference import PairFigures

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ftdata.labels import LabelledRecord

#: Records the audit shows as the trainer sees them when a tokenizer is given.
SHOW_LABELS = 5


class AuditReport(Report):
    """A lint Report with the dataset's figures, and ways to look at what was flagged.
    ``labels`` holds the first records as the trainer sees them (trained and masked text),
    when the audit had a tokenizer. ``pairs`` maps a source to its ``preference`` and
    ``kto`` figures (:meth:`ftdata.rules.preference.PairFigures.figures`), for the files
    that have them."""

    def __init__(
        self,
        report: Report,
        stats: list[AuditStats],
        loaders: Mapping[str, Callable[[], list[Any]]],
        labels: Iterable[LabelledRecord] = (),
        pairs: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        # The folds did their work in the figures: a report does not hold on to them.
        super().__init__(report.findings, [_without_folds(s) for s in report.sources])
        self.stats = stats
        self.pairs = dict(pairs or {})
        self.labels = list(labels)
        self._loaders = dict(loaders)
        self._rows: dict[str, list[Any]] = {}

    def _select(self, code_or_prefix: str | None) -> list[Finding]:
        if not code_or_prefix:
            return list(self.findings)
        key = code_or_prefix.strip()
        from ftdata import registry

        try:
            codes = {r.code for r in registry.resolve(key)}
        except KeyError:
            raise ValueError(
                f"unknown rule {code_or_prefix!r}: give a code (FT401), a code prefix (FT4), a rule name "
                "(duplicate-record) or ALL; `ftdata rules` lists them"
            ) from None
        return [f for f in self.findings if f.code in codes]

    def get_findings(self, code_or_prefix: str | None = None) -> pd.DataFrame:
        """The findings of one rule (code, name or code prefix), or all, as a DataFrame.
        An unknown rule raises ValueError."""
        import pandas as pd

        frame = Report(self._select(code_or_prefix), self.sources).to_pandas()
        return frame if not frame.empty else pd.DataFrame(columns=frame.columns)

    def flagged(self, code_or_prefix: str | None = None, *, source: str | None = None) -> list[int]:
        """Indices of the records with a finding (of one rule, code or prefix), sorted.
        An unknown rule raises ValueError."""
        src = source or (self.sources[0].source if self.sources else None)
        return sorted({f.index for f in self._select(code_or_prefix) if f.index is not None and f.source == src})

    def records(self, which: str | Iterable[int] | None = None, *, source: str | None = None) -> list[Any]:
        """The records themselves: those flagged by a rule (code, name or prefix), those at
        the given indices, or all of them."""
        src = source or (self.sources[0].source if self.sources else "")
        if src not in self._rows:
            self._rows[src] = self._loaders[src]()
        rows = self._rows[src]
        if which is None:
            return list(rows)
        indices = self.flagged(which, source=src) if isinstance(which, str) else list(which)
        return [rows[i] for i in indices if 0 <= i < len(rows)]

    def fetch(self, source: str, indices: Iterable[int]) -> dict[int, Any]:
        """The parsed records at ``indices`` of ``source`` (read again only for those)."""
        wanted = set(indices)
        if source in self._rows:
            rows = self._rows[source]
            return {i: rows[i] for i in wanted if 0 <= i < len(rows)}
        if source == "<memory>":
            rows = self.records(source=source)
            return {i: rows[i] for i in wanted if 0 <= i < len(rows)}
        found = io.records_at(io.read(Path(source), io.ReadStats(), parse="fast"), wanted)
        return {index: rec.data for index, rec in found.items()}

    def _repr_html_(self) -> str:
        from ftdata.render.html import report_fragment

        return report_fragment(self, self.stats)

    def to_html(self, title: str = "ftdata audit") -> str:
        """A self-contained page (inline CSS and SVG, no scripts, nothing fetched)."""
        from ftdata.render.html import report_page

        return report_page(self, self.stats, title=title)

    @property
    def warnings(self) -> list[str]:
        """What a reader must know before trusting the figures (too many unreadable records)."""
        return [f"{s.source}: {s.warning}" for s in self.stats if s.warning]

    def to_json(self) -> dict[str, Any]:
        """Findings, sources, figures and warnings, as plain JSON values; with a tokenizer,
        the label view too (each record's text as runs, ``trained`` or not)."""
        out: dict[str, Any] = {
            "warnings": self.warnings,
            "findings": self.to_dicts(),
            "sources": [asdict(s) for s in self.sources],
            "stats": [{**s.to_dict(), **self.pairs.get(s.source, {})} for s in self.stats],
        }
        if self.labels:
            out["labels"] = [
                {
                    **{k: v for k, v in asdict(view).items() if k != "pieces"},
                    "pieces": [{"trained": flag, "text": text} for flag, text in view.pieces],
                }
                for view in self.labels
            ]
        return out


def _folds(source: SourceStats) -> tuple[Any, ...]:
    """The filled folds of a source (a file's or the records' in memory)."""
    return source.folds if isinstance(source, FileStats) else ()


def _without_folds(source: SourceStats) -> SourceStats:
    return replace(source, folds=()) if isinstance(source, FileStats) and source.folds else source


def _as_records(source: Any) -> list[Any]:
    kind = type(source).__module__.split(".")[0]
    if kind == "pandas":
        from ftdata.records import plain

        return [plain(r) for r in source.to_dict(orient="records")]
    if kind == "datasets":
        return [dict(r) for r in source]
    return list(source)


def audit(
    source: Any,
    *,
    tokenizer: str | None = None,
    max_length: int | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    extend_select: Iterable[str] | None = None,
    profile: str | None = None,
    format: str | None = None,
    stratify_by: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    config: Any = True,
    progress: Progress | None = None,
    show_labels: int = SHOW_LABELS,
) -> AuditReport:
    """Lint ``source`` and measure it. ``source`` is a path (file or folder), a list of
    paths, a list of dicts, a ``datasets.Dataset`` or a pandas DataFrame. With
    ``tokenizer`` (name or local path) token counts are exact, after the chat template;
    otherwise they are estimated.
    ``max_length`` draws the truncation line and counts what it cuts. ``stratify_by`` (a
    field path) adds the balance of that field. Lint options are those of ``ftdata.lint``.
    With ``tokenizer``, the first ``show_labels`` readable records are kept as the trainer
    would see them after the chat template and truncation to ``max_length``, trained tokens
    apart from masked ones (``AuditReport.labels``; the HTML page shows them).
    """
    import ftdata
    from ftdata.tokens import load_tokenizer, shared_counts

    path: Path | list[Path] | None = None
    rows: list[Any] | None = None
    target: Any
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        target = path
    elif _is_path_list(source):
        path = [Path(p) for p in source]
        target = path
    else:
        rows = _as_records(source)
        target = rows
    if tokenizer:  # before any data is read, and before worker processes load it on their own
        load_tokenizer(tokenizer)
    settings: dict[str, Any] = {"tokenizer": tokenizer, "max_length": max_length, "stratify_by": stratify_by}
    folds: list[Callable[[], Any]] = [partial(Figures, **settings, home=os.getpid()), partial(PairFigures, tokenizer)]
    if tokenizer and show_labels > 0:
        folds.append(partial(FirstReadable, show_labels))
    stats: list[AuditStats] = []
    pairs: dict[str, dict[str, Any]] = {}
    loaders: dict[str, Callable[[], list[Any]]] = {}
    firsts: list[list[Record]] = []
    # A token rule of this run reuses the counts the figures made in the pass, and the
    # figures the counts the rule made of the records still waiting for a batch at the end.
    with shared_counts():
        report = ftdata.lint(
            target,
            select=select,
            ignore=ignore,
            extend_select=extend_select,
            profile=profile,
            format=format,
            options=options,
            tokenizer=tokenizer,
            max_length=max_length,
            config=config if path is not None else False,
            folds=folds,
            progress=progress,
        )
        for src in report.sources:
            if path is not None:
                loaders[src.source] = partial(_read_data, Path(src.source))
                again: Callable[[], Iterable[Record]] = partial(_read_records, Path(src.source), format)
            else:
                assert rows is not None
                loaders[src.source] = partial(list, rows)
                again = partial(_memory_records, rows, format)
            figures, pairs[src.source] = _figures_of(src, report, again, settings)
            stats.append(figures)
            first = next((f for f in _folds(src) if isinstance(f, FirstReadable)), None)
            if first is not None:
                firsts.append(_with_lines(first, src.source if path is not None else None))
    labels: list[LabelledRecord] = []
    if tokenizer and show_labels > 0:
        labels = _labels(firsts, tokenizer, show_labels, max_length)
    return AuditReport(report, stats, loaders, labels, pairs)


class FirstReadable:
    """A fold that keeps the first ``n`` readable records of a file, in order: the
    records of the label view, taken in the lint pass. A record taken from a later shard
    has its index shifted here; its line counts from its shard's start
    (``shard_lines``), since a shard does not know how many lines come before it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.records = 0
        self.kept: list[Record] = []
        #: For each kept record: whether its ``line`` counts from its shard's start.
        self.shard_lines: list[bool] = []

    def add(self, rec: Record) -> None:
        """See one record of the pass."""
        self.records += 1
        if len(self.kept) < self.n and rec.readable:
            self.kept.append(rec)
            self.shard_lines.append(False)

    def merge(self, later: FirstReadable) -> None:
        """Take in the fold of the shard that follows this one."""
        for rec in later.kept[: self.n - len(self.kept)]:
            rec.index += self.records
            self.kept.append(rec)
            self.shard_lines.append(True)
        self.records += later.records


def _figures_of(
    src: SourceStats, report: Report, again: Callable[[], Iterable[Record]], settings: dict[str, Any]
) -> tuple[AuditStats, dict[str, Any]]:
    """The figures of one source from its folds. A pass stopped early by ``max_errors``
    saw only part of the file: then, only then, the figures come from reading it again,
    so that they still describe all of it."""
    figures = next((f for f in _folds(src) if isinstance(f, Figures)), None)
    pairs = next((f for f in _folds(src) if isinstance(f, PairFigures)), None)
    if src.truncated or figures is None or pairs is None:
        figures, pairs = Figures(**settings), PairFigures(settings["tokenizer"])
        for rec in again():
            figures.add(rec)
            pairs.add(rec)
    elif figures.records < src.records:
        # What the pass read but did not pass on as records (a .json file holding one
        # object in no format, reported as not a dataset): in no figure, like any
        # unreadable record.
        figures.unreadable += range(figures.records, src.records)
        figures.records = src.records
    stats = figures.stats(src.source)
    stats.duplicate_clusters = duplicate_cluster_sizes(report, src.source)
    explain_unreadable(stats, report, figures.unreadable)
    warnings = {f.code: f.message for f in report.findings if f.source == src.source and f.code in ("FT705", "FT706")}
    return stats, pairs.figures(warnings)


def _with_lines(first: FirstReadable, path: str | None) -> list[Record]:
    """The kept records, each with its line in the file. Only when the first shard held
    fewer than ``n`` readable records does this read the start of the file again, up to
    the last such record, to turn byte offsets into lines."""
    late = [rec for rec, local in zip(first.kept, first.shard_lines, strict=True) if local]
    if late and path is not None:
        offsets = sorted({rec.offset or 0 for rec in late})
        lines = _lines_at(Path(path), offsets)
        for rec in late:
            rec.line = lines[rec.offset or 0]
    return first.kept


def _lines_at(path: Path, offsets: list[int]) -> dict[int, int]:
    """The 1-based line at each byte offset (sorted) of ``path``."""
    found: dict[int, int] = {}
    line, at = 1, 0
    with open(path, "rb") as f:
        for offset in offsets:
            while at < offset:
                chunk = f.read(min(1 << 20, offset - at))
                if not chunk:
                    break
                line += chunk.count(b"\n")
                at += len(chunk)
            found[offset] = line
    return found


def _labels(
    sources: Iterable[Iterable[Record]], tokenizer: str, n: int, max_length: int | None
) -> list[LabelledRecord]:
    """The first ``n`` readable records over ``sources``, in order, as the trainer sees them."""
    from ftdata.labels import label_records
    from ftdata.tokens import load_tokenizer

    tok = load_tokenizer(tokenizer)
    out: list[LabelledRecord] = []
    for records in sources:
        if len(out) >= n:
            break
        out += label_records(records, tok, n - len(out), max_length=max_length)
    return out


def _is_path_list(source: Any) -> bool:
    """A list of files to audit together (not a list of records): Path objects, or
    strings that all name existing files or folders."""
    if not isinstance(source, list | tuple) or not source:
        return False
    if all(isinstance(p, os.PathLike) for p in source):
        return True
    return all(isinstance(p, str) and os.path.exists(p) for p in source)


def _read_data(path: Path) -> list[Any]:
    return [r.data for r in _read_all(path)]


def _read_all(path: Path) -> list[Record]:
    return [item for item in io.read(path, io.ReadStats(), parse="fast") if isinstance(item, Record)]


def _read_records(path: Path, format: str | None) -> Iterable[Record]:
    for item in io.read(path, io.ReadStats(), parse="fast"):
        if isinstance(item, Record):
            if type(item.data) is dict:
                normalise(item, format)
            yield item


def _memory_records(rows: list[Any], format: str | None) -> Iterable[Record]:
    for i, data in enumerate(rows):
        rec = Record(i, data)
        if type(data) is dict:
            normalise(rec, format)
        yield rec


__all__ = [
    "SHOW_LABELS",
    "UNREADABLE_WARNING_SHARE",
    "AuditReport",
    "AuditStats",
    "Figures",
    "FirstReadable",
    "PairFigures",
    "audit",
    "measure",
]
