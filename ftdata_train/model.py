"""The base model: what it is (from ``config.json`` alone), how LoRA attaches to it, and loading it.

:func:`inspect_model` builds the architecture on the meta device, so an 8B config costs no memory
and no download of weights; everything the dry run says about parameters and adapters comes from
that skeleton. :func:`load_model` is the one place real weights are loaded, in the configured
dtype (never float32 by accident) and, for QLoRA, in 4-bit with bitsandbytes.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftdata_train.config import ConfigError, TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig, PretrainedConfig, PreTrainedModel

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

    with torch.device("meta"), _quiet_transformers(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notes about a model the user never sees
        try:
            return AutoModelForCausalLM.from_config(config)
        except Exception as exc:  # an unknown class, or sizes the architecture rejects
            raise ConfigError(
                f"model type {config.model_type!r}: cannot build a causal LM from its config ({_first_line(exc)})"
            ) from exc


@contextmanager
def _quiet_transformers() -> Iterator[None]:
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
        resolve_targets(config, info)  # an unknown target fails before the weights load
    dtype = torch_dtype(config)
    kwargs: dict[str, Any] = {"dtype": dtype}
    quant = quantization_config(config)
    if quant is not None:
        import torch

        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    with _quiet_transformers():
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
