"""What the audit measures in a dataset: formats, roles, turns, token lengths, system
prompts, duplicate groups and balance, as :class:`AuditStats`, gathered by the fold
:class:`Figures` in the lint pass (or over records in hand, :func:`measure`)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ftdata.findings import Report, Severity
from ftdata.formats import STEPWISE
from ftdata.progress import Progress
from ftdata.records import Record, field_label
from ftdata.tokens import CHARS_PER_TOKEN, PackedCount, TokenCount, count_tokens, load_tokenizer, pack, remember

#: Readable records tokenised together (one call of the tokenizer encodes a batch).
TOKEN_BATCH = 256

#: Above this share of unreadable records the audit leads with a warning (its figures are partial).
UNREADABLE_WARNING_SHARE = 0.05


@dataclass
class AuditStats:
    """Figures of one dataset; token counts are exact with a tokenizer, else estimated. ``valid``
    counts the readable records (:attr:`ftdata.records.Record.readable`), the only ones measured;
    for the others, ``cause_code`` is the rule found most often on them (errors first),
    ``cause_count`` on how many, and ``cause_message`` one of its messages."""

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
    #: Pairs measured on both sides; stepwise records, their labelled steps kept, true and false.
    pairs: int = 0
    stepwise: int = 0
    steps_true: int = 0
    steps_false: int = 0
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
        """Share of the tokens kept after truncation that are trained on: assistant tokens, both
        replies of a pair (its prompt once per reply), a stepwise record's labelled steps."""
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


#: Prompts kept for the distinct-bigram figure: the first ones of the file, in order, so
#: that the figure is the same whether the file is read whole or in shards.
PROMPTS_KEPT = 20_000
#: The token figures that add up over records (and shards), as :class:`AuditStats` names them.
SUMS: tuple[str, ...] = ("over_max_length", "pairs", "stepwise", "steps_true", "steps_false")
SUMS += ("trained_tokens", "prompt_tokens", "truncated_tokens")


class Figures:
    """The audit's figures of one file gathered record by record: a :class:`~ftdata.engine.plan.Fold`
    of the lint pass (``add`` every normalised record in order; ``merge`` the fold of the next
    shard), and the computation :func:`measure` runs; :meth:`stats` gives the :class:`AuditStats`.

    Every figure merges exactly (counters add up, lists concatenate in file order, a later shard's
    indices are shifted). Records wait in batches for the tokenizer, tokenised before the fold is
    pickled; made in another process than ``home`` (the audit's), a fold carries its exact counts
    back there for a token rule of the same run (:func:`ftdata.tokens.shared_counts`)."""

    def __init__(
        self,
        *,
        tokenizer: str | None = None,
        max_length: int | None = None,
        stratify_by: str | None = None,
        home: int | None = None,
    ) -> None:
        self.tokenizer, self.max_length, self.stratify_by = tokenizer, max_length, stratify_by
        self.records = self.valid = self.without_system_prompt = 0
        #: Indices of the records that could not be read (in no figure).
        self.unreadable: list[int] = []
        self.formats: Counter[str] = Counter()
        self.roles: Counter[str] = Counter()
        self.turns: Counter[int] = Counter()
        self.patterns: Counter[str] = Counter()
        self.systems: Counter[str] = Counter()
        self.strata: Counter[str] = Counter()
        self.prompts: list[str] = []
        self.tokens_total: list[int] = []
        self.tokens_by_role: dict[str, list[int]] = {}
        self.tokens_estimated = True
        self.over_max_length = self.pairs = self.stepwise = self.steps_true = self.steps_false = 0
        self.trained_tokens = self.prompt_tokens = self.truncated_tokens = 0
        self._pending: list[Record] = []
        self._carry = home is not None and home != os.getpid() and bool(tokenizer)
        self._learned: list[tuple[bytes, PackedCount]] = []

    def add(self, rec: Record) -> None:
        """Count one record (only a readable one is measured)."""
        self.records += 1
        if not rec.readable:
            self.unreadable.append(rec.index)
            return
        self.valid += 1
        self.formats[rec.format or "unknown"] += 1
        messages = rec.messages
        for m in messages:
            self.roles[m.role] += 1
        self.turns[sum(1 for m in messages if m.role != "system")] += 1
        self.patterns[" ".join(_collapse(m.role for m in messages))] += 1
        first = messages[0]
        if first.role == "system":
            self.systems[first.text or ""] += 1
        else:
            self.without_system_prompt += 1
        if self.stratify_by:
            self.strata[field_label(rec, field=self.stratify_by) or "(missing)"] += 1
        if len(self.prompts) < PROMPTS_KEPT:
            self.prompts.append(" ".join((m.text or "") for m in rec.prompt_messages() if m.role != "system"))
        self._pending.append(rec)
        if len(self._pending) >= TOKEN_BATCH:
            self._count_pending()

    def merge(self, later: Figures) -> None:
        """Take in the figures of the shard that follows this one."""
        self._count_pending()
        later._count_pending()
        self.unreadable += [i + self.records for i in later.unreadable]
        self.records += later.records
        self.valid += later.valid
        self.formats.update(later.formats)  # new keys after the earlier ones: file order
        self.roles.update(later.roles)
        self.turns.update(later.turns)
        self.patterns.update(later.patterns)
        self.systems.update(later.systems)
        self.strata.update(later.strata)
        self.without_system_prompt += later.without_system_prompt
        self.prompts += later.prompts[: PROMPTS_KEPT - len(self.prompts)]
        self.tokens_total += later.tokens_total
        for role, values in later.tokens_by_role.items():
            self.tokens_by_role.setdefault(role, []).extend(values)
        if later.tokens_total:
            self.tokens_estimated = later.tokens_estimated
        for name in SUMS:
            setattr(self, name, getattr(self, name) + getattr(later, name))

    def stats(self, source: str) -> AuditStats:
        """The figures, as the :class:`AuditStats` of ``source``."""
        self._count_pending()
        stats = AuditStats(
            source,
            records=self.records,
            valid=self.valid,
            formats=dict(self.formats.most_common()),
            messages_per_role=dict(self.roles.most_common()),
            turns=dict(sorted(self.turns.items())),
            patterns=self.patterns.most_common(10),
            tokens_total=list(self.tokens_total),
            tokens_by_role={role: list(v) for role, v in self.tokens_by_role.items()},
            tokens_estimated=self.tokens_estimated,
            tokenizer=self.tokenizer,
            max_length=self.max_length,
            **{name: getattr(self, name) for name in SUMS},
            system_prompts=self.systems.most_common(10),
            without_system_prompt=self.without_system_prompt,
            strata=dict(self.strata.most_common()),
            stratify_by=self.stratify_by,
        )
        if self.prompts:
            from ftdata.similarity.text import normalise_text
            from ftdata.stats import distinct_ngram_ratio

            texts = [normalise_text(p, casefold=True) for p in self.prompts]
            stats.distinct_2 = round(distinct_ngram_ratio(texts, n=2), 4)
        return stats

    def _count_pending(self) -> None:
        """Tokenise the records waiting, in one batch, and add up their counts: a pair's
        rejected side with its chosen one, a stepwise record as TRL's PRMTrainer reads it."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        chat = [rec for rec in pending if rec.format != STEPWISE]
        sides = chat + [_rejected_side(rec) for rec in chat if rec.rejected]
        counts = list(count_tokens(sides, tokenizer=self.tokenizer or "", batch=len(sides)))
        self._learned += [(count.key, pack(count)) for count in counts if self._carry and count.key is not None]
        rejected = {count.index: count for count in counts[len(chat) :] if count.error is None}
        chosen, steps = iter(counts), _steps([rec for rec in pending if rec.format == STEPWISE], self.tokenizer)
        for rec in pending:
            count, positions = next(steps) if rec.format == STEPWISE else (next(chosen), None)
            if count.error is not None:
                continue
            both = [count, rejected[count.index]] if rec.rejected and count.index in rejected else [count]
            self.tokens_estimated = count.estimated
            self.tokens_total.append(max(side.total for side in both))
            for role, n in count.by_role.items():
                self.tokens_by_role.setdefault(role, []).append(n)
            self.pairs += len(both) - 1
            self.stepwise += positions is not None
            self.over_max_length += any(side.total > (self.max_length or side.total) for side in both)
            for side in both:
                kept = min(side.total, self.max_length or side.total)
                if positions is None:  # the assistant tokens truncation keeps
                    start = side.reply_start if side.reply_start is not None else kept
                    trained = max(0, min(side.by_role.get("assistant", 0), kept - start))
                else:  # the labelled steps truncation keeps
                    labels = [label for at, label in positions if at < kept]
                    trained, self.steps_true = len(labels), self.steps_true + sum(labels)
                    self.steps_false += len(labels) - sum(labels)
                self.trained_tokens += trained
                self.prompt_tokens += kept - trained
                self.truncated_tokens += side.total - kept

    def __getstate__(self) -> dict[str, Any]:
        # Leaving a worker: tokenise there (on that core), and send records no more.
        self._count_pending()
        return self.__dict__.copy()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._learned and self.tokenizer:
            remember(self.tokenizer, self._learned)
        self._learned = []


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
    batches as the records go by, so memory stays flat): the computation of the lint
    pass's :class:`Figures`, over records already in hand. Only readable records are
    measured; the index of each other one is appended to ``unreadable`` when given."""
    figures = Figures(tokenizer=tokenizer, max_length=max_length, stratify_by=stratify_by)
    for rec in records:
        figures.add(rec)
        if progress is not None and figures.records % 10_000 == 0:
            progress("measure", figures.records, 0)
    if unreadable is not None:
        unreadable.extend(figures.unreadable)
    return figures.stats(source)


def _rejected_side(rec: Record) -> Record:
    """A pair's other sequence: its prompt, then the rejected reply."""
    side = Record(rec.index, rec.data, source=rec.source)
    side.format, side.messages = rec.format, [*rec.messages[: len(rec.messages) - len(rec.reply)], *rec.rejected]
    return side


def _steps(records: list[Record], tokenizer: str | None) -> Iterator[tuple[TokenCount, list[tuple[int, bool]]]]:
    """Each stepwise record as TRL's PRMTrainer tokenises it (no chat template: the BOS token where
    the tokenizer has one, the prompt, each step and the step separator "\\n", a token estimated),
    with the position and label of each step's last token, the one its loss is on."""
    tok = load_tokenizer(tokenizer) if tokenizer else None
    separator = len(tok.encode("\n", add_special_tokens=False)) if tok is not None else 1
    bos = int(tok is not None and tok.bos_token_id is not None)
    for rec in records:
        prompt = rec.data.get("prompt")
        if type(prompt) is not str:  # a conversational prompt: its text
            prompt = "\n".join(m.text or "" for m in rec.prompt_messages())
        texts = [prompt, *(s for s in rec.data.get("completions") or () if type(s) is str)]
        encoded = tok(texts, add_special_tokens=False)["input_ids"] if tok is not None else None
        lengths = [len(ids) for ids in encoded] if encoded else [int(len(t) / CHARS_PER_TOKEN + 0.5) for t in texts]
        at = user = bos + lengths[0]
        positions = []
        labels = rec.data.get("labels")
        for n, label in zip(lengths[1:], labels if type(labels) is list else ()):
            at += n + separator
            if type(label) is bool:
                positions.append((at - 1, label))
        total = user + sum(lengths[1:]) + separator * (len(lengths) - 1)
        yield TokenCount(rec.index, total, {"user": user, "assistant": total - user}, estimated=tok is None), positions


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


__all__ = [
    "PROMPTS_KEPT",
    "UNREADABLE_WARNING_SHARE",
    "AuditStats",
    "Figures",
    "duplicate_cluster_sizes",
    "explain_unreadable",
    "measure",
]
