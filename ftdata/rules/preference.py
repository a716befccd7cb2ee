"""FT7xx: preference pairs (DPO and its kin) and unpaired preference (KTO)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence

from ftdata.engine.dataset import DatasetView
from ftdata.findings import Issue, Severity, plural
from ftdata.formats import PREFERENCE
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


def _label(record: Record) -> bool | None:
    return record.label if record.readable else None


@rule(
    "FT705",
    "kto-label-imbalance",
    scope=Scope.DATASET,
    severity=WARNING,
    collect=_label,
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
    many, few = (good, bad) if len(good) >= len(bad) else (bad, good)
    ratio = len(many) / len(few)
    if ratio <= max_ratio:
        return
    if many is good:
        weights = f"undesirable_weight={ratio:.2g} (or desirable_weight={1 / ratio:.2g})"
    else:
        weights = f"desirable_weight={ratio:.2g} (or undesirable_weight={1 / ratio:.2g})"
    yield Issue(
        f"{len(good):,} desirable to {len(bad):,} undesirable examples, {ratio:.1f} to 1: "
        f"set {weights} so that both kinds weigh about the same",
        index=few[0],
    )


def _lengths(record: Record) -> tuple[int, int] | None:
    if record.format != PREFERENCE or not record.readable or not record.reply or not record.rejected:
        return None
    return (
        sum(len(m.text or "") for m in record.reply),
        sum(len(m.text or "") for m in record.rejected),
    )


@rule(
    "FT706",
    "preference-length-bias",
    scope=Scope.DATASET,
    severity=WARNING,
    collect=_lengths,
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
    pairs = [(i, c, r) for i, (c, r) in dataset.collected if c != r]
    if len(pairs) < min_pairs:
        return
    longer = [i for i, c, r in pairs if c > r]
    share = len(longer) / len(pairs)
    if share <= max_share:
        return
    ratio = statistics.median(c / max(r, 1) for _, c, r in pairs)
    yield Issue(
        f"the chosen reply is the longer one in {len(longer):,} of {len(pairs):,} pairs ({share:.0%}); "
        f"median chosen:rejected length ratio {ratio:.2f}: DPO may learn length rather than quality",
        index=longer[0],
    )


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
