"""ftdata_train.model: the model read from config.json on the meta device, LoRA targets and
counts checked against peft on real built models, dtype and QLoRA environment checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from ftdata_train.config import ConfigError, TrainConfig  # noqa: E402
from ftdata_train.model import (  # noqa: E402
    adapted_layers,
    check_environment,
    inspect_model,
    is_checkpointing,
    load_model,
    lora_config,
    quantization_config,
    resolve_targets,
    torch_dtype,
    trainable_parameters,
)

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "model-configs"
LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.fixture(scope="module")
def llama3_8b():
    return inspect_model(str(CONFIGS / "llama-3-8b.json"))


def _save_random(config, directory: Path) -> Path:
    """Save a randomly initialised causal LM of ``config`` (real weights, a few hundred KB)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GPT-2 layout: Conv1D projections with biases (c_attn, c_proj, c_fc)."""
    from transformers import GPT2Config

    config = GPT2Config(vocab_size=300, n_embd=32, n_layer=2, n_head=2, n_positions=64)
    return _save_random(config, tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen2 layout: q/k/v projections with biases, grouped-query attention, tied embeddings."""
    from transformers import Qwen2Config

    config = Qwen2Config(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    return _save_random(config, tmp_path_factory.mktemp("qwen2"))


# Parameter counts the model cards publish (Llama 2 7B: 6.74B; Llama 3 8B: 8.03B; ...).
@pytest.mark.parametrize(
    ("name", "total", "architecture", "tied"),
    [
        ("llama-2-7b", 6_738_415_616, "LlamaForCausalLM", False),
        ("llama-2-13b", 13_015_864_320, "LlamaForCausalLM", False),
        ("llama-3-8b", 8_030_261_248, "LlamaForCausalLM", False),
        ("tinyllama-1.1b", 1_100_048_384, "LlamaForCausalLM", False),
        ("llama-3.2-1b", 1_235_814_400, "LlamaForCausalLM", True),
        ("gpt2", 124_439_808, "GPT2LMHeadModel", True),
    ],
)
def test_inspect_model_reads_real_configs_without_weights(name, total, architecture, tied):
    info = inspect_model(str(CONFIGS / f"{name}.json"))
    assert info.total_parameters == total
    assert info.architecture == architecture
    assert info.tied_embeddings is tied
    assert info.output_head == "lm_head"
    assert "lm_head" not in info.linear_modules
    if architecture == "LlamaForCausalLM":
        assert info.linear_modules == LLAMA_TARGETS
        assert info.default_targets == LLAMA_TARGETS
        assert info.gated_mlp


def test_inspect_model_finds_gpt2_conv1d_projections_by_type():
    info = inspect_model(str(CONFIGS / "gpt2.json"))
    assert info.default_targets == ("c_attn", "c_proj", "c_fc")
    c_attn = next(layer for layer in info.linears if layer.leaf == "c_attn")
    assert (c_attn.in_features, c_attn.out_features, c_attn.transposed) == (768, 2304, True)
    assert {layer.block for layer in info.linears} == {"attention", "mlp"}


def test_inspect_model_reads_a_model_directory(tiny_model: Path):
    info = inspect_model(str(tiny_model))
    assert info.default_targets == LLAMA_TARGETS
    assert info.num_layers == 2
    assert info.hidden_size == 64
    assert info.kv_size == 32


def test_inspect_model_bad_inputs_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"cannot read its config\.json"):
        inspect_model(str(tmp_path / "missing"))
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(ConfigError, match="no-such-architecture"):
        inspect_model(str(bad))
    untyped = tmp_path / "untyped.json"
    untyped.write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ConfigError, match="model_type"):
        inspect_model(str(untyped))


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        '{"model_type": "llama", "hidden_size": "big"}',
        '{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 3}',
    ],
    ids=["broken-json", "not-an-object", "wrong-type", "heads-do-not-divide"],
)
def test_inspect_model_refuses_broken_configs_with_config_errors(tmp_path: Path, text: str):
    as_file = tmp_path / "model.json"
    as_file.write_text(text)
    as_dir = tmp_path / "model"
    as_dir.mkdir()
    (as_dir / "config.json").write_text(text)
    for source in (as_file, as_dir):
        with pytest.raises(ConfigError, match="config"):
            inspect_model(str(source))


def _peft_count(model_dir: Path, config: TrainConfig) -> int:
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    peft_model = get_peft_model(model, lora_config(config, inspect_model(str(model_dir))))
    trainable, _ = peft_model.get_nb_trainable_parameters()
    return trainable


LORA_SETTINGS = [
    {},
    {"target_modules": "all-linear"},
    {"target_modules": ["q_proj", "v_proj"], "r": 4},
    {"target_modules": ["self_attn.o_proj", "down_proj"], "r": 32},
    {"use_dora": True, "r": 8},
    {"use_rslora": True, "r": 2},
    {"bias": "all"},
    {"bias": "lora_only", "target_modules": ["q_proj", "k_proj"]},
]


@pytest.mark.parametrize("lora", LORA_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "default")
def test_trainable_parameters_equal_peft_on_the_built_llama(tiny_model: Path, lora: dict):
    config = TrainConfig(model=str(tiny_model), lora=lora)
    assert trainable_parameters(config, inspect_model(str(tiny_model))) == _peft_count(tiny_model, config)


@pytest.mark.parametrize(
    "lora",
    [
        {},
        {"bias": "all"},
        {"bias": "lora_only"},
        {"target_modules": ["q_proj", "v_proj"], "bias": "all"},
        {"use_dora": True},
    ],
    ids=["default", "bias-all", "bias-lora-only", "qv-bias-all", "dora"],
)
def test_trainable_parameters_equal_peft_with_biases(tiny_qwen2: Path, lora: dict):
    config = TrainConfig(model=str(tiny_qwen2), lora=lora)
    assert trainable_parameters(config, inspect_model(str(tiny_qwen2))) == _peft_count(tiny_qwen2, config)


@pytest.mark.parametrize(
    "lora", [{}, {"bias": "all"}, {"target_modules": ["c_attn"]}], ids=["default", "bias", "c_attn"]
)
def test_trainable_parameters_equal_peft_on_gpt2_conv1d(tiny_gpt2: Path, lora: dict):
    config = TrainConfig(model=str(tiny_gpt2), lora=lora)
    assert trainable_parameters(config, inspect_model(str(tiny_gpt2))) == _peft_count(tiny_gpt2, config)
    assert lora_config(config, inspect_model(str(tiny_gpt2))).fan_in_fan_out is True


def test_full_fine_tuning_trains_every_parameter(tiny_model: Path, tiny_qwen2: Path):
    from transformers import AutoModelForCausalLM

    for directory in (tiny_model, tiny_qwen2):  # the second ties its embeddings: counted once
        model = AutoModelForCausalLM.from_pretrained(directory)
        expected = sum(p.numel() for p in model.parameters() if p.requires_grad)
        config = TrainConfig(model=str(directory), method="full")
        assert trainable_parameters(config, inspect_model(str(directory))) == expected


def _hand_lora(info, r: int, leaves: tuple[str, ...]) -> int:
    # r * (d_in + d_out) per adapted layer: A is r x d_in, B is d_out x r
    return sum(r * (layer.in_features + layer.out_features) for layer in info.linears if layer.leaf in leaves)


def test_trainable_parameters_on_the_meta_built_8b_match_the_hand_count(llama3_8b):
    h, kv, i, layers = 4096, 1024, 14336, 32
    per_layer = 16 * ((h + h) + (h + kv) + (h + kv) + (h + h) + (h + i) + (h + i) + (i + h))
    config = TrainConfig(model=llama3_8b.name)
    assert trainable_parameters(config, llama3_8b) == layers * per_layer == 41_943_040
    qv = TrainConfig(model=llama3_8b.name, lora={"r": 8, "target_modules": ["q_proj", "v_proj"]})
    assert trainable_parameters(qv, llama3_8b) == _hand_lora(llama3_8b, 8, ("q_proj", "v_proj"))


@pytest.mark.parametrize(
    ("name", "r", "published"),
    [("llama-2-7b", 8, 4_194_304), ("llama-2-13b", 8, 6_553_600), ("llama-2-7b", 32, 16_777_216)],
)
def test_trainable_parameters_match_litgpt_published_counts(name, r, published):
    """LitGPT's resource tables list the trainable count of LoRA on the query and value weights."""
    info = inspect_model(str(CONFIGS / f"{name}.json"))
    config = TrainConfig(model=info.name, lora={"r": r, "target_modules": ["q_proj", "v_proj"]})
    assert trainable_parameters(config, info) == published


def test_unknown_target_module_lists_the_linear_layers(llama3_8b):
    config = TrainConfig(model=llama3_8b.name, lora={"target_modules": ["q_proj", "query_key_value"]})
    with pytest.raises(ConfigError) as caught:
        resolve_targets(config, llama3_8b)
    message = str(caught.value)
    assert "'query_key_value'" in message
    assert "'q_proj'" not in message
    for leaf in LLAMA_TARGETS:
        assert leaf in message
    with pytest.raises(ConfigError):
        trainable_parameters(config, llama3_8b)


def test_resolve_targets_default_all_linear_and_suffixes(llama3_8b):
    base = TrainConfig(model=llama3_8b.name)
    assert resolve_targets(base, llama3_8b) == list(LLAMA_TARGETS)
    every = base.model_copy(update={"lora": base.lora.model_copy(update={"target_modules": "all-linear"})})
    assert resolve_targets(every, llama3_8b) == "all-linear"
    assert len(adapted_layers(every, llama3_8b)) == 7 * 32
    dotted = TrainConfig(model=llama3_8b.name, lora={"target_modules": ["mlp.down_proj", "down_proj"]})
    assert resolve_targets(dotted, llama3_8b) == ["mlp.down_proj", "down_proj"]
    assert len(adapted_layers(dotted, llama3_8b)) == 32
    assert adapted_layers(TrainConfig(model=llama3_8b.name, method="full"), llama3_8b) == ()


def test_lora_config_carries_the_settings(llama3_8b):
    config = TrainConfig(
        model=llama3_8b.name,
        lora={"r": 8, "alpha": 16, "dropout": 0.1, "use_dora": True, "use_rslora": True, "bias": "lora_only"},
    )
    peft_config = lora_config(config, llama3_8b)
    assert (peft_config.r, peft_config.lora_alpha, peft_config.lora_dropout) == (8, 16, 0.1)
    assert peft_config.use_dora
    assert peft_config.use_rslora
    assert peft_config.bias == "lora_only"
    assert set(peft_config.target_modules) == set(LLAMA_TARGETS)
    assert peft_config.task_type == "CAUSAL_LM"
    assert peft_config.fan_in_fan_out is False


def test_quantization_config_is_qlora_not_the_library_defaults():
    assert quantization_config(TrainConfig(model="m")) is None
    quant = quantization_config(TrainConfig(model="m", method="qlora"))
    assert quant.load_in_4bit
    assert not quant.load_in_8bit
    assert quant.bnb_4bit_quant_type == "nf4"
    assert quant.bnb_4bit_use_double_quant is True
    assert quant.bnb_4bit_compute_dtype == torch.bfloat16
    fp16 = quantization_config(
        TrainConfig(model="m", method="qlora", quantization={"compute_dtype": "float16", "double_quant": False})
    )
    assert fp16.bnb_4bit_compute_dtype == torch.float16
    assert fp16.bnb_4bit_use_double_quant is False


def test_torch_dtype_resolves_auto():
    assert torch_dtype(TrainConfig(model="m", dtype="float16")) == torch.float16
    assert torch_dtype(TrainConfig(model="m", method="qlora")) == torch.bfloat16
    auto = torch_dtype(TrainConfig(model="m"))
    if not torch.cuda.is_available():
        assert auto == torch.float32
    elif torch.cuda.is_bf16_supported():
        assert auto == torch.bfloat16
    else:
        assert auto == torch.float16


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_qlora_without_cuda_says_why_and_what_to_do(tiny_model: Path):
    config = TrainConfig(model=str(tiny_model), method="qlora")
    with pytest.raises(ConfigError) as caught:
        check_environment(config)
    message = str(caught.value)
    assert "CUDA" in message
    assert "bitsandbytes" in message
    assert "method = 'lora'" in message
    with pytest.raises(ConfigError, match="CUDA"):
        load_model(config)  # refused before any weight is read
    check_environment(TrainConfig(model=str(tiny_model)))  # plain LoRA runs here


def test_load_model_uses_the_configured_dtype_and_checkpointing(tiny_model: Path):
    bf16 = load_model(TrainConfig(model=str(tiny_model), dtype="bfloat16"))
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    assert is_checkpointing(bf16)
    assert bf16.config.use_cache is False
    plain = load_model(TrainConfig(model=str(tiny_model), gradient_checkpointing=False))
    assert {p.dtype for p in plain.parameters()} == {torch_dtype(TrainConfig(model="m"))}
    assert not is_checkpointing(plain)


def test_load_model_checks_targets_before_loading(tiny_model: Path):
    config = TrainConfig(model=str(tiny_model), lora={"target_modules": ["wq"]})
    with pytest.raises(ConfigError, match="q_proj"):
        load_model(config, info=inspect_model(str(tiny_model)))


def test_kbit_preparation_upcast_is_undone(tiny_model: Path):
    """peft's preparation casts every non-4-bit weight to float32; load_model casts them back."""
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from ftdata_train.loading import _restore_compute_dtype

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert not any(p.requires_grad for p in model.parameters())
    _restore_compute_dtype(model, torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
