"""The base model: what it is (from ``config.json`` alone), how LoRA attaches to it, and loading it.

:func:`inspect_model` builds the architecture on the meta device, so an 8B config costs no memory
and no download of weights; everything the dry run says about parameters and adapters comes from
that skeleton. :func:`load_model` (in :mod:`ftdata_train.loading`, re-exported here) is the one place real
weights are loaded.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftdata_train.config import ConfigError, TrainConfig

# Loading with real weights lives in its own module; its names stay importable from here.
from ftdata_train.loading import (
    check_environment,
    enable_checkpointing,
    is_checkpointing,
    load_model,
    quantization_config,
    quiet_transformers,
    torch_dtype,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from peft import LoraConfig
    from transformers import PretrainedConfig

#: Module class-name fragments that mark an attention block or an MLP block; the default LoRA
#: targets are the linear layers found inside such blocks, whatever the layers are called.
_ATTENTION_MARKERS = ("attention", "attn")
_MLP_MARKERS = ("mlp", "feedforward", "ffn", "moe", "expert")


@dataclass(frozen=True, slots=True)
class LinearLayer:
    """One linear layer of the model (``nn.Linear`` or GPT-2's ``Conv1D``)."""

    path: str
    leaf: str
    in_features: int
    out_features: int
    bias: bool
    #: "attention", "mlp" or "other": the kind of block it sits in.
    block: str
    #: A ``Conv1D`` (weight stored as in x out), which peft adapts with ``fan_in_fan_out``.
    transposed: bool = False

    @property
    def weight_parameters(self) -> int:
        """Entries of the weight matrix (what bitsandbytes quantises)."""
        return self.in_features * self.out_features


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the dry run needs to know about a model, read without loading its weights."""

    name: str
    config: PretrainedConfig
    architecture: str
    #: Leaf names of the linear layers, excluding the output head, in model order.
    linear_modules: tuple[str, ...]
    #: The attention and MLP projections the model has (the default LoRA targets).
    default_targets: tuple[str, ...]
    total_parameters: int
    #: Every linear layer but the output head (the layers LoRA can adapt and bitsandbytes quantises).
    linears: tuple[LinearLayer, ...] = ()
    #: Path of the output head (``lm_head``), if the model has a separate one.
    output_head: str | None = None
    #: Whether the output head shares its weight with the input embedding.
    tied_embeddings: bool = False
    num_layers: int = 0
    hidden_size: int = 0
    intermediate_size: int = 0
    num_attention_heads: int = 0
    num_key_value_heads: int = 0
    head_dim: int = 0
    vocab_size: int = 0
    #: A gated MLP (SwiGLU: gate, up, down) rather than two linear layers around an activation.
    gated_mlp: bool = False

    @property
    def kv_size(self) -> int:
        """Width of the key (and of the value) projection: kv heads x head dim."""
        return self.num_key_value_heads * self.head_dim

    @property
    def quantizable_parameters(self) -> int:
        """Weight entries of the linear layers bitsandbytes turns into 4-bit blocks."""
        return sum(layer.weight_parameters for layer in self.linears)


def _read_config(name_or_path: str) -> PretrainedConfig:
    from transformers import AutoConfig, PretrainedConfig

    source = name_or_path
    bare_file = os.path.isfile(source) and source.endswith(".json")
    try:
        if bare_file:
            # a config.json on its own, without the model directory around it
            raw, _ = PretrainedConfig.get_config_dict(source)
            if not isinstance(raw, dict) or not raw.get("model_type"):
                raise ConfigError(f"{source}: config.json has no model_type")
            return AutoConfig.for_model(**raw)
        return AutoConfig.from_pretrained(source)
    except ConfigError:
        raise
    except Exception as exc:  # transformers reports a bad config with many exception types
        where = source if bare_file else f"model {name_or_path!r}"
        raise ConfigError(
            f"{where}: cannot read its config.json ({_first_line(exc)}); give a local directory with"
            " config.json, or a hub name already in the local cache"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).strip().splitlines()[:2]).strip()
    return text or type(exc).__name__


def _meta_model(config: PretrainedConfig) -> torch.nn.Module:
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"), quiet_transformers(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notes about a model the user never sees
        try:
            return AutoModelForCausalLM.from_config(config)
        except Exception as exc:  # an unknown class, or sizes the architecture rejects
            raise ConfigError(
                f"model type {config.model_type!r}: cannot build a causal LM from its config ({_first_line(exc)})"
            ) from exc


def _linear_types() -> tuple[type, ...]:
    import torch
    from transformers.pytorch_utils import Conv1D

    return (torch.nn.Linear, Conv1D)


def _block_kind(model: torch.nn.Module, path: str) -> str:
    """The kind of block a layer sits in, from the class names of the modules above it."""
    parts = path.split(".")
    module = model
    kind = "other"
    for part in parts[:-1]:
        module = getattr(module, part)
        name = type(module).__name__.lower()
        if any(marker in name for marker in _ATTENTION_MARKERS):
            kind = "attention"
        elif any(marker in name for marker in _MLP_MARKERS):
            kind = "mlp"
    return kind


def _linears(model: torch.nn.Module) -> tuple[tuple[LinearLayer, ...], str | None]:
    from transformers.pytorch_utils import Conv1D

    head: Any = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None  # type: ignore[operator]
    head_path = None
    found: list[LinearLayer] = []
    for path, found_module in model.named_modules():
        if not isinstance(found_module, _linear_types()):
            continue
        module: Any = found_module
        if module is head:
            head_path = path
            continue
        if isinstance(module, Conv1D):
            d_in, d_out = module.weight.shape  # Conv1D stores the transpose of nn.Linear
        else:
            d_out, d_in = module.weight.shape
        found.append(
            LinearLayer(
                path=path,
                leaf=path.rsplit(".", 1)[-1],
                in_features=int(d_in),
                out_features=int(d_out),
                bias=module.bias is not None,
                block=_block_kind(model, path),
                transposed=isinstance(module, Conv1D),
            )
        )
    return tuple(found), head_path


def _unique(names: Iterator[str] | list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _text_config(config: PretrainedConfig) -> PretrainedConfig:
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def inspect_model(name_or_path: str) -> ModelInfo:
    """Read a model's ``config.json`` (a directory, a hub name in the cache, or the file itself)
    and describe the model built from it on the meta device: no weights are read or allocated.

    Raises :class:`ConfigError` when the config cannot be read or names an unknown architecture.
    """
    config = _read_config(str(name_or_path))
    model = _meta_model(config)
    linears, head_path = _linears(model)
    leaves = _unique(layer.leaf for layer in linears)
    in_blocks = _unique(layer.leaf for layer in linears if layer.block in ("attention", "mlp"))
    # a model whose blocks are not named like attention/MLP still gets its per-layer linears
    default = in_blocks or _unique(layer.leaf for layer in linears if "." in layer.path)
    total = sum(p.numel() for p in model.parameters())  # parameters() yields a tied weight once
    text = _text_config(config)
    hidden = int(getattr(text, "hidden_size", 0) or getattr(text, "n_embd", 0) or 0)
    heads = int(getattr(text, "num_attention_heads", 0) or getattr(text, "n_head", 0) or 0)
    kv_heads = int(getattr(text, "num_key_value_heads", 0) or heads)
    head_dim = int(getattr(text, "head_dim", 0) or (hidden // heads if heads else 0))
    layers = int(getattr(text, "num_hidden_layers", 0) or getattr(text, "n_layer", 0) or 0)
    intermediate = int(getattr(text, "intermediate_size", 0) or getattr(text, "n_inner", 0) or 4 * hidden)
    embeddings: Any = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None  # type: ignore[operator]
    head: Any = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None  # type: ignore[operator]
    tied = bool(head is not None and embeddings is not None and head.weight is embeddings.weight)
    mlp_leaves = {layer.leaf for layer in linears if layer.block == "mlp"}
    return ModelInfo(
        name=str(name_or_path),
        config=config,
        architecture=(getattr(config, "architectures", None) or [type(model).__name__])[0],
        linear_modules=leaves,
        default_targets=default,
        total_parameters=int(total),
        linears=linears,
        output_head=head_path,
        tied_embeddings=tied,
        num_layers=layers,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=int(getattr(text, "vocab_size", 0) or 0),
        gated_mlp=len(mlp_leaves) >= 3,
    )


def resolve_targets(config: TrainConfig, info: ModelInfo) -> list[str] | str:
    """The ``target_modules`` peft gets: the model's attention and MLP projections by default,
    ``"all-linear"`` as given, or the configured names after checking the model has them.

    A name matches a layer's leaf name or a dotted suffix of its path (``self_attn.q_proj``), as
    peft matches them. Raises :class:`ConfigError` naming the model's linear layers otherwise.
    """
    wanted = config.lora.target_modules
    if wanted is None:
        return list(info.default_targets)
    if wanted == "all-linear":
        return "all-linear"
    paths = [layer.path for layer in info.linears]
    unknown = [name for name in wanted if not any(path == name or path.endswith("." + name) for path in paths)]
    if unknown:
        listed = ", ".join(info.linear_modules) or "(none)"
        raise ConfigError(
            f"lora.target_modules: {', '.join(repr(n) for n in unknown)} not in {info.name}; its linear"
            f' layers are: {listed} (or use "all-linear")'
        )
    return list(_unique(list(wanted)))


def adapted_layers(config: TrainConfig, info: ModelInfo) -> tuple[LinearLayer, ...]:
    """The linear layers LoRA attaches to under ``config`` (none for full fine-tuning)."""
    if config.method == "full":
        return ()
    targets = resolve_targets(config, info)
    if targets == "all-linear":
        return info.linears
    return tuple(
        layer
        for layer in info.linears
        if any(layer.path == name or layer.path.endswith("." + name) for name in targets)
    )


def lora_config(config: TrainConfig, info: ModelInfo) -> LoraConfig:
    """The peft ``LoraConfig`` for ``config`` on this model (targets resolved and checked)."""
    from peft import LoraConfig

    settings = config.lora
    layers = adapted_layers(config, info)
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=resolve_targets(config, info),
        use_dora=settings.use_dora,
        use_rslora=settings.use_rslora,
        bias=settings.bias,
        fan_in_fan_out=bool(layers) and all(layer.transposed for layer in layers),
        task_type="CAUSAL_LM",
    )


def trainable_parameters(config: TrainConfig, info: ModelInfo) -> int:
    """The exact number of parameters the optimiser updates.

    Full fine-tuning: every parameter (a tied embedding once). LoRA and QLoRA: peft is applied to
    the meta-device model and its trainable parameters counted, the same count
    ``PeftModel.get_nb_trainable_parameters()`` gives on the loaded model (the adapters do not
    depend on whether the base is 4-bit).
    """
    if config.method == "full":
        return info.total_parameters
    import torch
    from peft import get_peft_model

    peft_config = lora_config(config, info)
    model = _meta_model(info.config)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft's notes on a skeleton that is thrown away
        peft_model = get_peft_model(model, peft_config)
    trainable, _ = peft_model.get_nb_trainable_parameters()
    return int(trainable)


__all__ = [
    "LinearLayer",
    "ModelInfo",
    "adapted_layers",
    "check_environment",
    "enable_checkpointing",
    "inspect_model",
    "is_checkpointing",
    "load_model",
    "lora_config",
    "quantization_config",
    "resolve_targets",
    "torch_dtype",
    "trainable_parameters",
]
