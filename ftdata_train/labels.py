"""Which tokens a fine-tune trains on, computed the way TRL's ``SFTTrainer`` computes them.

The tokenizer-only core (:func:`tokenize_example`, :func:`render_labels`, the loss and template
choice) lives in :mod:`ftdata.labels`, which the audit's label view uses too; it is re-exported
here. This module adds what needs the trainer's data: :func:`sft_loss_options` (the ``SFTConfig``
switches) and :func:`label_preview`, which picks the examples ``ftdata train --dry-run
--show-labels N`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ftdata.labels import (
    TRAINED_CLOSE,
    TRAINED_OPEN,
    TRUNCATED_MARK,
    LossError,
    ResolvedLoss,
    TokenizedExample,
    example_kind,
    render_labels,
    resolve_loss,
    tokenize_example,
    training_chat_template,
)

if TYPE_CHECKING:  # pragma: no cover
    from rich.text import Text

    from ftdata_train.data import Prepared


def sft_loss_options(kind: str, loss: str) -> dict[str, bool]:
    """The ``SFTConfig`` switches that make TRL train on what :func:`tokenize_example`
    marks as trained: ``assistant_only_loss`` and ``completion_only_loss``."""
    resolved = resolve_loss(kind, loss)
    return {
        "assistant_only_loss": resolved == "assistant",
        "completion_only_loss": resolved == "completion",
    }


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


__all__ = [
    "TRAINED_CLOSE",
    "TRAINED_OPEN",
    "TRUNCATED_MARK",
    "LabelPreview",
    "LossError",
    "ResolvedLoss",
    "TokenizedExample",
    "example_kind",
    "label_preview",
    "render_labels",
    "resolve_loss",
    "sft_loss_options",
    "tokenize_example",
    "training_chat_template",
]
