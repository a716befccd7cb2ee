"""``train(config)``: the data gate, the model in its configured dtype, peft and TRL's
``SFTTrainer`` on their current APIs, and a run folder that says what was trained on what.

The order matters: the environment is checked (QLoRA needs CUDA) and the data gate runs before
any weights load, so a run that cannot succeed fails in seconds. The run folder holds the
adapter (or the full model), the tokenizer, ``train-config.json`` (every setting, resolved),
``data-manifest.json`` (also copied into each checkpoint), ``metrics.json`` and
``versions.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdata_train.config import ConfigError, TrainConfig

if TYPE_CHECKING:
    from ftdata_train.data import Prepared

#: ``progress(stage, done, total)``: the shape ftdata's own progress callbacks take.
Progress = Callable[[str, int, int], None]

CONFIG_FILE = "train-config.json"
DATA_MANIFEST_FILE = "data-manifest.json"
METRICS_FILE = "metrics.json"
VERSIONS_FILE = "versions.json"

_VERSIONED = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes", "ftdata")


@dataclass(frozen=True)
class TrainResult:
    """What a finished run left behind, and how it went."""

    output_dir: Path
    global_step: int
    #: Mean training loss over the run (what the trainer reports), None when no step ran.
    train_loss: float | None
    #: The last evaluation's loss (the best one when early stopping restored it).
    eval_loss: float | None
    best_checkpoint: str | None
    trainable_parameters: int
    #: Files written into ``output_dir`` (names relative to it).
    files: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: The trained model in memory (the peft model for LoRA/QLoRA) and its tokenizer, for
    #: evaluating straight away; not part of :meth:`to_dict`.
    model: Any = field(default=None, repr=False, compare=False)
    tokenizer: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's ``--output-format json``)."""
        return {
            "output_dir": str(self.output_dir),
            "global_step": self.global_step,
            "train_loss": self.train_loss,
            "eval_loss": self.eval_loss,
            "best_checkpoint": self.best_checkpoint,
            "trainable_parameters": self.trainable_parameters,
            "files": list(self.files),
            "notes": list(self.notes),
        }


def library_versions() -> dict[str, str | None]:
    """Python and the versions of the libraries a run depends on (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _precision(config: TrainConfig) -> tuple[bool, bool]:
    """(bf16, fp16) mixed-precision flags: from the compute dtype for QLoRA, else the dtype."""
    from ftdata_train.model import torch_dtype

    name: str
    if config.method == "qlora":
        name = config.quantization.compute_dtype
    else:
        name = str(torch_dtype(config)).removeprefix("torch.")
    return name == "bfloat16", name == "float16"


def sft_arguments(config: TrainConfig, kind: str, *, has_eval: bool = True) -> tuple[Any, list[str]]:
    """The ``trl.SFTConfig`` for ``config`` on data of ``kind``, and notes on what was adapted.

    Every setting TRL or transformers would otherwise default differently is given
    explicitly: ``bf16`` (TRL turns it on by default), checkpointing under its current name
    (``activation_checkpointing``), ``report_to=[]`` (no tracker is contacted) and
    ``disable_tqdm`` (the library never draws on a terminal).
    """
    import torch
    from trl import SFTConfig

    from ftdata_train.labels import sft_loss_options

    notes: list[str] = []
    bf16, fp16 = _precision(config)
    eval_strategy = "no"
    if has_eval:
        eval_strategy = "steps" if config.eval_steps else "epoch"
    save_strategy, save_steps = config.save_strategy, config.save_steps
    early = config.early_stopping_patience is not None and has_eval
    if config.early_stopping_patience is not None and not has_eval:
        notes.append("early stopping is off: there is no eval data")
    if early and config.eval_steps and (save_strategy != "steps" or save_steps % config.eval_steps):
        # load_best_model_at_end needs a checkpoint at every evaluation
        save_strategy, save_steps = "steps", config.eval_steps
        notes.append(f"early stopping saves a checkpoint at every evaluation (every {config.eval_steps} steps)")
    kwargs: dict[str, Any] = {
        "output_dir": config.output_dir,
        "max_length": config.max_length,
        "packing": config.packing,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "learning_rate": config.resolved_learning_rate,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation,
        "warmup_steps": int(config.warmup) if config.warmup >= 1 else config.warmup,
        "lr_scheduler_type": config.scheduler,
        "weight_decay": config.weight_decay,
        "activation_checkpointing": config.gradient_checkpointing,
        "eval_strategy": eval_strategy,
        "eval_steps": config.eval_steps if eval_strategy == "steps" else None,
        "save_strategy": save_strategy,
        "save_steps": save_steps,
        "logging_steps": config.logging_steps,
        "seed": config.seed,
        "data_seed": config.seed,
        "report_to": [],
        "disable_tqdm": True,
        "use_cpu": not torch.cuda.is_available(),
        "bf16": bf16,
        "fp16": fp16,
        "load_best_model_at_end": early,
        "metric_for_best_model": "eval_loss" if early else None,
        "greater_is_better": False if early else None,
        **sft_loss_options(kind, config.loss),
    }
    if config.gradient_checkpointing:
        # reentrant checkpointing loses the gradients of a frozen base's inputs
        kwargs["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    return SFTConfig(**kwargs), notes


def _checkpoint(config: TrainConfig, resume: bool | str) -> str | None:
    """The checkpoint folder to resume from (None: a fresh run); refuses a fresh run over an
    output folder that already holds checkpoints, which would mix two runs."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(config.output_dir)
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    if resume is False:
        if last is not None:
            raise ConfigError(
                f"{out} already holds checkpoints ({Path(last).name}); resume with --resume or choose another output_dir"
            )
        return None
    if resume is True:
        if last is None:
            raise ConfigError(f"nothing to resume: {out} holds no checkpoint-* folder")
        return last
    folder = Path(resume)
    if not (folder / "trainer_state.json").is_file():
        raise ConfigError(f"{folder} is not a checkpoint folder (no trainer_state.json in it)")
    return str(folder)


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Keep the datasets progress bars (TRL's tokenising passes) off the terminal."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _callbacks(prepared: Prepared, progress: Progress | None, early_patience: int | None) -> list[Any]:
    from transformers import EarlyStoppingCallback, TrainerCallback

    class ManifestCallback(TrainerCallback):
        """Put the data manifest into every checkpoint, so a checkpoint says what it saw."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                prepared.manifest.save(folder)

    class ProgressCallback(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if progress is not None:
                progress("training", state.global_step, state.max_steps)

    found: list[Any] = [ManifestCallback()]
    if progress is not None:
        found.append(ProgressCallback())
    if early_patience is not None:
        found.append(EarlyStoppingCallback(early_stopping_patience=early_patience))
    return found


def _metrics(history: list[dict[str, Any]], output: Any) -> dict[str, Any]:
    train = [
        {k: h[k] for k in ("step", "epoch", "loss", "learning_rate", "grad_norm") if k in h}
        for h in history
        if "loss" in h
    ]
    evals = [
        {k: v for k, v in h.items() if k == "step" or k == "epoch" or k.startswith("eval_")}
        for h in history
        if "eval_loss" in h
    ]
    final = output.metrics if output is not None else {}
    return {
        "train": train,
        "eval": evals,
        "train_loss": final.get("train_loss"),
        "train_runtime": final.get("train_runtime"),
        "train_samples_per_second": final.get("train_samples_per_second"),
        "global_step": output.global_step if output is not None else None,
    }


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _length_warnings(prepared: Prepared, config: TrainConfig) -> list[str]:
    notes = []
    for split, stats in prepared.stats.items():
        p99 = stats.length_p99
        if p99 > config.max_length:
            notes.append(
                f"{split}: the 99th percentile length is {p99:,} tokens, above max_length {config.max_length:,};"
                " the longest examples are truncated (see --dry-run)"
            )
    return notes


def count_trainable(model: Any) -> int:
    """Parameters that will receive gradients (what peft's ``print_trainable_parameters`` counts)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train(config: TrainConfig, *, resume: bool | str = False, progress: Progress | None = None) -> TrainResult:
    """Run the fine-tune ``config`` describes and save it in ``config.output_dir``.

    ``resume=True`` continues from the last ``checkpoint-*`` in the output folder, a path from
    that checkpoint. Raises :class:`~ftdata_train.config.ConfigError` for a run that cannot
    start (no CUDA for QLoRA, a missing model, checkpoints in the way) and
    :class:`~ftdata_train.data.GateError` when the data fails the gate, both before any weights
    load. ``progress(stage, done, total)`` is called after every optimiser step.
    """
    import warnings

    from transformers import AutoTokenizer, PrinterCallback
    from trl import SFTTrainer

    from ftdata_train.data import prepare
    from ftdata_train.model import check_environment, inspect_model, load_model, lora_config

    check_environment(config)
    checkpoint = _checkpoint(config, resume)
    try:
        tokenizer = AutoTokenizer.from_pretrained(config.model)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the tokenizer of {config.model!r}: {exc}") from exc
    prepared = prepare(config.data.train, config.data.eval, config=config, tokenizer=tokenizer)
    # Only data that passed the gate is written, and only by a run that trains on it.
    prepared.write_split(Path(config.output_dir) / "data")
    too_long = _length_warnings(prepared, config)
    for note in too_long:
        warnings.warn(note, stacklevel=2)
    notes = [*prepared.notes, *too_long]
    has_eval = prepared.eval is not None and len(prepared.eval) > 0
    args, arg_notes = sft_arguments(config, prepared.kind, has_eval=has_eval)
    notes.extend(arg_notes)

    info = inspect_model(config.model)
    model = load_model(config, info=info)
    peft_config = lora_config(config, info) if config.method in ("lora", "qlora") else None
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _quiet_libraries():
        with warnings.catch_warnings():
            # peft and trl still call transformers' old checkpointing names; nothing to act on
            warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
            trainer = SFTTrainer(
                model=model,
                args=args,
                train_dataset=prepared.train,
                eval_dataset=prepared.eval if has_eval else None,
                processing_class=tokenizer,
                peft_config=peft_config,
                callbacks=_callbacks(
                    prepared, progress, config.early_stopping_patience if args.load_best_model_at_end else None
                ),
            )
        # with tqdm disabled the trainer prints every log dict to stdout; a library must not
        trainer.remove_callback(PrinterCallback)
        trainable = count_trainable(trainer.model)
        output = trainer.train(resume_from_checkpoint=checkpoint)
        eval_loss = None
        if has_eval:
            eval_loss = trainer.evaluate().get("eval_loss")
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    prepared.manifest.save(out)
    _write_json(out / CONFIG_FILE, config.to_dict())
    metrics = _metrics(trainer.state.log_history, output)
    metrics["final_eval_loss"] = eval_loss
    metrics["best_checkpoint"] = trainer.state.best_model_checkpoint
    metrics["best_metric"] = trainer.state.best_metric
    metrics["trainable_parameters"] = trainable
    _write_json(out / METRICS_FILE, metrics)
    _write_json(out / VERSIONS_FILE, library_versions())
    files = tuple(sorted(p.name for p in out.iterdir() if p.is_file()))
    train_loss = output.metrics.get("train_loss")
    return TrainResult(
        output_dir=out,
        global_step=output.global_step,
        train_loss=None if train_loss is None or math.isnan(train_loss) else float(train_loss),
        eval_loss=eval_loss,
        best_checkpoint=trainer.state.best_model_checkpoint,
        trainable_parameters=trainable,
        files=files,
        metrics=metrics,
        notes=tuple(notes),
        model=trainer.model,
        tokenizer=tokenizer,
    )
