"""Which tokens a fine-tune trains on, computed the way TRL's ``SFTTrainer`` computes them.

:func:`tokenize_example` reproduces TRL 1.16's preparation of one example (chat template,
assistant or completion mask, EOS on plain-text completions, truncation to ``max_length``
keeping the start); :func:`render_labels` shows the result with the trained text marked, and
:func:`label_preview` picks the examples ``ftdata train --dry-run --show-labels N`` prints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from rich.text import Text

    from ftdata_train.data import Prepared

#: What a resolved loss trains on: assistant turns, the completion, or every token.
ResolvedLoss = Literal["assistant", "completion", "all"]
#: Marks where truncation cut an example off.
TRUNCATED_MARK = "⟨truncated⟩"
TRAINED_OPEN, TRAINED_CLOSE = "[[", "]]"


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


def sft_loss_options(kind: str, loss: str) -> dict[str, bool]:
    """The ``SFTConfig`` switches that make TRL train on what :func:`tokenize_example`
    marks as trained: ``assistant_only_loss`` and ``completion_only_loss``."""
    resolved = resolve_loss(kind, loss)
    return {
        "assistant_only_loss": resolved == "assistant",
        "completion_only_loss": resolved == "completion",
    }


def training_chat_template(tokenizer: Any, loss: str) -> str | None:
    """The chat template TRL trains with: None (the tokenizer's own) unless assistant-only
    loss needs ``{% generation %}`` markers the template lacks, in which case TRL substitutes
    its patched copy of a known template. :class:`LossError` when there is none."""
    if loss != "assistant":
        return None
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise LossError(
            "the tokenizer has no chat template, so assistant turns cannot be found: give the model a chat"
            " template with {% generation %} markers, or set loss = 'all'"
        )
    if has_generation_markers(template):
        return None
    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:
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
    if kind == "messages":
        out = tokenizer.apply_chat_template(
            example["messages"],
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=assistant,
            **template_kwargs,
        )
        ids = list(out["input_ids"])
        if assistant:
            masks.append(list(out["assistant_masks"]))
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
        out = tokenizer.apply_chat_template(
            list(example["prompt"]) + list(example["completion"]),
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=assistant,
            **template_kwargs,
        )
        ids = list(out["input_ids"])
        if assistant:
            masks.append(list(out["assistant_masks"]))
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


def _pieces(example: TokenizedExample, tokenizer: Any) -> list[tuple[bool, str]]:
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
    pieces = [(flag, visible(t, keep_lines=True)) for flag, t in _pieces(example, tokenizer)]
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


@dataclass(frozen=True, slots=True)
class LabelPreview:
    """One previewed example: the split it is in, its row, its line in the input file (None
    when unknown) and how it is tokenised."""

    split: str
    row: int
    line: int | None
    example: TokenizedExample

    def render(self, tokenizer: Any, *, style: Literal["brackets", "rich"] = "brackets") -> str | Text:
        """:func:`render_labels` of this example."""
        return render_labels(self.example, tokenizer, style=style)


def label_preview(
    prepared_or_dataset: Prepared | Any,
    tokenizer: Any,
    n: int,
    *,
    max_length: int | None,
    loss: str,
    split: str = "train",
    chat_template: str | None = None,
) -> list[LabelPreview]:
    """The first ``n`` examples of a :class:`~ftdata_train.data.Prepared` split (``train`` by
    default) or of a ``datasets.Dataset`` / list of rows, tokenised as the trainer will
    (:func:`tokenize_example`). With a ``Prepared``, its chat template and source lines are
    used."""
    from ftdata_train.data import Prepared

    lines: Sequence[int | None] = ()
    if isinstance(prepared_or_dataset, Prepared):
        rows = prepared_or_dataset.train if split == "train" else prepared_or_dataset.eval
        lines = prepared_or_dataset.lines.get(split, ())
        chat_template = chat_template if chat_template is not None else prepared_or_dataset.chat_template
    else:
        rows = prepared_or_dataset
    out: list[LabelPreview] = []
    for row in range(min(max(n, 0), len(rows))):
        example = tokenize_example(
            dict(rows[row]), tokenizer, max_length=max_length, loss=loss, chat_template=chat_template
        )
        out.append(LabelPreview(split, row, lines[row] if row < len(lines) else None, example))
    return out
