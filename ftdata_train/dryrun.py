"""``dry_run(config)``: what a fine-tune will do and cost, from the model's ``config.json`` and
tokenizer alone (no weights are loaded; the model is built on the meta device).

It runs the same data gate as :func:`ftdata_train.train`, so a dataset that would refuse the
run refuses the dry run too (:class:`~ftdata_train.data.GateError`). Then: records and tokens
per split, the share of examples truncated and of tokens trained on, optimiser steps, the exact
trainable parameter count, GPU memory for LoRA, QLoRA and full fine-tuning, and an
order-of-magnitude time from FLOPs with its assumption stated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ftdata_train.config import ConfigError, TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from ftdata_train.estimate import MemoryEstimate, TimeEstimate
    from ftdata_train.labels import TokenizedExample
    from ftdata_train.manifest import SplitStats

METHODS = ("lora", "qlora", "full")
#: The time estimate's assumption unless told otherwise: a common training GPU at a
#: utilisation fine-tunes of this kind usually reach.
DEFAULT_GPU = "A100"
DEFAULT_UTILISATION = 0.35


@dataclass(frozen=True)
class Steps:
    """Optimiser steps: effective batch = batch_size × gradient_accumulation × 1 device."""

    effective_batch: int
    #: Sequences per epoch the trainer iterates (records, or packed sequences with packing).
    sequences: int
    per_epoch: int
    total: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "effective_batch": self.effective_batch,
            "sequences_per_epoch": self.sequences,
            "per_epoch": self.per_epoch,
            "total": self.total,
            "note": self.note,
        }


def count_steps(config: TrainConfig, records: int, tokens: int) -> Steps:
    """Steps per epoch and in total the way ``transformers.Trainer`` counts them: micro-batches
    per epoch ``ceil(sequences / batch_size)``, one optimiser step per ``gradient_accumulation``
    of them (the last partial group counts), ``ceil(epochs × per_epoch)`` unless ``max_steps``.

    With packing, the sequences are the packed ones: at least ``ceil(tokens / max_length)``
    (best-fit packing may need a few more), so there are fewer, fuller steps.
    """
    effective = config.batch_size * config.gradient_accumulation
    if config.packing:
        sequences = max(math.ceil(tokens / config.max_length), 1 if tokens else 0)
        note = (
            f"packing: {tokens:,} tokens fill at least {sequences:,} sequences of {config.max_length:,}"
            f" (instead of {records:,} examples), {effective} sequences per step"
        )
    else:
        sequences = records
        note = (
            f"{config.batch_size} per batch × {config.gradient_accumulation} accumulation × 1 device ="
            f" {effective} examples per step"
        )
    micro = math.ceil(sequences / config.batch_size) if sequences else 0
    per_epoch = max(math.ceil(micro / config.gradient_accumulation), 1) if micro else 0
    total = config.max_steps if config.max_steps > 0 else math.ceil(config.epochs * per_epoch)
    return Steps(effective, sequences, per_epoch, total, note)


@dataclass(frozen=True)
class DryRun:
    """A fine-tune's plan and cost. :meth:`to_dict` is JSON-ready."""

    config: TrainConfig
    model: dict[str, Any]
    kind: str
    splits: dict[str, SplitStats]
    steps: Steps
    trainable_parameters: int
    #: Memory estimates by method (lora, qlora, full) at the configured batch and length.
    memory: dict[str, MemoryEstimate]
    #: The sequence length the memory estimates assume (the longest batch after truncation).
    seq_len: int
    time: TimeEstimate | None
    time_assumption: str | None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: ``show_labels`` examples as the trainer sees them (``TokenizedExample``).
    labels: list[TokenizedExample] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    #: The model's tokenizer (to render ``labels``); not part of :meth:`to_dict`.
    tokenizer: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (what ``--output-format json`` prints)."""
        memory = {}
        for method, est in self.memory.items():
            entry = est.to_dict()
            entry["fits"] = {f"{gb}GB": ok for gb, ok in est.fits().items()}
            memory[method] = entry
        return {
            "model": self.model,
            "method": self.config.method,
            "kind": self.kind,
            "splits": {name: stats.to_dict() for name, stats in self.splits.items()},
            "steps": self.steps.to_dict(),
            "trainable_parameters": self.trainable_parameters,
            "seq_len": self.seq_len,
            "memory": memory,
            "time": self.time.to_dict() if self.time is not None else None,
            "time_assumption": self.time_assumption,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "labels": [
                {
                    "input_ids": list(ex.input_ids),
                    "trained": list(ex.trained),
                    "truncated": ex.truncated,
                    "length_before": ex.length_before,
                }
                for ex in self.labels
            ],
            "data_manifest": self.manifest,
            "config": self.config.to_dict(),
        }


def dry_run(
    config: TrainConfig,
    *,
    show_labels: int = 0,
    gpu: str = DEFAULT_GPU,
    utilisation: float = DEFAULT_UTILISATION,
) -> DryRun:
    """Plan the run ``config`` describes without loading weights.

    ``show_labels`` examples of the train split are tokenised the way the trainer will see
    them (render them with :func:`ftdata_train.labels.render_labels`). ``gpu`` and
    ``utilisation`` are the time estimate's assumption. Raises
    :class:`~ftdata_train.config.ConfigError` for a model that cannot be read and
    :class:`~ftdata_train.data.GateError` when the data fails the gate.
    """
    from transformers import AutoTokenizer

    from ftdata_train.data import prepare
    from ftdata_train.estimate import estimate_memory, estimate_time
    from ftdata_train.labels import tokenize_example
    from ftdata_train.model import inspect_model, resolve_targets, trainable_parameters

    info = inspect_model(config.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(config.model)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the tokenizer of {config.model!r}: {exc}") from exc
    prepared = prepare(config.data.train, config.data.eval, config=config, tokenizer=tokenizer)
    train_stats = prepared.stats["train"]
    tokens = train_stats.tokens
    steps = count_steps(config, train_stats.records, tokens)

    longest = train_stats.length_max
    seq_len = config.max_length if config.packing else min(config.max_length, longest)
    # Building peft on the meta model costs about a second on an 8B config: count once per
    # adapter shape (LoRA and QLoRA adapt the same layers; full trains every parameter).
    adapter = trainable_parameters(config.model_copy(update={"method": "lora"}), info)
    counts = {"lora": adapter, "qlora": adapter, "full": info.total_parameters}
    memory = {
        method: estimate_memory(
            info, config, seq_len=seq_len, batch_size=config.batch_size, method=method, trainable=counts[method]
        )
        for method in METHODS
    }
    trainable = counts[config.method]

    warnings = list(config.warnings())
    for split, stats in prepared.stats.items():
        p99 = stats.length_p99
        if p99 > config.max_length:
            warnings.append(
                f"{split}: the 99th percentile length is {p99:,} tokens, above max_length {config.max_length:,}"
            )

    time = None
    assumption = None
    trained_tokens = steps.total * steps.effective_batch * (tokens / steps.sequences if steps.sequences else 0)
    if config.packing:
        trained_tokens = steps.total * steps.effective_batch * config.max_length
    try:
        time = estimate_time(int(trained_tokens), info, config, gpu=gpu, utilisation=utilisation, trainable=trainable)
        assumption = (
            f"{time.gpu} at {utilisation:.0%} of its {time.peak_tflops:g} TFLOP/s peak,"
            f" {int(trained_tokens):,} tokens processed; {time.formula}"
        )
    except (ValueError, KeyError) as exc:
        assumption = f"no time estimate: {exc}"

    labels = []
    template = prepared.chat_template
    for example in prepared.train.select(range(min(show_labels, len(prepared.train)))):
        labels.append(
            tokenize_example(
                dict(example), tokenizer, max_length=config.max_length, loss=config.loss, chat_template=template
            )
        )

    targets = resolve_targets(config, info) if config.method != "full" else None
    return DryRun(
        config=config,
        model={
            "name": info.name,
            "architecture": info.architecture,
            "total_parameters": info.total_parameters,
            "target_modules": targets if isinstance(targets, str) or targets is None else list(targets),
        },
        kind=prepared.kind,
        splits=dict(prepared.stats),
        steps=steps,
        trainable_parameters=trainable,
        memory=memory,
        seq_len=seq_len,
        time=time,
        time_assumption=assumption,
        warnings=warnings,
        notes=list(prepared.notes),
        labels=labels,
        manifest=prepared.manifest.to_dict(),
        tokenizer=tokenizer,
    )
