"""``TrainConfig``: everything a fine-tune needs, validated before anything loads.

Read from TOML, YAML or JSON with :meth:`TrainConfig.load`, or built in Python. Invalid
combinations raise :class:`ConfigError` (a ``ValueError``) with the field and the fix;
suspicious but legal values come back from :meth:`TrainConfig.warnings`. Checks that need the
model (target modules it has, CUDA for QLoRA) live where the model is read
(:mod:`ftdata_train.model`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Method = Literal["lora", "qlora", "full"]
Dtype = Literal["auto", "bfloat16", "float16", "float32"]
Loss = Literal["auto", "assistant", "completion", "all"]

#: The learning rates the field uses by default (QLoRA paper, TRL and PEFT examples).
DEFAULT_LEARNING_RATE: dict[str, float] = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}
#: Outside these bounds a learning rate is probably a typo for the method (a warning).
USUAL_LEARNING_RATE: dict[str, tuple[float, float]] = {
    "lora": (1e-5, 1e-3),
    "qlora": (1e-5, 1e-3),
    "full": (1e-7, 1e-4),
}


class ConfigError(ValueError):
    """A training configuration that cannot run: the message names the field and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoraSettings(_Section):
    """LoRA adapter shape (``[lora]``)."""

    r: int = Field(16, ge=1, le=4096, description="rank of the update matrices")
    alpha: int = Field(32, ge=1, description="scaling numerator (the update is scaled by alpha / r)")
    dropout: float = Field(0.05, ge=0, lt=1)
    #: None: the attention and MLP projections the model has; "all-linear": every linear layer
    #: but the output head (peft's meaning); or explicit module names.
    target_modules: list[str] | Literal["all-linear"] | None = None
    use_dora: bool = False
    use_rslora: bool = False
    bias: Literal["none", "all", "lora_only"] = "none"


class QuantizationSettings(_Section):
    """4-bit loading for QLoRA (``[quantization]``): nf4 with double quantisation by default."""

    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    compute_dtype: Literal["bfloat16", "float16"] = "bfloat16"


class DataSettings(_Section):
    """Where the data is and how the gate treats it (``[data]``)."""

    train: str | None = None
    eval: str | None = None
    #: Share of train held out (by ftdata's leak-free split) when no eval file is given.
    eval_size: float = Field(0.1, gt=0, lt=1)
    #: Finding codes the gate lets through (e.g. ["FT303"]); errors of any other code refuse.
    allow: list[str] = Field(default_factory=list)
    #: Examples whose trained tokens truncation removes entirely: refuse the run, or drop them
    #: (counted, with their lines, in the data manifest).
    fully_masked: Literal["refuse", "drop"] = "refuse"
    input_format: str | None = None


class TrainConfig(_Section):
    """One fine-tune. Every field has the default most runs want; ``model`` is required."""

    model: str = Field(description="hub name or local directory of the base model")
    method: Method = "lora"
    data: DataSettings = Field(default_factory=DataSettings)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    quantization: QuantizationSettings = Field(default_factory=QuantizationSettings)
    #: "auto": bfloat16 where the GPU supports it, else float16; float32 on a CPU.
    dtype: Dtype = "auto"
    max_length: int = Field(1024, ge=8, le=1_048_576)
    epochs: float = Field(3.0, gt=0)
    #: Stop after this many optimiser steps (overrides epochs when > 0).
    max_steps: int = Field(-1, ge=-1)
    #: None: the method's default (:data:`DEFAULT_LEARNING_RATE`).
    learning_rate: float | None = Field(None, gt=0)
    batch_size: int = Field(4, ge=1)
    gradient_accumulation: int = Field(4, ge=1)
    #: A fraction of the total steps when < 1, else a number of steps.
    warmup: float = Field(0.03, ge=0)
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts"] = "cosine"
    weight_decay: float = Field(0.0, ge=0)
    gradient_checkpointing: bool = True
    packing: bool = False
    #: "auto": assistant turns for conversations, the completion for prompt/completion data.
    loss: Loss = "auto"
    eval_steps: int | None = Field(None, ge=1)
    early_stopping_patience: int | None = Field(None, ge=1)
    save_strategy: Literal["steps", "epoch", "no"] = "epoch"
    save_steps: int = Field(500, ge=1)
    logging_steps: int = Field(10, ge=1)
    seed: int = 42
    output_dir: str = "outputs/run"

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model must name a hub model or a local directory")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> TrainConfig:
        if self.early_stopping_patience is not None and self.eval_steps is None:
            raise ValueError(
                "early_stopping_patience needs eval_steps (early stopping watches the eval loss); set eval_steps"
            )
        if self.method == "qlora" and self.dtype == "float32":
            raise ValueError("qlora computes in quantization.compute_dtype; dtype = 'float32' contradicts it")
        if self.method == "full" and self.dtype == "float16":
            raise ValueError(
                "full fine-tuning cannot train float16 weights (the fp16 gradient scaler refuses them);"
                " use dtype = 'bfloat16' on a GPU that has it, or 'float32'"
            )
        if self.early_stopping_patience is not None and self.save_strategy == "no":
            raise ValueError("early stopping restores the best checkpoint, so save_strategy cannot be 'no'")
        return self

    @property
    def resolved_learning_rate(self) -> float:
        """The configured learning rate, or the method's default."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATE[self.method]

    def warnings(self) -> list[str]:
        """Legal but suspicious settings, worded for a terminal."""
        found: list[str] = []
        low, high = USUAL_LEARNING_RATE[self.method]
        lr = self.resolved_learning_rate
        if not low <= lr <= high:
            found.append(
                f"learning_rate {lr:g} is outside the usual range for {self.method} ({low:g} to {high:g});"
                f" the default is {DEFAULT_LEARNING_RATE[self.method]:g}"
            )
        if self.method != "full" and self.lora.alpha / self.lora.r > 8 and not self.lora.use_rslora:
            found.append(
                f"lora.alpha / lora.r = {self.lora.alpha / self.lora.r:g} scales updates strongly; alpha is usually r to 2r"
            )
        if self.method == "full" and self.lora != LoraSettings():
            found.append("[lora] settings are ignored by method = 'full'")
        if self.packing and self.loss in ("assistant", "completion"):
            found.append(
                "packing with a masked loss: TRL builds each example's labels before packing, so the masks"
                " survive; packed examples are kept apart only by an attention implementation that"
                " honours position_ids (flash attention, TRL's padding-free path)"
            )
        return found

    def to_dict(self) -> dict[str, Any]:
        """Every field, defaults included (what a run records as its resolved config)."""
        data = self.model_dump(mode="json")
        data["learning_rate"] = self.resolved_learning_rate
        return data

    @classmethod
    def load(cls, path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
        """Read a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file; ``overrides`` replace top-level
        fields. Relative data paths and output_dir are resolved against the file's folder."""
        file = Path(path)
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read the training config ({exc.strerror or exc})") from exc
        suffix = file.suffix.lower()
        try:
            if suffix == ".toml":
                data = tomllib.loads(raw.decode("utf-8"))
            elif suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(raw) or {}
            elif suffix == ".json":
                import orjson

                data = orjson.loads(raw)
            else:
                raise ConfigError(f"{file}: unknown config type {suffix!r} (use .toml, .yaml or .json)")
        except ConfigError:
            raise
        except Exception as exc:  # parse errors of three parsers; the message is what matters
            raise ConfigError(f"{file}: not valid {suffix.lstrip('.').upper()}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: expected a table of settings at the top level")
        data.update(overrides)
        data = _resolve_paths(data, file.parent)
        return cls.parse(data, source=str(file))

    @classmethod
    def parse(cls, data: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Validate a mapping, turning pydantic's errors into one :class:`ConfigError` listing
        each field (``lora.r: Input should be greater than or equal to 1``)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "(top level)"
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    msg = "unknown setting (see `ftdata train --init` for the valid ones)"
                lines.append(f"  {where}: {msg}")
            raise ConfigError(f"{source}: invalid training config\n" + "\n".join(lines)) from None


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    def resolve(value: Any) -> Any:
        if isinstance(value, str) and value and not os.path.isabs(value):
            return str(base / value)
        return value

    data = dict(data)
    section = data.get("data")
    if isinstance(section, dict):
        section = dict(section)
        for key in ("train", "eval"):
            if key in section:
                section[key] = resolve(section[key])
        data["data"] = section
    if "output_dir" in data:
        data["output_dir"] = resolve(data["output_dir"])
    model = data.get("model")
    if isinstance(model, str) and model.startswith(("./", "../")):
        data["model"] = resolve(model)
    return data


INIT_TEMPLATE = """\
# ftdata train configuration. Run `ftdata train train.toml --dry-run` to check it.
# Every setting below shows its default; delete what you do not change.

model = "Qwen/Qwen2.5-0.5B-Instruct"   # hub name or local directory (required)
method = "lora"            # lora | qlora (4-bit base, needs CUDA) | full
dtype = "auto"             # auto (bf16 if the GPU has it, else fp16; fp32 on CPU) | bfloat16 | float16 | float32
max_length = 1024          # tokens per example after the chat template; longer ones are truncated
epochs = 3
max_steps = -1             # > 0: stop after this many optimiser steps
# learning_rate = 2e-4     # default: 2e-4 for lora/qlora, 2e-5 for full
batch_size = 4             # per device
gradient_accumulation = 4  # effective batch = batch_size * gradient_accumulation * GPUs
warmup = 0.03              # < 1: a fraction of the steps; >= 1: a number of steps
scheduler = "cosine"
weight_decay = 0.0
gradient_checkpointing = true
packing = false
loss = "auto"              # auto | assistant (assistant turns only) | completion | all
# eval_steps = 100         # evaluate every N steps (default: once per epoch)
# early_stopping_patience = 3   # needs eval_steps
save_strategy = "epoch"    # steps | epoch | no
save_steps = 500
logging_steps = 10
seed = 42
output_dir = "outputs/run"

[data]
train = "train.jsonl"
# eval = "eval.jsonl"      # without it, ftdata holds out eval_size of train with its leak-free split
eval_size = 0.1
allow = []                 # finding codes the gate lets through, e.g. ["FT303"]
fully_masked = "refuse"    # refuse | drop: examples truncation leaves with no trained token

[lora]
r = 16
alpha = 32
dropout = 0.05
# target_modules = ["q_proj", "v_proj"]   # default: the attention and MLP projections; or "all-linear"
use_dora = false
use_rslora = false

[quantization]             # method = "qlora" only
quant_type = "nf4"
double_quant = true
compute_dtype = "bfloat16"
"""


def init_template() -> str:
    """The commented default configuration ``ftdata train --init`` writes."""
    return INIT_TEMPLATE
