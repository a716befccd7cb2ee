"""``ftdata.audit``: the lint report plus the dataset's shape (formats, roles, turns, token
lengths, system prompts, duplicates, balance), for notebooks and an HTML page.

Nothing is displayed as a side effect: in Jupyter the report renders itself through
``_repr_html_``; ``to_html()`` gives a self-contained page.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdata import io
from ftdata.findings import Finding, Report, Severity
from ftdata.formats import normalise
from ftdata.progress import Progress
from ftdata.records import Record
from ftdata.tokens import CHARS_PER_TOKEN, count_tokens

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Above this share of unreadable records the audit leads with a warning: its figures
#: then describe only part of the data.
UNREADABLE_WARNING_SHARE = 0.05


@dataclass
class AuditStats:
    """Figures of one dataset. Token counts are exact with a tokenizer, else estimated.

    ``valid`` counts the readable records (:attr:`ftdata.records.Record.readable`): only
    they are measured. For the others, ``cause_code`` is the rule found most often on them
    (errors first), ``cause_count`` on how many, and ``cause_message`` one of its messages.
    """

    source: str
    records: int = 0
    valid: int = 0
    cause_code: str | None = None
    cause_message: str | None = None
    cause_count: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    messages_per_role: dict[str, int] = field(default_factory=dict)
    turns: dict[int, int] = field(default_factory=dict)
    patterns: list[tuple[str, int]] = field(default_factory=list)
    tokens_total: list[int] = field(default_factory=list)
    tokens_by_role: dict[str, list[int]] = field(default_factory=dict)
    tokens_estimated: bool = True
    tokenizer: str | None = None
    max_length: int | None = None
    over_max_length: int = 0
    trained_tokens: int = 0
    prompt_tokens: int = 0
    truncated_tokens: int = 0
    system_prompts: list[tuple[str, int]] = field(default_factory=list)
    without_system_prompt: int = 0
    duplicate_clusters: dict[int, int] = field(default_factory=dict)
    strata: dict[str, int] = field(default_factory=dict)
    stratify_by: str | None = None
    distinct_2: float | None = None

    @property
    def unreadable(self) -> int:
        """Records that could not be read, so are in no figure."""
        return self.records - self.valid

    @property
    def unreadable_share(self) -> float:
        return self.unreadable / self.records if self.records else 0.0

    @property
    def warning(self) -> str | None:
        """A sentence to show first when too many records could not be read, else None."""
        if not self.records or self.unreadable_share <= UNREADABLE_WARNING_SHARE:
            return None
        text = (
            f"{self.unreadable:,} of {self.records:,} records ({self.unreadable_share:.0%}) could not be read; "
            "the figures describe only the rest."
        )
        if self.cause_code:
            from ftdata import registry

            try:
                name = f" ({registry.get(self.cause_code).name})"
            except KeyError:
                name = ""
            text += f" Most common cause: {self.cause_code}{name} on {self.cause_count:,} of them: {self.cause_message}"
        else:
            text += " No rule explains why: their layout may be one ftdata does not know."
        return text

    @property
    def trained_share(self) -> float:
        """Share of the tokens kept after truncation that are assistant tokens (trained on)."""
        kept = self.trained_tokens + self.prompt_tokens
        return self.trained_tokens / kept if kept else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["turns"] = {str(k): v for k, v in self.turns.items()}
        out["duplicate_clusters"] = {str(k): v for k, v in self.duplicate_clusters.items()}
        out["trained_share"] = round(self.trained_share, 6)
        out["unreadable"] = self.unreadable
        out["warning"] = self.warning
        for name in ("tokens_total", "tokens_by_role"):
            out.pop(name)
        out["tokens"] = {
            "total": _summary(self.tokens_total),
            "by_role": {role: _summary(v) for role, v in self.tokens_by_role.items()},
        }
        return out


def _summary(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), 1),
        "p50": pick(0.5),
        "p95": pick(0.95),
        "max": ordered[-1],
    }


class AuditReport(Report):
    """A lint Report with the dataset's figures, and ways to look at what was flagged."""

    def __init__(self, report: Report, stats: list[AuditStats], loaders: Mapping[str, Callable[[], list[Any]]]) -> None:
        super().__init__(report.findings, report.sources)
        self.stats = stats
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
        found: dict[int, Any] = {}
        if not wanted:
            return found
        last = max(wanted)
        for item in io.read(Path(source), io.ReadStats(), parse="fast"):
            if isinstance(item, Record):
                if item.index in wanted:
                    found[item.index] = item.data
                if item.index >= last:
                    break
        return found

    def _repr_html_(self) -> str:
        from ftdata.report.html import report_fragment

        return report_fragment(self, self.stats)

    def to_html(self, title: str = "ftdata audit") -> str:
        """A self-contained page (inline CSS and SVG, no scripts, nothing fetched)."""
        from ftdata.report.html import report_page

        return report_page(self, self.stats, title=title)

    @property
    def warnings(self) -> list[str]:
        """What a reader must know before trusting the figures (too many unreadable records)."""
        return [f"{s.source}: {s.warning}" for s in self.stats if s.warning]

    def to_json(self) -> dict[str, Any]:
        """Findings, sources, figures and warnings, as plain JSON values."""
        return {
            "warnings": self.warnings,
            "findings": self.to_dicts(),
            "sources": [asdict(s) for s in self.sources],
            "stats": [s.to_dict() for s in self.stats],
        }


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
) -> AuditReport:
    """Lint ``source`` and measure it. ``source`` is a path (file or folder), a list of
    paths, a list of dicts, a ``datasets.Dataset`` or a pandas DataFrame. With
    ``tokenizer`` (name or local path) token counts are exact, after the chat template;
    otherwise they are estimated.
    ``max_length`` draws the truncation line and counts what it cuts. ``stratify_by`` (a
    field path) adds the balance of that field. Lint options are those of ``ftdata.lint``.
    """
    import ftdata

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
        progress=progress,
    )
    stats = []
    loaders: dict[str, Callable[[], list[Any]]] = {}
    unreadable: dict[str, list[int]] = {}
    if path is not None:
        for src in report.sources:
            file = Path(src.source)
            stats.append(
                _measure(
                    _read_records(file, format),
                    src.source,
                    unreadable.setdefault(src.source, []),
                    tokenizer=tokenizer,
                    max_length=max_length,
                    stratify_by=stratify_by,
                    progress=progress,
                )
            )
            loaders[src.source] = partial(_read_data, file)
    else:
        assert rows is not None
        stats.append(
            _measure(
                _memory_records(rows, format),
                "<memory>",
                unreadable.setdefault("<memory>", []),
                tokenizer=tokenizer,
                max_length=max_length,
                stratify_by=stratify_by,
                progress=progress,
            )
        )
        loaders["<memory>"] = lambda: list(rows)
    for s in stats:
        s.duplicate_clusters = _cluster_sizes(report, s.source)
        _explain_unreadable(s, report, unreadable.get(s.source, []))
    return AuditReport(report, stats, loaders)


def _explain_unreadable(stats: AuditStats, report: Report, indices: list[int]) -> None:
    """Name the rule found most often on the unreadable records (errors before warnings)."""
    if not indices:
        return
    wanted = set(indices)
    by_severity: dict[Severity, Counter[str]] = {}
    first: dict[str, str] = {}
    seen: set[tuple[str, int]] = set()
    for f in report.findings:  # sorted: the first message is the earliest
        if f.source == stats.source and f.index in wanted and (f.code, f.index) not in seen:
            seen.add((f.code, f.index))  # records, not findings, are counted
            by_severity.setdefault(f.severity, Counter())[f.code] += 1
            first.setdefault(f.code, f.message)
    for severity in sorted(by_severity, reverse=True):
        code, count = by_severity[severity].most_common(1)[0]
        stats.cause_code, stats.cause_count, stats.cause_message = code, count, first[code]
        return


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


def _cluster_sizes(report: Report, source: str) -> dict[int, int]:
    sizes: Counter[int] = Counter()
    seen: set[int] = set()
    for f in report.findings:
        if f.code == "FT401" and f.source == source and f.index is not None and f.index not in seen:
            members = {f.index, *f.related}
            seen |= members
            sizes[len(members)] += 1
    return dict(sorted(sizes.items()))


def measure(
    records: Iterable[Record],
    source: str,
    *,
    tokenizer: str | None = None,
    max_length: int | None = None,
    stratify_by: str | None = None,
    progress: Progress | None = None,
) -> AuditStats:
    """The figures of a stream of normalised records, in one pass (tokens are counted in
    batches as the records go by, so memory stays flat). Only readable records are measured."""
    return _measure(
        records,
        source,
        [],
        tokenizer=tokenizer,
        max_length=max_length,
        stratify_by=stratify_by,
        progress=progress,
    )


def _measure(
    records: Iterable[Record],
    source: str,
    unreadable: list[int],
    *,
    tokenizer: str | None = None,
    max_length: int | None = None,
    stratify_by: str | None = None,
    progress: Progress | None = None,
) -> AuditStats:
    """:func:`measure`, appending the index of each unreadable record to ``unreadable``."""
    from ftdata.records import field_label

    stats = AuditStats(source, tokenizer=tokenizer, max_length=max_length, stratify_by=stratify_by)
    formats: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    turns: Counter[int] = Counter()
    patterns: Counter[str] = Counter()
    systems: Counter[str] = Counter()
    strata: Counter[str] = Counter()
    prompts: list[str] = []

    def usable() -> Iterable[Record]:
        for rec in records:
            stats.records += 1
            if progress is not None and stats.records % 10_000 == 0:
                progress("measure", stats.records, 0)
            if not rec.readable:
                unreadable.append(rec.index)
                continue
            stats.valid += 1
            formats[rec.format or "unknown"] += 1
            for m in rec.messages:
                roles[m.role] += 1
            turns[sum(1 for m in rec.messages if m.role != "system")] += 1
            patterns[" ".join(_collapse(m.role for m in rec.messages))] += 1
            first = rec.messages[0]
            if first.role == "system":
                systems[first.text or ""] += 1
            else:
                stats.without_system_prompt += 1
            if stratify_by:
                strata[field_label(rec, field=stratify_by) or "(missing)"] += 1
            if len(prompts) < 20_000:
                prompts.append(" ".join((m.text or "") for m in rec.prompt_messages() if m.role != "system"))
            yield rec

    _measure_tokens(stats, usable(), tokenizer, max_length)
    stats.formats = dict(formats.most_common())
    stats.messages_per_role = dict(roles.most_common())
    stats.turns = dict(sorted(turns.items()))
    stats.patterns = patterns.most_common(10)
    stats.system_prompts = systems.most_common(10)
    stats.strata = dict(strata.most_common())
    if prompts:
        from ftdata.similarity.text import normalise_text
        from ftdata.stats import distinct_ngram_ratio

        stats.distinct_2 = round(distinct_ngram_ratio([normalise_text(p, casefold=True) for p in prompts], n=2), 4)
    return stats


def _collapse(roles: Iterable[str]) -> list[str]:
    """Role sequence with repeats of user/assistant exchanges shown once: ``system (user assistant)x3``."""
    seq = list(roles)
    out: list[str] = []
    k = 0
    while k < len(seq):
        if seq[k : k + 2] == ["user", "assistant"]:
            n = 0
            while seq[k : k + 2] == ["user", "assistant"]:
                n += 1
                k += 2
            out.append("(user assistant)" + (f"x{n}" if n > 1 else ""))
        else:
            out.append(seq[k])
            k += 1
    return out


def _measure_tokens(
    stats: AuditStats, records: Iterable[Record], tokenizer: str | None, max_length: int | None
) -> None:
    by_role: dict[str, list[int]] = {}
    for count in count_tokens(records, tokenizer=tokenizer or "", chars_per_token=CHARS_PER_TOKEN):
        if count.error is not None:
            continue
        stats.tokens_estimated = count.estimated
        stats.tokens_total.append(count.total)
        for role, n in count.by_role.items():
            by_role.setdefault(role, []).append(n)
        assistant = count.by_role.get("assistant", 0)
        limit = max_length or count.total
        kept = min(count.total, limit)
        if max_length is not None and count.total > max_length:
            stats.over_max_length += 1
        start = count.reply_start if count.reply_start is not None else kept
        trained = max(0, min(assistant, kept - start))
        stats.trained_tokens += trained
        stats.prompt_tokens += kept - trained
        stats.truncated_tokens += count.total - kept
    stats.tokens_by_role = by_role


__all__ = ["AuditReport", "AuditStats", "audit", "measure"]
