"""FT7xx: preference pairs (DPO and its kin) and unpaired preference (KTO)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ftdata.engine.dataset import DatasetView
from ftdata.findings import Issue, Severity, plural
from ftdata.formats import PREFERENCE, UNPAIRED_PREFERENCE
from ftdata.problems import Problem
from ftdata.records import Message, Record
from ftdata.registry import Scope, rule
from ftdata.similarity.keys import PROMPT_FIELDS, canonical_json
from ftdata.similarity.text import canonical_bytes, digest_bytes

ERROR = Severity.ERROR
WARNING = Severity.WARNING


def _said(messages: Sequence[Message]) -> tuple[tuple[str, str, str], ...]:
    """What a reply says and does: role, whitespace-normalised text, tool calls."""
    out = []
    for m in messages:
        calls = ""
        if m.tool_calls and type(m.data) is dict:
            calls = repr(m.data.get("tool_calls", m.data.get("function_call")))
        out.append((m.role, " ".join((m.text or "").split()), calls))
    return tuple(out)


@rule("FT701", "chosen-equals-rejected", severity=ERROR)
def chosen_equals_rejected(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that the chosen and the rejected reply of a preference pair differ once runs
    of whitespace are collapsed.

    ## Why is this bad?
    DPO and its kin learn from the difference between the two replies: an identical pair
    gives a zero gradient at best, costs a forward pass for nothing, and usually means a
    join or an export copied one column into the other.

    ## Example
    ```json
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Paris. "}
    ```

    ## Fix
    Regenerate or drop the pair.
    """
    if record.format != PREFERENCE or not record.reply or not record.rejected:
        return None
    if _said(record.reply) != _said(record.rejected):
        return None
    return [
        Issue(
            "the chosen and rejected replies are identical (after whitespace normalisation): the pair teaches nothing",
            path=record.rejected[0].path,
        )
    ]


@rule("FT702", "empty-preference-reply", severity=ERROR)
def empty_preference_reply(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that neither reply of a preference pair is empty or only whitespace (an
    assistant turn with tool calls may have empty text). Empty turns of the prompt are
    FT110's.

    ## Why is this bad?
    An empty chosen reply teaches the model to stop at once; an empty rejected reply makes
    the pair trivially easy, so the model learns "say something" rather than what makes
    the chosen reply better. Either usually means a generation failed.

    ## Example
    ```json
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": ""}
    ```
    """
    if record.format != PREFERENCE:
        return None
    out = None
    for side, messages in (("chosen", record.reply), ("rejected", record.rejected)):
        for m in messages:
            if m.role != "assistant" or m.tool_calls or m.text is None or m.text.strip():
                continue
            out = out or []
            what = "empty" if not m.text else "only whitespace"
            out.append(Issue(f"the {side} reply is {what}", path=_text_path(m)))
    return out


def _text_path(m: Message) -> tuple[str | int, ...]:
    data = m.data
    if type(data) is dict:
        for key in ("content", "value"):
            if key in data:
                return (*m.path, key)
    return m.path


@rule("FT703", Problem.PROMPT_MISMATCH.value, scope=Scope.READER, severity=ERROR)
def implicit_prompt_mismatch() -> None:
    """## What it does
    Checks that the two conversations of an implicit-prompt pair (`chosen` and `rejected`
    as whole conversations, or `chosen_messages`/`rejected_messages`) share their prompt:
    every turn before the last reply, role and text.

    ## Why is this bad?
    Trainers take the prompt to be what the two conversations have in common (TRL's
    `extract_prompt` keeps their longest common prefix). When they differ earlier, the
    "replies" compared include user turns, or the pair answers two different questions,
    and the preference means nothing.

    ## Example
    ```json
    {"chosen": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}], "rejected": [{"role": "user", "content": "Capital of Spain?"}, {"role": "assistant", "content": "Lyon."}]}
    ```

    ## Fix
    Rebuild the pair from one prompt, or give it explicitly with `prompt`.
    """


@rule("FT704", Problem.INVALID_LABEL.value, scope=Scope.READER, severity=ERROR)
def invalid_kto_label() -> None:
    """## What it does
    Checks that the `label` of an unpaired-preference (KTO) record, or LLaMA-Factory's
    `kto_tag`, is the boolean `true` (desirable) or `false` (undesirable).

    ## Why is this bad?
    KTO weighs each completion up or down by its label. A `"false"` string is truthy in
    Python, so an undesirable example is trained towards; a number or null fails the
    cast when the dataset is loaded.

    ## Example
    ```json
    {"prompt": "Capital of France?", "completion": "Lyon.", "label": "false"}
    ```

    Use instead:
    ```json
    {"prompt": "Capital of France?", "completion": "Lyon.", "label": false}
    ```
    """


def kto_label(record: Record) -> bool | None:
    """The label of a readable unpaired-preference record (None: not a boolean, or not
    such a record): FT705's collector, and what the audit counts."""
    return record.label if record.readable else None


#: TRL's ``KTOTrainer`` warns unless ``desirable_weight * desirable`` over
#: ``undesirable_weight * undesirable`` lies in [1, 4/3] (Eq. 8 of the KTO paper).
KTO_WEIGHTED_RANGE = (Fraction(1), Fraction(4, 3))


@dataclass(frozen=True, slots=True)
class LabelBalance:
    """Desirable and undesirable examples of a KTO dataset: FT705's computation, and the
    audit's figure."""

    desirable: int
    undesirable: int

    @property
    def imbalance(self) -> float | None:
        """The commoner kind per example of the rarer one (None without both kinds)."""
        if not self.desirable or not self.undesirable:
            return None
        return max(self.desirable, self.undesirable) / min(self.desirable, self.undesirable)

    def weights(self, *, raise_rarer: bool = True) -> tuple[float, float] | None:
        """``(desirable_weight, undesirable_weight)`` for TRL's ``KTOConfig`` that put the
        weighted ratio in :data:`KTO_WEIGHTED_RANGE`: (1, 1) when it is there already, else
        the rarer kind's weight raised (or, ``raise_rarer=False``, the commoner kind's
        lowered), to two significant digits rounded so as to stay in the range. None
        without both kinds."""
        if not self.desirable or not self.undesirable:
            return None
        ratio = Fraction(self.desirable, self.undesirable)
        low, high = KTO_WEIGHTED_RANGE
        if low <= ratio <= high:
            return (1.0, 1.0)
        # The weighted ratio is d_w * ratio / u_w: rounding d_w up or u_w down keeps it
        # at 1 or just above (two digits err by under a tenth, well inside 4/3).
        if ratio > high:
            return (1.0, _two_digits(ratio, up=False)) if raise_rarer else (_two_digits(1 / ratio, up=True), 1.0)
        return (_two_digits(1 / ratio, up=True), 1.0) if raise_rarer else (1.0, _two_digits(ratio, up=False))

    def to_dict(self) -> dict[str, Any]:
        """The audit's JSON figures (see docs/guide.md)."""
        weights = self.weights()
        return {
            "desirable": self.desirable,
            "undesirable": self.undesirable,
            "ratio": round(self.desirable / self.undesirable, 4) if self.undesirable else None,
            "desirable_weight": weights[0] if weights else None,
            "undesirable_weight": weights[1] if weights else None,
            "weighted_ratio": (
                round(weights[0] * self.desirable / (weights[1] * self.undesirable), 4) if weights else None
            ),
        }


def _two_digits(value: Fraction, *, up: bool) -> float:
    """``value`` rounded up (or down) to two significant digits, exactly."""
    scale = Fraction(10) ** (1 - math.floor(math.log10(value)))
    scaled = value * scale
    return float(Fraction(math.ceil(scaled) if up else math.floor(scaled)) / scale)


@rule(
    "FT705",
    "kto-label-imbalance",
    scope=Scope.DATASET,
    severity=WARNING,
    collect=kto_label,
    ranges={"max_ratio": (1.0, 1e6)},
)
def kto_label_imbalance(dataset: DatasetView, *, max_ratio: float = 4.0) -> Iterator[Issue]:
    """## What it does
    Counts desirable and undesirable examples of an unpaired-preference (KTO) dataset and
    warns when one outnumbers the other by more than `max_ratio` to 1, naming the weights
    that restore the balance.

    ## Why is this bad?
    The KTO paper and TRL's `KTOTrainer` recommend keeping
    `desirable_weight * desirable : undesirable_weight * undesirable` between 1:1 and
    4:3; far outside it the loss is dominated by one kind of example and the model
    mostly learns to avoid (or repeat) it.

    ## Example
    900 records with `"label": true` and 100 with `"label": false`.

    ## Fix
    Set TRL's `desirable_weight`/`undesirable_weight` (in `KTOConfig`) to the weights the
    message names, or collect more examples of the rarer kind.

    ## Options
    - `max_ratio` (float, default 4.0): the largest ratio of one kind to the other that
      is left alone.
    """
    good = [i for i, label in dataset.collected if label is True]
    bad = [i for i, label in dataset.collected if label is False]
    if not good or not bad:
        if len(good) + len(bad) > 1:
            kind, members = ("desirable", good) if good else ("undesirable", bad)
            yield Issue(
                f"all {plural(len(members), 'labelled example')} are {kind}: KTO needs both kinds",
                index=members[0],
            )
        return
    balance = LabelBalance(len(good), len(bad))
    ratio, raised, lowered = balance.imbalance, balance.weights(), balance.weights(raise_rarer=False)
    if ratio is None or raised is None or lowered is None or ratio <= max_ratio:
        return
    if len(good) >= len(bad):
        weights = f"undesirable_weight={raised[1]:g} (or desirable_weight={lowered[0]:g})"
    else:
        weights = f"desirable_weight={raised[0]:g} (or undesirable_weight={lowered[1]:g})"
    yield Issue(
        f"{len(good):,} desirable to {len(bad):,} undesirable examples, {ratio:.1f} to 1: "
        f"set {weights} so that both kinds weigh about the same",
        index=(bad if len(good) >= len(bad) else good)[0],
    )


def pair_lengths(record: Record) -> tuple[int, int] | None:
    """The characters of the chosen and of the rejected reply of a readable preference
    pair: FT706's collector, and what the audit measures."""
    if record.format != PREFERENCE or not record.readable or not record.reply or not record.rejected:
        return None
    return (
        sum(len(m.text or "") for m in record.reply),
        sum(len(m.text or "") for m in record.rejected),
    )


@dataclass(frozen=True, slots=True)
class LengthBias:
    """How often the chosen reply of a pair is the longer one: FT706's computation, and the
    audit's figure. Pairs of equally long replies (``ties``) are in neither the share nor
    the median ratio."""

    pairs: int
    ties: int
    longer: int
    median_ratio: float | None

    @property
    def compared(self) -> int:
        """Pairs whose replies differ in length."""
        return self.pairs - self.ties

    @property
    def share(self) -> float:
        """Share of the compared pairs whose chosen reply is the longer one."""
        return self.longer / self.compared if self.compared else 0.0

    def biased(self, *, max_share: float, min_pairs: int) -> bool:
        """Whether FT706 with these options warns."""
        return self.compared >= min_pairs and self.share > max_share

    @property
    def message(self) -> str:
        """FT706's warning."""
        return (
            f"the chosen reply is the longer one in {self.longer:,} of {self.compared:,} pairs ({self.share:.0%}); "
            f"median chosen:rejected length ratio {self.median_ratio or 0:.2f}: DPO may learn length rather than quality"
        )

    def to_dict(self) -> dict[str, Any]:
        """The audit's JSON figures (see docs/guide.md)."""
        return {
            "pairs": self.pairs,
            "equal_length": self.ties,
            "chosen_longer": self.longer,
            "chosen_longer_share": round(self.share, 4),
            "median_length_ratio": None if self.median_ratio is None else round(self.median_ratio, 4),
        }


def length_bias(lengths: Iterable[tuple[int, int]]) -> LengthBias:
    """The :class:`LengthBias` of (chosen, rejected) reply lengths, in characters or tokens."""
    pairs = ties = longer = 0
    ratios = []
    for chosen, rejected in lengths:
        pairs += 1
        if chosen == rejected:
            ties += 1
            continue
        longer += chosen > rejected
        ratios.append(chosen / max(rejected, 1))
    return LengthBias(pairs, ties, longer, statistics.median(ratios) if ratios else None)


@rule(
    "FT706",
    "preference-length-bias",
    scope=Scope.DATASET,
    severity=WARNING,
    collect=pair_lengths,
    ranges={"max_share": (0.5, 1.0), "min_pairs": (1, 2**31)},
)
def preference_length_bias(dataset: DatasetView, *, max_share: float = 0.8, min_pairs: int = 20) -> Iterator[Issue]:
    """## What it does
    Measures how often the chosen reply of a preference pair is longer than the rejected
    one, and warns when that share is above `max_share`, with the median ratio of their
    lengths (in characters). Datasets with fewer than `min_pairs` pairs are left alone.

    ## Why is this bad?
    DPO is known to exploit length: when chosen replies are systematically longer, the
    cheapest way to lower the loss is to write more, and the tuned model grows verbose
    without getting better.

    ## Fix
    Rebalance the pairs (keep some where the shorter reply wins), or train with a
    length-normalised objective (TRL's `loss_type="ipo"` or SimPO-style normalisation, or
    a length penalty such as `rpo_alpha`/`ld_alpha`).

    ## Options
    - `max_share` (float, default 0.8): the share of pairs with the longer reply chosen
      above which the warning is given.
    - `min_pairs` (int, default 20): the fewest pairs worth measuring.
    """
    bias = length_bias(lengths for _, lengths in dataset.collected)
    if not bias.biased(max_share=max_share, min_pairs=min_pairs):
        return
    yield Issue(bias.message, index=next(i for i, (c, r) in dataset.collected if c > r))


#: Pairs whose replies the audit tokenises in one call of the tokenizer (as many as the
#: records of one batch of its other token figures).
PAIR_BATCH = 256


class PairFigures:
    """The audit's fold of the preference figures of a file, in the lint pass (see
    :class:`ftdata.engine.plan.Fold`): the chosen and rejected reply lengths of every pair
    (FT706's collector; in tokens too, with a tokenizer) and the label of every KTO record
    (FT705's), summed up by the rules' own computations (:func:`length_bias`,
    :class:`LabelBalance`). Lists concatenate in file order and counters add up, so shards
    merge exactly."""

    def __init__(self, tokenizer: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.chars: list[tuple[int, int]] = []
        self.tokens: list[tuple[int, int]] = []
        self.labels: Counter[bool | None] = Counter()
        self._pending: list[tuple[list[str], list[str]]] = []

    def add(self, rec: Record) -> None:
        """See one record of the pass."""
        lengths = pair_lengths(rec)
        if lengths is not None:
            self.chars.append(lengths)
            if self.tokenizer:
                self._pending.append(([m.text or "" for m in rec.reply], [m.text or "" for m in rec.rejected]))
                if len(self._pending) >= PAIR_BATCH:
                    self._count_pending()
        elif rec.format == UNPAIRED_PREFERENCE and rec.readable:
            self.labels[kto_label(rec)] += 1

    def merge(self, later: PairFigures) -> None:
        """Take in the fold of the shard that follows this one."""
        self._count_pending()
        later._count_pending()
        self.chars += later.chars
        self.tokens += later.tokens
        self.labels.update(later.labels)

    def figures(self, warnings: Mapping[str, str]) -> dict[str, Any]:
        """``preference`` (pairs, with ``tokens`` the same figures by tokens) and ``kto``
        figures, each only when the file has such records; ``warnings`` maps FT706 and
        FT705 to what they reported on the file."""
        self._count_pending()
        out: dict[str, Any] = {}
        if self.chars:
            tokens = length_bias(self.tokens).to_dict() if self.tokens else None
            out["preference"] = {
                **length_bias(self.chars).to_dict(),
                "tokens": tokens,
                "warning": warnings.get("FT706"),
            }
        if self.labels:
            balance = LabelBalance(self.labels[True], self.labels[False]).to_dict()
            out["kto"] = {**balance, "not_boolean": self.labels[None], "warning": warnings.get("FT705")}
        return out

    def _count_pending(self) -> None:
        """Tokenise the replies waiting, in one call."""
        if not self._pending or not self.tokenizer:
            return
        from ftdata.tokens import load_tokenizer

        pending, self._pending = self._pending, []
        texts = [text for chosen, rejected in pending for text in (*chosen, *rejected)]
        ids = iter(load_tokenizer(self.tokenizer)(texts, add_special_tokens=False)["input_ids"])
        for chosen, rejected in pending:
            self.tokens.append((sum(len(next(ids)) for _ in chosen), sum(len(next(ids)) for _ in rejected)))

    def __getstate__(self) -> dict[str, Any]:
        self._count_pending()  # in the worker that read the shard
        return self.__dict__.copy()


def _said_key(messages: Sequence[Message]) -> int:
    """A stable key of what a reply says and does, compared as FT707 compares prompts."""
    parts = []
    for m in messages:
        calls = b""
        if m.tool_calls and type(m.data) is dict:
            calls = canonical_json(m.data.get("tool_calls", m.data.get("function_call")))
        parts.append(m.role.encode() + b"\x1f" + canonical_bytes(m.text or "", casefold=True) + b"\x1f" + calls)
    return digest_bytes(b"\x1e".join(parts))


def _pair_key(record: Record) -> tuple[int, int, int] | None:
    """(prompt, chosen, rejected) keys of a readable preference pair: the prompt is every
    turn before the chosen reply, NFC, whitespace collapsed and case-folded, with the
    media and tools the record attaches to it."""
    if record.format != PREFERENCE or not record.readable or not record.reply or not record.rejected:
        return None
    turns = record.messages[: len(record.messages) - len(record.reply)]
    prompt = b"\x1e".join(m.role.encode() + b"\x1f" + canonical_bytes(m.text or "", casefold=True) for m in turns)
    data = record.data
    fields = {k: data[k] for k in PROMPT_FIELDS if k in data}
    if fields:
        prompt += b"\x1d" + canonical_json(fields)
    return (digest_bytes(prompt), _said_key(record.reply), _said_key(record.rejected))


@rule("FT707", "contradictory-preference", scope=Scope.DATASET, severity=WARNING, collect=_pair_key)
def contradictory_preference(dataset: DatasetView) -> Iterator[Issue]:
    """## What it does
    Checks for the same prompt with opposite preferences: reply A chosen over reply B in
    one record, and B chosen over A in a later one. Prompts and replies are compared
    after Unicode NFC normalisation, whitespace collapsing and case-folding; the prompt
    includes the system prompt and the media and tools the record attaches. Each later
    record is reported once, with the earlier records it contradicts as related records.
    The same pair given twice in the same order is a duplicate (FT401), not a
    contradiction.

    ## Why is this bad?
    DPO pushes the chosen reply up and the rejected one down: the two records cancel
    out, so both cost compute and teach nothing, and a preference model trained on them
    learns to be unsure. Flipped pairs usually come from annotators who disagree, or
    from merging two sources that order the columns differently.

    ## Example
    ```json
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}
    {"prompt": "capital of  France?", "chosen": "Lyon.", "rejected": "Paris."}
    ```

    ## Fix
    Decide which reply is better and drop the other record, or drop both when the
    annotators cannot agree.
    """
    seen: dict[tuple[int, int, int], list[int]] = {}
    for index, (prompt, chosen, rejected) in dataset.collected:
        if chosen == rejected:
            continue  # FT701's: a pair with nothing to prefer cannot be flipped
        earlier = seen.get((prompt, rejected, chosen))
        if earlier:
            shown = dataset.where(earlier[0])
            more = f" and {plural(len(earlier) - 1, 'other record')}" if len(earlier) > 1 else ""
            yield Issue(
                f"the same prompt prefers the opposite reply in {shown}{more}: "
                "this record's chosen reply is rejected there, and its rejected reply chosen",
                index=index,
                related=tuple(earlier),
            )
        seen.setdefault((prompt, chosen, rejected), []).append(index)
