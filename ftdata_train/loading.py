"""Loading the base model with real weights: the dtype (never float32 by accident), QLoRA's 4-bit
quantisation with bitsandbytes and peft's k-bit preparation, and activation checkpointing.

Refusals come first: :func:`check_environment` says, before anything loads, when this machine
cannot run the configuration (QLoRA without CUDA or bitsandbytes, bfloat16 on a GPU without it).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ftdata_train.config import ConfigError, TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import BitsAndBytesConfig, PreTrainedModel

    from ftdata_train.model import ModelInfo


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and info logging for the duration of a library call."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _dtype(name: str) -> torch.dtype:
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def quantization_config(config: TrainConfig) -> BitsAndBytesConfig | None:
    """QLoRA's 4-bit loading (nf4, double quantisation, 16-bit compute by default); None for the
    other methods. Spelled out in full because ``BitsAndBytesConfig``'s own defaults are fp4
    with float32 compute, not QLoRA."""
    if config.method != "qlora":
        return None
    from transformers import BitsAndBytesConfig

    q = config.quantization
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quant_type,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=_dtype(q.compute_dtype),
    )


def torch_dtype(config: TrainConfig) -> torch.dtype:
    """The dtype the weights are loaded in. ``"auto"``: bfloat16 on a CUDA GPU that supports it,
    else float16 on CUDA, float32 on a CPU; for QLoRA, the quantisation's compute dtype."""
    import torch

    if config.dtype != "auto":
        return _dtype(config.dtype)
    if config.method == "qlora":
        return _dtype(config.quantization.compute_dtype)
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def check_environment(config: TrainConfig) -> None:
    """Refuse, before anything loads, a configuration this machine cannot run.

    Raises :class:`ConfigError`: QLoRA without a CUDA GPU or without bitsandbytes, and bfloat16
    asked of a GPU that lacks it.
    """
    import torch

    if config.method == "qlora":
        if not torch.cuda.is_available():
            raise ConfigError(
                "method = 'qlora' needs a CUDA GPU: bitsandbytes' 4-bit (nf4/fp4) kernels that QLoRA"
                " trains through run on CUDA only, and none is visible here. Set method = 'lora' to"
                " train 16/32-bit adapters on this machine, or run on a machine with a CUDA GPU"
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(
                "method = 'qlora' needs bitsandbytes for 4-bit loading: pip install 'ftdata[train]'"
                " (or pip install bitsandbytes), or set method = 'lora'"
            )
    wants_bf16 = config.dtype == "bfloat16" or (
        config.method == "qlora" and config.quantization.compute_dtype == "bfloat16"
    )
    if wants_bf16 and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            "bfloat16 is not supported by this GPU; set dtype = 'float16'"
            + (" and quantization.compute_dtype = 'float16'" if config.method == "qlora" else "")
        )


def load_model(config: TrainConfig, *, info: ModelInfo | None = None) -> PreTrainedModel:
    """Load the base model with real weights, ready for peft (LoRA/QLoRA) or full training.

    Weights come in :func:`torch_dtype` (``dtype=``, so never float32 by accident); QLoRA loads
    4-bit through :func:`quantization_config` on the current CUDA device and runs peft's
    ``prepare_model_for_kbit_training``, after which the parts bitsandbytes left in 16-bit are
    returned to the compute dtype (see docs/train.md for why). With
    ``config.gradient_checkpointing`` the model checkpoints each decoder layer (non-reentrant,
    so no input-gradient hook is needed) and its KV cache is off. The model is not wrapped in peft.
    """
    from transformers import AutoModelForCausalLM

    check_environment(config)
    if info is not None and config.method != "full":
        from ftdata_train.model import resolve_targets

        resolve_targets(config, info)  # an unknown target fails before the weights load
    dtype = torch_dtype(config)
    kwargs: dict[str, Any] = {"dtype": dtype}
    quant = quantization_config(config)
    if quant is not None:
        import torch

        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    with quiet_transformers():
        try:
            model = AutoModelForCausalLM.from_pretrained(config.model, **kwargs)
        except OSError as exc:
            raise ConfigError(f"model {config.model!r}: cannot load its weights ({exc})") from exc
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        # checkpointing is switched on below, the same way for every method: non-reentrant, so
        # peft's input-gradient hook (needed only by reentrant checkpointing) stays out
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        _restore_compute_dtype(model, dtype)
    if config.gradient_checkpointing:
        enable_checkpointing(model)
        model.config.use_cache = False
    return model


def enable_checkpointing(model: PreTrainedModel) -> None:
    """Checkpoint every decoder layer, non-reentrant (so frozen embeddings need no input-gradient
    hook), through transformers' current name for it."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:  # pragma: no cover - transformers before the rename
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def is_checkpointing(model: PreTrainedModel) -> bool:
    """Whether the model checkpoints its layers (under either of transformers' names)."""
    flag = getattr(model, "is_activation_checkpointing", None)
    if flag is None:  # pragma: no cover - transformers before the rename
        flag = getattr(model, "is_gradient_checkpointing", False)
    return bool(flag)


def _restore_compute_dtype(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Undo ``prepare_model_for_kbit_training``'s float32 upcast of the non-4-bit weights.

    The upcast doubles the embeddings and head (2 GB more on Llama-3-8B) and, through float32 norm
    weights, turns every activation float32; Llama-family RMSNorms already normalise in float32.
    """
    import torch

    for param in model.parameters():
        if param.dtype == torch.float32 and type(param).__name__ != "Params4bit":
            param.data = param.data.to(dtype)
