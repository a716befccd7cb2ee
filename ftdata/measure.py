"""What the audit measures in a dataset: formats, roles, turns, token lengths, system
prompts, duplicate groups and balance, as :class:`AuditStats`, in one pass."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ftdata.findings import Report, Severity
from ftdata.progress import Progress
from ftdata.records import Record
from ftdata.tokens import CHARS_PER_TOKEN, count_tokens

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


def duplicate_cluster_sizes(report: Report, source: str) -> dict[int, int]:
    """How many FT401 duplicate groups of each size ``report`` holds for ``source``."""
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
    unreadable: list[int] | None = None,
) -> AuditStats:
    """The figures of a stream of normalised records, in one pass (tokens are counted in
    batches as the records go by, so memory stays flat). Only readable records are
    measured; the index of each other one is appended to ``unreadable`` when given."""
    from ftdata.records import field_label

    skipped = unreadable if unreadable is not None else []
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
                skipped.append(rec.index)
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


def explain_unreadable(stats: AuditStats, report: Report, indices: list[int]) -> None:
    """Name on ``stats`` the rule ``report`` found most often on the unreadable records at
    ``indices`` (errors before warnings)."""
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


__all__ = ["UNREADABLE_WARNING_SHARE", "AuditStats", "duplicate_cluster_sizes", "explain_unreadable", "measure"]
