"""Which tokens a fine-tune trains on, computed the way TRL's ``SFTTrainer`` computes them.

:func:`tokenize_example` reproduces TRL 1.16's preparation of one example (chat template,
assistant or completion mask, EOS on plain-text completions, truncation to ``max_length``
keeping the start) with the tokenizer alone; :func:`label_pieces` cuts the result into runs of
trained and masked text and :func:`render_labels` marks them. :func:`record_row` turns a record
into the row TRL reads and :func:`label_records` does all of it for the first records of a
dataset (the audit's label view; ``ftdata train --dry-run --show-labels`` uses the same code).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from rich.text import Text

    from ftdata.records import Record

#: What a resolved loss trains on: assistant turns, the completion, or every token.
ResolvedLoss = Literal["assistant", "completion", "all"]
#: Marks where truncation cut an example off.
TRUNCATED_MARK = "⟨truncated⟩"
TRAINED_OPEN, TRAINED_CLOSE = "[[", "]]"
#: A ``{% generation %}`` tag in any whitespace-trim variant: TRL's test for assistant-only loss
#: (``trl.chat_template_utils.has_generation_markers``, on a named template's ``default``).
GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")


class LossError(ValueError):
    """A loss the data or the chat template cannot give (assistant-only loss without
    ``{% generation %}`` markers, or on plain-text prompt/completion data)."""


@dataclass(frozen=True, slots=True)
class TokenizedExample:
    """One example as the trainer sees it: token ids after truncation, which of them are
    trained on (their label is the token, not -100), whether truncation cut it and its length
    before."""

    input_ids: list[int]
    trained: list[bool]
    truncated: bool
    length_before: int

    @property
    def trained_tokens(self) -> int:
        """How many tokens carry a label."""
        return sum(self.trained)

    @property
    def fully_masked(self) -> bool:
        """True when no token is trained on (TRL drops such an example, or raises before
        truncation when it has no assistant token at all)."""
        return not any(self.trained)


def example_kind(example: dict[str, Any]) -> str:
    """``"messages"``, ``"prompt_completion"`` (plain text), ``"chat_prompt_completion"``
    (lists of messages) or ``"text"`` (language modelling), from the example's keys as TRL
    decides it."""
    if "messages" not in example and "prompt" not in example and isinstance(example.get("text"), str):
        return "text"
    if "prompt" in example:
        prompt = example["prompt"]
        return "chat_prompt_completion" if isinstance(prompt, list) else "prompt_completion"
    return "messages"


def resolve_loss(kind: str, loss: str) -> ResolvedLoss:
    """The loss ``"auto"`` means for ``kind`` (assistant turns for conversations, the
    completion for prompt/completion data, every token for language-modelling text);
    :class:`LossError` for a loss the kind cannot have."""
    if loss == "auto":
        return "assistant" if kind == "messages" else "all" if kind == "text" else "completion"
    if loss in ("assistant", "completion") and kind == "text":
        raise LossError(
            f"loss = {loss!r} needs {'conversations' if loss == 'assistant' else 'prompt/completion rows'},"
            " and this data is language-modelling text (a 'text' field, no prompt and no turns): TRL trains"
            " every token of it, so use loss = 'all' (or 'auto')"
        )
    if loss == "assistant" and kind == "prompt_completion":
        raise LossError(
            "loss = 'assistant' needs conversations, and this data is plain-text prompt/completion:"
            " use loss = 'completion' (or 'auto')"
        )
    if loss == "completion" and kind == "messages":
        raise LossError(
            "loss = 'completion' needs prompt/completion rows; prepare() turns conversations into them"
            " (the last assistant turn is the completion)"
        )
    if loss not in ("assistant", "completion", "all"):
        raise LossError(f"unknown loss {loss!r} (expected auto, assistant, completion or all)")
    return loss  # type: ignore[return-value]


def training_chat_template(tokenizer: Any, loss: str) -> str | None:
    """The chat template TRL trains with: None (the tokenizer's own) unless assistant-only
    loss needs ``{% generation %}`` markers the template lacks, in which case TRL substitutes
    its patched copy of a known template (without TRL installed, there is none).
    :class:`LossError` when there is none."""
    if loss != "assistant":
        return None
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise LossError(
            "the tokenizer has no chat template, so assistant turns cannot be found: give the model a chat"
            " template with {% generation %} markers, or set loss = 'all'"
        )
    default = template.get("default") or "" if isinstance(template, dict) else template
    if GENERATION_MARKER.search(default):
        return None
    try:
        from trl.chat_template_utils import get_training_chat_template

        patched = get_training_chat_template(tokenizer)
    except (ImportError, ValueError):
        patched = None
    if patched is None:
        raise LossError(
            "assistant-only loss needs the chat template to mark assistant text with {% generation %} ..."
            " {% endgeneration %}, and this template has no such markers (TRL has no patched copy of it):"
            " add the markers to the template, or set loss = 'all' to train on every token"
        )
    return patched


def tokenize_example(
    example: dict[str, Any],
    tokenizer: Any,
    *,
    max_length: int | None,
    loss: str,
    chat_template: str | None = None,
) -> TokenizedExample:
    """Tokenise ``example`` (a row in TRL's shape: ``messages``, or ``prompt``/``completion``,
    with optional ``tools``, or ``text``) exactly as TRL's ``SFTTrainer`` prepares it, and mark the tokens
    whose label is kept. ``loss`` may be ``"auto"``; ``chat_template`` is the one from
    :func:`training_chat_template` (None: the tokenizer's). Truncation keeps the first
    ``max_length`` tokens (TRL's default ``truncation_mode``); None does not truncate."""
    kind = example_kind(example)
    resolved = resolve_loss(kind, loss)
    tools = example.get("tools")
    tools = json.loads(tools) if isinstance(tools, str) else tools
    template_kwargs: dict[str, Any] = {"chat_template": chat_template, "tools": tools}
    assistant = resolved == "assistant"
    masks: list[list[int]] = []

    def conversation(messages: list[Any]) -> list[int]:
        out = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=assistant, **template_kwargs
        )
        if assistant:
            masks.append(list(out["assistant_masks"]))
        return list(out["input_ids"])

    if kind == "messages":
        ids = conversation(example["messages"])
    elif kind == "text":
        text = example["text"]
        eos = tokenizer.eos_token
        # TRL appends EOS to language-modelling text too, and renders no chat template.
        if eos and not text.endswith(eos):
            text = text + eos
        ids = list(tokenizer(text=text)["input_ids"])
    elif kind == "chat_prompt_completion":
        prompt_ids = tokenizer.apply_chat_template(
            example["prompt"], tokenize=True, return_dict=True, add_generation_prompt=True, **template_kwargs
        )["input_ids"]
        ids = conversation(list(example["prompt"]) + list(example["completion"]))
        if resolved == "completion":
            masks.append(_completion_mask(list(prompt_ids), ids))
    else:
        completion = example["completion"]
        eos = tokenizer.eos_token
        # TRL appends EOS to plain-text completions so that the model learns to stop.
        if eos and not completion.endswith(eos):
            completion = completion + eos
        prompt_ids = tokenizer(text=example["prompt"])["input_ids"]
        ids = list(tokenizer(text=example["prompt"] + completion)["input_ids"])
        if resolved == "completion":
            masks.append(_completion_mask(list(prompt_ids), ids))
    trained = [all(bits) for bits in zip(*masks, strict=False)] if masks else [True] * len(ids)
    # zip stops at the shortest mask; TRL's labels have the length of input_ids.
    trained += [False] * (len(ids) - len(trained))
    length = len(ids)
    if max_length is not None and length > max_length:
        return TokenizedExample(ids[:max_length], trained[:max_length], True, length)
    return TokenizedExample(ids, trained, False, length)


def _completion_mask(prompt_ids: list[int], ids: list[int]) -> list[int]:
    # The completion starts where the prompt alone and prompt + completion diverge (TRL's
    # common_prefix_length): some templates render the prompt differently on its own.
    start = 0
    for a, b in zip(prompt_ids, ids, strict=False):
        if a != b:
            break
        start += 1
    return [0] * start + [1] * (len(ids) - start)


def label_pieces(example: TokenizedExample, tokenizer: Any) -> list[tuple[bool, str]]:
    """The example's text cut into runs of trained and masked tokens. Each run's text is the
    difference between decoding the ids up to its end and up to its start, so that a
    character split over two tokens is not decoded in halves."""
    runs: list[tuple[bool, int, int]] = []
    for i, flag in enumerate(example.trained):
        if runs and runs[-1][0] == flag:
            runs[-1] = (flag, runs[-1][1], i + 1)
        else:
            runs.append((flag, i, i + 1))
    pieces: list[tuple[bool, str]] = []
    before = ""
    for flag, _, end in runs:
        text = tokenizer.decode(example.input_ids[:end], skip_special_tokens=False)
        pieces.append((flag, text[len(before) :] if text.startswith(before) else text))
        before = text
    return pieces


def render_labels(
    example: TokenizedExample, tokenizer: Any, *, style: Literal["brackets", "rich"] = "brackets"
) -> str | Text:
    """The example's text with what is trained on marked: ``brackets`` puts trained text
    inside ``[[...]]`` and masked text plain; ``rich`` returns a ``rich.text.Text`` with the
    trained tokens coloured and the masked ones dim. A cut example ends with ``⟨truncated⟩``.
    Control characters and escapes in the text are shown as escapes (``\\x1b``), line breaks
    and tabs kept."""
    from ftdata.render.text import visible

    # Records may hold ANSI escapes and control characters: shown, never sent to a terminal.
    pieces = [(flag, visible(t, keep_lines=True)) for flag, t in label_pieces(example, tokenizer)]
    if style == "brackets":
        text = "".join(f"{TRAINED_OPEN}{t}{TRAINED_CLOSE}" if flag else t for flag, t in pieces)
        return text + TRUNCATED_MARK if example.truncated else text
    if style != "rich":
        raise ValueError(f"unknown style {style!r} (expected 'brackets' or 'rich')")
    from rich.text import Text

    out = Text()
    for flag, t in pieces:
        out.append(t, style="bold green" if flag else "dim")
    if example.truncated:
        out.append(TRUNCATED_MARK, style="bold red")
    return out


def record_kind(rec: Record, loss: str) -> str:
    """The row shape a record becomes: ``messages``, ``prompt_completion`` (plain text),
    ``chat_prompt_completion`` or ``text`` (language modelling: TRL's ``dataset_text_field``)."""
    from ftdata.formats import PROMPT_COMPLETION, TEXT

    if rec.format == TEXT:
        return "text"
    if rec.format == PROMPT_COMPLETION:
        data = rec.data
        if isinstance(data.get("prompt"), str) and isinstance(data.get("completion"), str):
            return "prompt_completion"
        return "chat_prompt_completion"
    # Completion-only loss on conversations: the last assistant turn is the completion.
    return "chat_prompt_completion" if loss == "completion" else "messages"


def record_row(rec: Record, kind: str) -> dict[str, Any]:
    """The record as a row in TRL's shape (``kind`` from :func:`record_kind`), with its
    ``tools`` as a JSON string when it has any (:func:`ftdata.tokens.chat_messages` gives the
    messages)."""
    import orjson

    from ftdata.formats import PROMPT_COMPLETION
    from ftdata.tokens import chat_messages

    data = rec.data
    if kind == "text":
        row: dict[str, Any] = {"text": data["text"]}
    elif kind == "prompt_completion":
        row = {"prompt": data["prompt"], "completion": data["completion"]}
    else:
        messages = chat_messages(rec)
        if kind == "messages":
            row = {"messages": messages}
        elif rec.format == PROMPT_COMPLETION:
            parts = list(zip(messages, rec.messages, strict=True))
            row = {
                "prompt": [m for m, src in parts if src.path[:1] == ("prompt",)],
                "completion": [m for m, src in parts if src.path[:1] == ("completion",)],
            }
        else:
            last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
            row = {"prompt": messages[:last], "completion": messages[last:]}
    tools = data.get("tools")
    if tools is not None:
        row["tools"] = tools if isinstance(tools, str) else orjson.dumps(tools).decode()
    return row


@dataclass(frozen=True, slots=True)
class LabelledRecord:
    """One record as the trainer would see it: where it is, its text in runs of trained
    (True) and masked (False) text, whether truncation cut it, and why it could not be shown
    (``error``: the chat template or the loss refused it; ``pieces`` then empty)."""

    source: str
    line: int | None
    index: int
    pieces: tuple[tuple[bool, str], ...] = ()
    truncated: bool = False
    trained_tokens: int = 0
    tokens: int = 0
    error: str | None = None


def label_records(
    records: Iterable[Record], tokenizer: Any, n: int, *, max_length: int | None, loss: str = "auto"
) -> list[LabelledRecord]:
    """The first ``n`` readable records of ``records``, tokenised as the trainer would (the
    row :func:`record_row` makes, :func:`tokenize_example` with the chat template
    :func:`training_chat_template` picks), as runs of trained and masked text. A record the
    template or the loss refuses is kept with its reason, not skipped."""
    out: list[LabelledRecord] = []
    for rec in records:
        if len(out) >= n:
            break
        if not rec.readable:
            continue
        try:
            kind = record_kind(rec, loss)
            resolved = resolve_loss(kind, loss)
            template = training_chat_template(tokenizer, resolved)
            example = tokenize_example(
                record_row(rec, kind), tokenizer, max_length=max_length, loss=resolved, chat_template=template
            )
        except Exception as e:  # templates raise plain exceptions on what they refuse
            out.append(
                LabelledRecord(
                    rec.source,
                    rec.line,
                    rec.index,
                    error=f"{type(e).__name__}: {e}" if not isinstance(e, LossError) else str(e),
                )
            )
            continue
        pieces = tuple(label_pieces(example, tokenizer))
        out.append(
            LabelledRecord(
                rec.source,
                rec.line,
                rec.index,
                pieces=pieces,
                truncated=example.truncated,
                trained_tokens=example.trained_tokens,
                tokens=len(example.input_ids),
            )
        )
    return out


__all__ = [
    "GENERATION_MARKER",
    "TRAINED_CLOSE",
    "TRAINED_OPEN",
    "TRUNCATED_MARK",
    "LabelledRecord",
    "LossError",
    "ResolvedLoss",
    "TokenizedExample",
    "example_kind",
    "label_pieces",
    "label_records",
    "record_kind",
    "record_row",
    "render_labels",
    "resolve_loss",
    "tokenize_example",
    "training_chat_template",
]
