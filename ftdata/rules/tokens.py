"""FT5xx: token lengths with a real tokenizer and chat template (or a labelled estimate)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePath

from ftdata.engine.dataset import DatasetView
from ftdata.findings import Issue, Severity
from ftdata.records import Record
from ftdata.registry import Scope, rule
from ftdata.requirements import Tokenizer, looks_like_path
from ftdata.tokens import (
    CHARS_PER_TOKEN,
    TURN_OVERHEAD,
    TokenCount,
    count_tokens,
    has_generation_markers,
    load_tokenizer,
)

# Pieces of text that GPT-4's and GPT-4o's tokenizers never join into one token (and
# tokenizers with smaller vocabularies split finer): a word with its apostrophes, up to
# three digits, a run of signs (a single sign before a word may join the word). Han,
# kana and Hangul are counted apart, per character.
_PIECES = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d{1,3}|[^\w\s]{2,}|[^\w\s](?![^\W\d_])")
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
#: Tokens a Han, kana or Hangul character costs at the least (GPT-4o's tokenizer, the
#: most compact for Chinese of the common ones, needs about 0.6).
CJK_TOKENS_PER_CHAR = 0.5


def min_tokens(rec: Record) -> int:
    """A count of ``rec``'s tokens that common tokenizers do not go under: its pieces (see
    ``_PIECES``) and its CJK characters at :data:`CJK_TOKENS_PER_CHAR`, plus
    :data:`TURN_OVERHEAD` a turn. On the texts of public fine-tuning sets it came to 0.7
    to 1.0 times their GPT-4 and GPT-4o counts (0.94 typically), where the estimate at 4
    characters a token came to 0.5 to 1.6 times them (1.3 typically)."""
    total = 0
    for m in rec.messages:
        text = m.text or ""
        cjk = len(_CJK.findall(text)) if not text.isascii() else 0
        if cjk:
            text = _CJK.sub(" ", text)
        total += len(_PIECES.findall(text)) + int(cjk * CJK_TOKENS_PER_CHAR) + TURN_OVERHEAD
    return total


def _counts(dataset: DatasetView, tokenizer: str, chars_per_token: float) -> list[TokenCount]:
    return dataset.memo(
        ("tokens", tokenizer, chars_per_token),
        lambda: list(count_tokens(dataset.records(), tokenizer=tokenizer, chars_per_token=chars_per_token)),
    )


def _how(count: TokenCount, chars_per_token: float) -> str:
    if count.estimated:
        return f" (estimated at {chars_per_token:g} characters a token: set `tokenizer` for exact counts)"
    return ""


@rule(
    "FT501",
    "too-many-tokens",
    scope=Scope.DATASET,
    severity=Severity.WARNING,
    default=False,
    requires=(Tokenizer(),),
    ranges={"max_length": (1, 2**31), "chars_per_token": (0.1, 100)},
)
def too_many_tokens(
    dataset: DatasetView, *, tokenizer: str = "", max_length: int = 2048, chars_per_token: float = CHARS_PER_TOKEN
) -> Iterator[Issue]:
    """## What it does
    Counts each record's tokens after the chat template, with `tokenizer` (a name or local
    path), and reports records longer than `max_length`. Without a tokenizer the count is
    an estimate, and the message says so; since characters a token vary from about 3
    (code, JSON) to 6 (plain English) between texts and tokenizers, a record is then
    reported only when both the estimate from `chars_per_token` and a count that common
    tokenizers do not go under (its words, numbers and runs of punctuation, half a token
    a Han, kana or Hangul character, a few tokens a turn) are over `max_length`.
    Opt-in: select it.

    ## Why is this bad?
    Trainers truncate silently at `max_length`: the end of the conversation, usually the
    answer being taught, is cut off, and packing hides it further.

    ## Options
    - `tokenizer` (str, default ""): a tokenizer name or local path; empty for an estimate.
    - `max_length` (int, default 2048): the training sequence length.
    - `chars_per_token` (float, default 4.0): characters per token for the estimate.
    """
    over = [c for c in _counts(dataset, tokenizer, chars_per_token) if c.error is None and c.total > max_length]
    estimated = dataset.fetch(c.index for c in over if c.estimated)
    for count in over:
        if not count.estimated:
            yield Issue(
                f"{count.total:,} tokens after the chat template, over max_length {max_length:,}", index=count.index
            )
            continue
        # Characters a token vary from about 3 (code, JSON) to 6 (plain English) between
        # texts and tokenizers: an estimate is reported only when the record's words,
        # numbers and signs alone, which no common tokenizer joins, are over too.
        floor = min_tokens(estimated[count.index])
        if floor > max_length:
            yield Issue(
                f"~{count.total:,} tokens after the chat template, over max_length {max_length:,} "
                f"(estimated at {chars_per_token:g} characters a token, and at least {floor:,} by its words, "
                "numbers and punctuation: set `tokenizer` for exact counts)",
                index=count.index,
            )


@rule(
    "FT502",
    "no-trainable-tokens",
    scope=Scope.DATASET,
    severity=Severity.ERROR,
    default=False,
    requires=(Tokenizer(),),
    ranges={"max_length": (1, 2**31), "chars_per_token": (0.1, 100)},
)
def no_trainable_tokens(
    dataset: DatasetView, *, tokenizer: str = "", max_length: int = 2048, chars_per_token: float = CHARS_PER_TOKEN
) -> Iterator[Issue]:
    """## What it does
    Reports records whose first assistant reply starts at or beyond `max_length` tokens:
    after truncation no assistant token is left, so with assistant-only loss the example
    trains on nothing (a loss of 0, or NaN when a whole batch is like that).

    ## Why is this bad?
    The record costs compute and teaches nothing; a batch made only of such records
    produces a NaN loss that can derail the run.

    ## Options
    - `tokenizer` (str, default ""): a tokenizer name or local path; empty for an estimate.
    - `max_length` (int, default 2048): the training sequence length.
    - `chars_per_token` (float, default 4.0): characters per token for the estimate.
    """
    for count in _counts(dataset, tokenizer, chars_per_token):
        if count.error is None and count.reply_start is not None and count.reply_start >= max_length:
            yield Issue(
                f"the first assistant reply starts at token {count.reply_start:,}, beyond max_length "
                f"{max_length:,}: nothing is left to train on{_how(count, chars_per_token)}",
                index=count.index,
            )


@rule(
    "FT503",
    "chat-template-error",
    scope=Scope.DATASET,
    severity=Severity.ERROR,
    default=False,
    requires=(Tokenizer(required=True),),
)
def chat_template_error(dataset: DatasetView, *, tokenizer: str = "") -> Iterator[Issue]:
    """## What it does
    Renders every record with the tokenizer's chat template and reports those it refuses
    (a template that raises "roles must alternate", rejects a system message or a tool
    turn). Needs `tokenizer`. Opt-in: select it.

    ## Why is this bad?
    The trainer renders the same template: the run crashes on the record, or the loader
    drops it.

    ## Options
    - `tokenizer` (str, default ""): a tokenizer name or local path.
    """
    if not tokenizer:
        return
    for count in _counts(dataset, tokenizer, CHARS_PER_TOKEN):
        if count.error is not None:
            yield Issue(f"the chat template fails on this record: {count.error}", index=count.index)


@rule(
    "FT504",
    "template-lacks-generation",
    scope=Scope.DATASET,
    severity=Severity.WARNING,
    default=False,
    requires=(Tokenizer(required=True),),
)
def template_lacks_generation(dataset: DatasetView, *, tokenizer: str = "") -> Iterator[Issue]:
    """## What it does
    Checks that the tokenizer's chat template marks assistant text with
    `{% generation %}` ... `{% endgeneration %}`. Needs `tokenizer`. Opt-in: select it.

    ## Why is this bad?
    Assistant-only loss (TRL's `assistant_only_loss=True`, transformers'
    `return_assistant_tokens_mask`) needs the markers to know which tokens to train on;
    without them training fails, or silently trains on the prompts as well.

    ## Fix
    Use a template with the markers, or train on completions only with another method.

    ## Options
    - `tokenizer` (str, default ""): a tokenizer name or local path.
    """
    if not tokenizer or len(dataset) == 0:
        return
    if not has_generation_markers(load_tokenizer(tokenizer)):
        name = PurePath(tokenizer).name if looks_like_path(tokenizer) else tokenizer  # no I/O in a check
        yield Issue(f"the chat template of {name!r} has no {{% generation %}} markers for assistant-only loss")
