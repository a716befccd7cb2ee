"""GPU memory and time a fine-tune will need, from the model's config alone.

:func:`estimate_memory` adds up what a training step holds at its peak on one GPU with the stack
ftdata_train runs (transformers + peft + TRL's ``SFTTrainer`` + bitsandbytes for QLoRA), part by
part, so each figure can be checked by hand. The formulas, their sources and how closely they
match published measurements are in ``docs/train.md``; in short, per token and decoder
layer the activations saved for the backward pass are (``a`` bytes per activation, ``h`` hidden
size, ``q`` = heads x head dim, ``k`` the key/value width, ``i`` the MLP width):

* RMSNorm (computed in float32 by the model code): ``2 x 4h``
* SDPA / flash attention (no ``s x s`` matrix kept): query, key, value, output ``a(2q + 2k)`` and
  the float32 log-sum-exp per head; batches with padding repeat the key/value heads (``k = q``)
* gated MLP: gate output, activation output, up output ``3ai`` (one ``ai`` without a gate)
* full fine-tuning adds every linear layer's input ``a(2h + q + i)`` and the normalised inputs of
  the two norm weights ``2ah``
* each LoRA adapter adds its float32 input copy ``4 d_in``, the dropout mask ``d_in`` when dropout
  is on, and ``4r`` for ``A``'s output

With gradient checkpointing each layer keeps only its input (``ah``) and one layer is recomputed
at a time. This is Korthikanti et al. (2022) "Reducing Activation Recomputation in Large
Transformer Models", counted tensor by tensor for the Llama-family code of transformers v5.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ftdata_train.config import ConfigError, TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from ftdata_train.model import LinearLayer, ModelInfo

GIB = 1024**3
#: GPU sizes :meth:`MemoryEstimate.fits` answers for (nominal GiB).
GPU_SIZES_GB: tuple[int, ...] = (24, 40, 48, 80)
#: CUDA context, kernels and library handles: memory a process holds outside PyTorch's allocator
#: (so outside ``torch.cuda.max_memory_allocated``), measured at 0.3-0.6 GiB on recent drivers.
RUNTIME_OVERHEAD_BYTES = GIB // 2
#: The caching allocator reserves more than it hands out (blocks split and rounded up); 8% of the
#: allocated peak is the usual gap between ``max_memory_reserved`` and ``max_memory_allocated``.
FRAGMENTATION = 0.08
#: CUDA's fused dropout keeps a one-byte boolean mask per element (the CPU kernel keeps a
#: mask in the input's dtype instead).
DROPOUT_MASK_BYTES = 1
#: bitsandbytes' 4-bit block size, and the block size of the second-level (double) quantisation.
QUANT_BLOCK = 64
DOUBLE_QUANT_BLOCK = 256
#: TRL's fused log-prob head projects ``TOKEN_TILE`` tokens x ``VOCAB_TILE`` vocabulary entries at
#: a time (``trl.kernels.chunked_logprob.TOKEN_CHUNK_SIZE``, ``trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE``).
TOKEN_TILE = 4096
VOCAB_TILE = 32768

#: Dense 16-bit tensor-core peak in TFLOP/s from the vendors' data sheets (no sparsity).
GPU_PEAK_TFLOPS: dict[str, float] = {
    "T4": 65.0,
    "V100": 125.0,
    "A10": 125.0,
    "A10G": 70.0,
    "L4": 121.0,
    "RTX3090": 71.0,
    "RTX4090": 165.0,
    "A100": 312.0,
    "L40S": 362.0,
    "H100-PCIE": 756.0,
    "H100": 989.0,
    "H200": 989.0,
}

Method = Literal["lora", "qlora", "full"]
LossHead = Literal["fused", "full"]
_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Peak GPU memory of one training step, in bytes, by part.

    ``allocated`` is what ``torch.cuda.max_memory_allocated`` would report; ``total`` adds the
    runtime overhead (CUDA context and allocator fragmentation) a GPU must also have room for.
    """

    method: str
    dtype: str
    seq_len: int
    batch_size: int
    gradient_checkpointing: bool
    trainable_parameters: int
    #: Base weights: 16-bit (or 32-bit) for LoRA and full; the packed 4-bit blocks for QLoRA.
    weights: int
    #: QLoRA: the absmax constants of the 4-bit blocks (with double quantisation, 8-bit absmax
    #: per 64 weights plus a float32 constant per 256 of them).
    quant_constants: int
    #: QLoRA: what bitsandbytes leaves in 16-bit (embeddings, norms, output head, biases).
    sixteen_bit_parts: int
    #: LoRA adapters (float32, as peft keeps them); 0 for full fine-tuning, whose trainable
    #: parameters are the weights.
    trainable: int
    gradients: int
    #: AdamW: two moments per trainable parameter, in the parameter's dtype.
    optimizer: int
    #: Activations saved for the backward pass at the configured checkpointing.
    activations: int
    activations_with_checkpointing: int
    activations_without_checkpointing: int
    #: The output head and loss (TRL's tiled log-prob head, or full logits).
    logits: int
    #: Temporaries: the dequantised copy of the largest 4-bit weight (QLoRA).
    buffers: int
    allocated: int
    #: CUDA context plus the allocator's fragmentation (see :data:`RUNTIME_OVERHEAD_BYTES`).
    overhead: int
    total: int
    notes: tuple[str, ...] = field(default=())

    def fits(self) -> dict[int, bool]:
        """Whether the total fits a GPU of each size in :data:`GPU_SIZES_GB` (GiB)."""
        return {size: self.total <= size * GIB for size in GPU_SIZES_GB}

    def to_dict(self) -> dict[str, Any]:
        """Every figure in bytes, plus ``fits`` keyed by GPU size as a string (for JSON)."""
        data = asdict(self)
        data["notes"] = list(self.notes)
        data["fits"] = {str(size): ok for size, ok in self.fits().items()}
        return data


@dataclass(frozen=True, slots=True)
class TimeEstimate:
    """An order-of-magnitude training time from FLOPs at an assumed GPU peak and utilisation."""

    tokens: int
    flops_per_token: float
    flops: float
    gpu: str
    peak_tflops: float
    utilisation: float
    seconds: float
    #: The FLOPs model in words, printed beside the figure.
    formula: str

    def to_dict(self) -> dict[str, Any]:
        """All fields (JSON-ready)."""
        return asdict(self)


def estimate_dtype(config: TrainConfig, method: str | None = None) -> str:
    """The dtype the estimate assumes on the GPU: the configured one, or for ``"auto"`` bfloat16
    (what ``torch_dtype`` picks on a GPU that has it), whatever machine the dry run runs on."""
    method = method or config.method
    if method == "qlora":
        return config.quantization.compute_dtype if config.dtype in ("auto", "float32") else config.dtype
    return "bfloat16" if config.dtype == "auto" else config.dtype


_LAYER_INDEX = re.compile(r"\.(\d+)\.")


def _adapter_bytes_per_layer(
    adapted: tuple[LinearLayer, ...],
    linears: tuple[LinearLayer, ...],
    *,
    act: int,
    dropout: float,
    r: int,
    mask_bytes: int = DROPOUT_MASK_BYTES,
) -> tuple[int, int]:
    """Bytes per token one decoder layer saves for its LoRA adapters (the largest layer's), and
    what the first layer saves less: its attention input needs no gradient, so dropout keeps no
    mask there."""
    per_layer: dict[str, int] = {}
    first_layer_saving = 0
    shared: set[tuple[str, bool]] = set()
    last_in_block = {layer.path.rsplit(".", 1)[0]: layer.path for layer in linears}
    for layer in adapted:
        match = _LAYER_INDEX.search(layer.path)
        key = match.group(1) if match else ""
        total = 4 * r  # A's output, saved for B's weight gradient
        if act == 4 and dropout == 0:
            # no cast and no dropout: A saves the very tensor it reads; the projections before a
            # block's last one all read the block's input, the last reads the block's inner tensor
            block = layer.path.rsplit(".", 1)[0]
            group = (block, last_in_block[block] == layer.path)
            # the attention's output projection reads SDPA's output, which SDPA saves already
            free = group[1] and layer.block == "attention"
            if group not in shared and not free:
                total += 4 * layer.in_features
            shared.add(group)
        else:
            # peft casts the input to the adapter's float32 (a copy per adapter); dropout keeps its
            # float32 output for A and a one-byte mask
            mask = mask_bytes * layer.in_features if dropout > 0 else 0
            total += 4 * layer.in_features + mask
            block = layer.path.rsplit(".", 1)[0]
            if key == "0" and layer.block == "attention" and last_in_block[block] != layer.path:
                first_layer_saving += mask
        per_layer[key] = per_layer.get(key, 0) + total
    return max(per_layer.values(), default=0), first_layer_saving


def _layer_bytes(info: ModelInfo, *, method: str, act: int, repeat_kv: bool, adapters: int) -> int:
    h, q, i = info.hidden_size, info.num_attention_heads * info.head_dim, info.intermediate_size
    kv = q if repeat_kv else info.kv_size
    norms = 2 * (4 * h + 4)  # float32 input copy and 1/rms per token, in each of the two norms
    attention = act * (2 * q + 2 * kv) + 4 * info.num_attention_heads
    mlp = act * (3 * i if info.gated_mlp else i)
    total = norms + attention + mlp + adapters
    if method == "full":
        # the inputs of the linear layers (the output projection reads SDPA's own saved output)
        # and the normalised tensors the norm weights multiply
        total += act * (2 * h + i) + 2 * act * h
    return total


def _outside_bytes(info: ModelInfo, *, method: str, act: int) -> int:
    """Bytes per token saved outside the decoder layers (the final norm, RoPE's tables)."""
    h = info.hidden_size
    total = 4 * h + 4  # the final norm's float32 copy and 1/rms
    total += 2 * act * info.head_dim  # RoPE cos and sin, shared by every layer
    if method == "full":
        total += act * h + 8  # the final norm's normalised input; the token ids for the embedding
    return total


def _logit_bytes(info: ModelInfo, *, method: str, act: int, tokens: int, head: LossHead) -> int:
    vocab, h = info.vocab_size, info.hidden_size
    if head == "full":
        # 16-bit logits, float32 log-softmax kept for backward, and the two float32 gradients
        return tokens * vocab * (act + 12)
    tile = min(tokens, TOKEN_TILE) * min(vocab, VOCAB_TILE) * act
    saved = tokens * (act * h + 4 + 4 + 8)  # hidden states, log-sum-exp, entropy, targets
    backward = tile + 4 * h * tokens  # the tile again and the float32 hidden-state gradient
    if method == "full":
        backward += 4 * vocab * h  # float32 accumulator of the head's weight gradient
    return saved + max(tile, backward)


def estimate_memory(
    info: ModelInfo,
    config: TrainConfig,
    *,
    seq_len: int | None = None,
    batch_size: int | None = None,
    method: str | None = None,
    trainable: int | None = None,
    loss_head: LossHead = "fused",
) -> MemoryEstimate:
    """Peak GPU memory of a training step of ``config`` on the model ``info`` describes.

    ``seq_len`` (default ``config.max_length``), ``batch_size`` (default ``config.batch_size``)
    and ``method`` (default ``config.method``) vary one setting, so a dry run can show the three
    methods side by side. ``trainable`` reuses a count from
    :func:`~ftdata_train.model.trainable_parameters`. ``loss_head="full"`` estimates a loss that
    materialises the logits (the model's own loss) instead of TRL's tiled log-prob head.
    """
    from ftdata_train.model import adapted_layers, trainable_parameters

    method = method or config.method
    if method not in ("lora", "qlora", "full"):
        raise ConfigError(f"method {method!r}: expected lora, qlora or full")
    if method != config.method:
        config = config.model_copy(update={"method": method})
    seq = int(seq_len if seq_len is not None else config.max_length)
    batch = int(batch_size if batch_size is not None else config.batch_size)
    if seq < 1 or batch < 1:
        raise ConfigError(f"seq_len and batch_size must be positive (got {seq} and {batch})")
    dtype = estimate_dtype(config, method)
    width = _BYTES[dtype]
    act = width
    tokens = seq * batch
    n_total = info.total_parameters
    n_train = trainable if trainable is not None else trainable_parameters(config, info)
    notes: list[str] = []

    if method == "qlora":
        quantised = info.quantizable_parameters
        blocks = math.ceil(quantised / QUANT_BLOCK)
        weights = math.ceil(quantised / 2)
        if config.quantization.double_quant:
            constants = blocks + 4 * math.ceil(blocks / DOUBLE_QUANT_BLOCK)
            constants += len(info.linears) * (256 * 4 + 4)  # each layer's 8-bit code table and offset
        else:
            constants = 4 * blocks
        sixteen = (n_total - quantised) * width
        buffers = max((layer.weight_parameters for layer in info.linears), default=0) * width
    else:
        weights, constants, sixteen, buffers = n_total * width, 0, 0, 0

    if method == "full":
        adapter_memory, gradients, optimizer = 0, n_total * width, 2 * n_total * width
    else:
        adapter_memory, gradients, optimizer = 4 * n_train, 4 * n_train, 8 * n_train

    adapters = first_saving = 0
    if method != "full":
        adapters, first_saving = _adapter_bytes_per_layer(
            adapted_layers(config, info), info.linears, act=act, dropout=config.lora.dropout, r=config.lora.r
        )
        if config.lora.use_dora:
            notes.append(
                "DoRA's weight-norm temporaries are not included (a float32 weight-sized copy per adapted layer)"
            )
    repeat_kv = batch > 1 and info.kv_size != info.num_attention_heads * info.head_dim
    per_layer = _layer_bytes(info, method=method, act=act, repeat_kv=repeat_kv, adapters=adapters)
    outside = _outside_bytes(info, method=method, act=act)
    if method != "full":
        # the first layer's input needs no gradient: its input norm saves nothing, nor do the
        # dropouts of the adapters that read it
        first_saving += 4 * info.hidden_size + 4
    mask = batch * seq * seq if batch > 1 else 0  # padded batches carry a boolean 4-D mask
    without = tokens * (info.num_layers * per_layer + outside - first_saving) + mask
    with_ckpt = tokens * (info.num_layers * act * info.hidden_size + per_layer + outside) + mask
    activations = with_ckpt if config.gradient_checkpointing else without
    logits = _logit_bytes(info, method=method, act=act, tokens=tokens, head=loss_head)
    allocated = weights + constants + sixteen + adapter_memory + gradients + optimizer + activations + logits + buffers
    overhead = RUNTIME_OVERHEAD_BYTES + int(FRAGMENTATION * allocated)
    if info.vocab_size == 0 or info.hidden_size == 0 or info.num_layers == 0:
        notes.append("the model config lacks hidden size, layer count or vocabulary: activations are not estimated")
    return MemoryEstimate(
        method=method,
        dtype=dtype,
        seq_len=seq,
        batch_size=batch,
        gradient_checkpointing=config.gradient_checkpointing,
        trainable_parameters=int(n_train),
        weights=int(weights),
        quant_constants=int(constants),
        sixteen_bit_parts=int(sixteen),
        trainable=int(adapter_memory),
        gradients=int(gradients),
        optimizer=int(optimizer),
        activations=int(activations),
        activations_with_checkpointing=int(with_ckpt),
        activations_without_checkpointing=int(without),
        logits=int(logits),
        buffers=int(buffers),
        allocated=int(allocated),
        overhead=int(overhead),
        total=int(allocated + overhead),
        notes=tuple(notes),
    )


def flops_per_token(total: int, trainable: int, *, method: str, gradient_checkpointing: bool) -> tuple[float, str]:
    """Training FLOPs per token and the formula in words.

    Forward 2N; backward 2N for the activation gradients plus 2 per trainable parameter for the
    weight gradients: 6N for full fine-tuning, 4N + 6N_trainable for LoRA (the adapters' own
    forward and backward included); checkpointing recomputes the forward (+2N). Attention's
    ``s^2`` term is left out (small below a few thousand tokens).
    """
    recompute = 2 * total if gradient_checkpointing else 0
    if method == "full":
        return 6.0 * total + recompute, "6*N" + (" + 2*N recompute" if recompute else "")
    return 4.0 * total + 6.0 * trainable + recompute, "4*N + 6*N_trainable" + (" + 2*N recompute" if recompute else "")


def estimate_time(
    tokens: int,
    info: ModelInfo,
    config: TrainConfig,
    *,
    gpu: str = "A100",
    utilisation: float = 0.35,
    trainable: int | None = None,
) -> TimeEstimate:
    """Seconds to train on ``tokens`` tokens (all epochs) at ``utilisation`` of ``gpu``'s dense
    16-bit peak (:data:`GPU_PEAK_TFLOPS`). An order of magnitude: report the assumption with it."""
    from ftdata_train.model import trainable_parameters

    key = gpu.upper().replace(" ", "")
    if key not in GPU_PEAK_TFLOPS:
        raise ConfigError(f"unknown GPU {gpu!r}; known: {', '.join(GPU_PEAK_TFLOPS)}")
    if not 0 < utilisation <= 1:
        raise ConfigError(f"utilisation must be in (0, 1], got {utilisation}")
    if tokens < 0:
        raise ConfigError(f"tokens must be >= 0, got {tokens}")
    n_train = trainable if trainable is not None else trainable_parameters(config, info)
    per_token, formula = flops_per_token(
        info.total_parameters, n_train, method=config.method, gradient_checkpointing=config.gradient_checkpointing
    )
    peak = GPU_PEAK_TFLOPS[key]
    flops = per_token * tokens
    return TimeEstimate(
        tokens=int(tokens),
        flops_per_token=per_token,
        flops=flops,
        gpu=key,
        peak_tflops=peak,
        utilisation=utilisation,
        seconds=flops / (peak * 1e12 * utilisation),
        formula=formula,
    )
