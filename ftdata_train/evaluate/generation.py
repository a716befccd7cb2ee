"""Running a model on eval examples: summed loss over the trained tokens, greedy generation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ftdata_train.labels import TokenizedExample


# ---------------------------------------------------------------------------------------------
# Tokenisation, loss, generation


def example_losses(model: Any, items: Sequence[TokenizedExample], *, batch_size: int = 8) -> list[tuple[float, int]]:
    """Summed negative log-likelihood of the trained tokens of each item, and their count
    (a token is predicted from the ones before it, as in the model's own loss)."""
    import torch

    device = _device_of(model)
    out: list[tuple[float, int]] = []
    pad = 0
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            width = max(len(t.input_ids) for t in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for row, t in enumerate(batch):
                n = len(t.input_ids)
                ids[row, :n] = torch.tensor(t.input_ids)
                attention[row, :n] = 1
                trained = torch.tensor(t.trained, dtype=torch.bool)
                labels[row, :n] = torch.where(trained, ids[row, :n], torch.full_like(ids[row, :n], -100))
            logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits.float()
            shift_logits = logits[:, :-1, :]
            shift_labels = labels[:, 1:].to(device)
            nll = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)),
                shift_labels.reshape(-1),
                ignore_index=-100,
                reduction="none",
            ).view(shift_labels.shape)
            counts = (shift_labels != -100).sum(dim=1)
            for row in range(len(batch)):
                out.append((float(nll[row].sum()), int(counts[row])))
    return out


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[int]],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
) -> list[str]:
    """Greedy continuations of tokenised prompts (left-padded in batches), decoded without
    special tokens."""
    import torch
    from transformers import GenerationConfig

    device = _device_of(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = _eos_ids(model, tokenizer)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=pad, eos_token_id=eos or None
    )
    texts: list[str] = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            width = max(len(p) for p in batch)
            ids = torch.full((len(batch), width), pad if pad is not None else 0, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, p in enumerate(batch):
                if p:
                    ids[row, width - len(p) :] = torch.tensor(p)
                    attention[row, width - len(p) :] = 1
            output = model.generate(
                input_ids=ids.to(device), attention_mask=attention.to(device), generation_config=config
            )
            for row in range(len(batch)):
                new = output[row, width:].tolist()
                for k, token in enumerate(new):
                    if token in eos:
                        new = new[:k]
                        break
                texts.append(tokenizer.decode(new, skip_special_tokens=True))
    return texts


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    found: list[int] = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        found.append(configured)
    elif isinstance(configured, list):
        found.extend(int(v) for v in configured)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in found:
        found.append(tokenizer.eos_token_id)
    return found


def _device_of(model: Any) -> Any:
    import torch

    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        return torch.device("cpu")
