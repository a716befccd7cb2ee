"""Token counts with a real tokenizer and its chat template, or a labelled estimate.

The tokenizer is a name or a local path loaded through transformers (imported here, on
first use). Without one, counts are estimated from characters and marked as estimates.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ftdata.records import Record

#: Characters per token for the estimate (a typical figure for English with BPE tokenizers).
CHARS_PER_TOKEN = 4.0
#: Tokens a template adds around each turn, for the estimate.
TURN_OVERHEAD = 4


@dataclass
class TokenCount:
    """Tokens of one record: in all (after the chat template), per role, and where the
    first assistant reply starts. ``error`` is set when the template failed to render."""

    index: int
    total: int = 0
    by_role: dict[str, int] = field(default_factory=dict)
    reply_start: int | None = None
    trainable: int | None = None
    error: str | None = None
    estimated: bool = False


@lru_cache(maxsize=4)
def load_tokenizer(name_or_path: str) -> Any:
    """A transformers tokenizer; local paths load without the network."""
    from ftdata.similarity.embeddings import quiet_hugging_face

    quiet_hugging_face()
    try:
        from transformers import AutoTokenizer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("token counts need the 'train' extra: pip install 'ftdata[train]'") from e
    local = Path(name_or_path).expanduser()
    if local.exists():
        return AutoTokenizer.from_pretrained(str(local), local_files_only=True)
    return AutoTokenizer.from_pretrained(name_or_path, local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")


def has_generation_markers(tokenizer: Any) -> bool:
    """True when the chat template marks assistant text with ``{% generation %}``, which
    assistant-only loss (TRL's ``assistant_only_loss``) needs."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = " ".join(template.values())
    return "generation" in template and "endgeneration" in template


def chat_messages(record: Record) -> list[dict[str, Any]]:
    """The record as the ``messages`` list chat templates take."""
    out: list[dict[str, Any]] = []
    for m in record.messages:
        message: dict[str, Any] = {"role": m.role, "content": m.text or ""}
        if m.tool_calls and type(m.data) is dict and type(m.data.get("tool_calls")) is list:
            message["tool_calls"] = m.data["tool_calls"]
        out.append(message)
    return out


def _ids(encoded: Any) -> list[int]:
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        return list(encoded["input_ids"])
    return list(encoded)


def count_tokens(
    records: Iterable[Record], *, tokenizer: str = "", chars_per_token: float = CHARS_PER_TOKEN, batch: int = 256
) -> Iterator[TokenCount]:
    """Token counts of ``records``, in order."""
    if not tokenizer:
        for rec in records:
            yield _estimate(rec, chars_per_token)
        return
    tok = load_tokenizer(tokenizer)
    marked = has_generation_markers(tok)
    pending: list[Record] = []
    for rec in records:
        pending.append(rec)
        if len(pending) >= batch:
            yield from _exact(tok, pending, marked)
            pending = []
    if pending:
        yield from _exact(tok, pending, marked)


def _estimate(rec: Record, chars_per_token: float) -> TokenCount:
    count = TokenCount(rec.index, estimated=True)
    position = 0
    for m in rec.messages:
        n = int(len(m.text or "") / chars_per_token + 0.5) + TURN_OVERHEAD
        count.by_role[m.role] = count.by_role.get(m.role, 0) + n
        if m.role == "assistant" and count.reply_start is None:
            count.reply_start = position + TURN_OVERHEAD
        position += n
    count.total = position
    return count


def _exact(tok: Any, records: list[Record], marked: bool) -> Iterator[TokenCount]:
    texts = [m.text or "" for rec in records for m in rec.messages]
    lengths = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]] if texts else []
    k = 0
    for rec in records:
        count = TokenCount(rec.index)
        for m in rec.messages:
            count.by_role[m.role] = count.by_role.get(m.role, 0) + lengths[k]
            k += 1
        messages = chat_messages(rec)
        try:
            rendered = tok.apply_chat_template(
                messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=marked
            )
            ids = _ids(rendered)
            count.total = len(ids)
            if marked and "assistant_masks" in rendered:
                mask = list(rendered["assistant_masks"])
                count.trainable = sum(mask)
                count.reply_start = mask.index(1) if 1 in mask else None
            first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), None)
            if count.reply_start is None and first is not None:
                prefix = tok.apply_chat_template(messages[:first], tokenize=True, add_generation_prompt=True)
                count.reply_start = len(_ids(prefix))
        except Exception as e:  # templates raise plain exceptions on roles they refuse
            count.error = f"{type(e).__name__}: {e}"
        yield count
