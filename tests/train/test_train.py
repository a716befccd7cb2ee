"""train(): real optimiser steps on the tiny model (CPU, seconds), the run folder, resume, and
refusals that come before any weights load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from ftdata_train.config import ConfigError, TrainConfig  # noqa: E402
from ftdata_train.trainer import sft_arguments, train  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "ftdata" / "samples" / "support_chat.jsonl"


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines(keepends=True) if line.strip()]


def _distinct(path: Path, count: int) -> list[bytes]:
    """The first ``count`` records whose user turns are all different (the sample repeats some
    prompts, and a prompt shared between train and eval is leakage the gate refuses)."""
    seen: set[str] = set()
    kept: list[bytes] = []
    for line in _lines(path):
        prompt = " ".join(m["content"] for m in json.loads(line)["messages"] if m["role"] == "user").lower()
        if prompt not in seen:
            seen.add(prompt)
            kept.append(line)
    return kept[:count]


@pytest.fixture(scope="module")
def small_data(clean_chat: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """8 train records and 4 eval records, no prompt shared, from the clean sample."""
    lines = _distinct(clean_chat, 12)
    folder = tmp_path_factory.mktemp("small")
    (folder / "train.jsonl").write_bytes(b"".join(lines[:8]))
    (folder / "eval.jsonl").write_bytes(b"".join(lines[8:12]))
    return folder / "train.jsonl", folder / "eval.jsonl"


def _config(model: Path, data: tuple[Path, Path], out: Path, **changes: object) -> TrainConfig:
    settings: dict[str, object] = {
        "model": str(model),
        "data": {"train": str(data[0]), "eval": str(data[1])},
        "max_length": 256,
        "batch_size": 4,
        "gradient_accumulation": 1,
        "learning_rate": 1e-2,
        "warmup": 0,
        "scheduler": "constant",
        "logging_steps": 1,
        "save_strategy": "no",
        "gradient_checkpointing": False,
        "output_dir": str(out),
        "seed": 0,
    }
    settings.update(changes)
    return TrainConfig.parse(settings)


@pytest.fixture(scope="module")
def trained(tiny_model: Path, small_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run") / "out"
    config = _config(tiny_model, small_data, out, max_steps=30, save_strategy="steps", save_steps=15)
    return config, train(config)


def test_loss_falls_on_a_small_repeated_dataset(trained) -> None:
    _, result = trained
    assert result.global_step == 30
    losses = [entry["loss"] for entry in result.metrics["train"]]
    assert len(losses) == 30
    # a random model starts near ln(vocab); the adapters alone pull the loss down steadily
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1
    assert result.eval_loss is not None
    assert result.metrics["eval"]


def test_run_folder_holds_adapter_tokenizer_config_manifest_metrics_versions(trained) -> None:
    config, _ = trained
    out = Path(config.output_dir)
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer_config.json",
        "train-config.json",
        "data-manifest.json",
        "metrics.json",
        "versions.json",
    ):
        assert (out / name).is_file(), name
    assert TrainConfig.parse(json.loads((out / "train-config.json").read_text())) == config.model_copy(
        update={"learning_rate": config.resolved_learning_rate}
    )
    versions = json.loads((out / "versions.json").read_text())
    assert {"python", "torch", "transformers", "peft", "trl", "datasets", "ftdata"} <= set(versions)
    assert versions["torch"] == torch.__version__.split("+")[0] or versions["torch"].startswith(torch.__version__[:4])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 30
    assert len(metrics["train"]) == 30
    for checkpoint in ("checkpoint-15", "checkpoint-30"):
        assert (out / checkpoint / "data-manifest.json").read_bytes() == (out / "data-manifest.json").read_bytes()
    base_config = json.loads((out / "adapter_config.json").read_text())
    assert base_config["base_model_name_or_path"] == config.model


def test_adapter_reload_gives_identical_logits_and_merge_matches(trained, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftdata_train.merge import merge

    config, result = trained
    tokenizer = AutoTokenizer.from_pretrained(config.output_dir)
    ids = tokenizer("How do I export my notes to PDF?", return_tensors="pt")["input_ids"]
    model = result.model.eval()
    with torch.no_grad():
        live = model(ids).logits
        base = AutoModelForCausalLM.from_pretrained(config.model, dtype=torch.float32)
        reloaded = PeftModel.from_pretrained(base, config.output_dir).eval()
        again = reloaded(ids).logits
        merged_dir = merge(config.output_dir, tmp_path / "merged", dtype="float32")
        merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
        folded = merged(ids).logits
    torch.testing.assert_close(again, live, rtol=0, atol=1e-6)
    torch.testing.assert_close(folded, live, rtol=1e-4, atol=1e-4)


def test_trainable_count_is_peft_count(trained) -> None:
    from ftdata_train.model import inspect_model, trainable_parameters

    config, result = trained
    assert result.trainable_parameters == trainable_parameters(config, inspect_model(config.model))
    trainable, _ = result.model.get_nb_trainable_parameters()
    assert result.trainable_parameters == trainable


def test_resume_continues_from_the_checkpoint_step(
    tiny_model: Path, small_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = _config(tiny_model, small_data, out, max_steps=4, save_strategy="steps", save_steps=2)
    assert train(first).global_step == 4
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train(first)
    shutil.rmtree(out / "checkpoint-4")
    steps: list[int] = []
    resumed = train(
        first.model_copy(update={"max_steps": 5}), resume=True, progress=lambda stage, done, total: steps.append(done)
    )
    assert steps == [3, 4, 5]  # from checkpoint-2's global step, not from 0
    assert resumed.global_step == 5
    explicit: list[int] = []
    train(first, resume=str(out / "checkpoint-2"), progress=lambda stage, done, total: explicit.append(done))
    assert explicit == [3, 4]


def test_resume_without_a_checkpoint_is_a_config_error(
    tiny_model: Path, small_data: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(_config(tiny_model, small_data, tmp_path / "none", max_steps=1), resume=True)


@pytest.fixture
def weightless_model(tiny_model: Path, tmp_path: Path) -> Path:
    """The tiny model's config and tokenizer without weights: loading it fails, so a refusal
    raised with this model proves it came before the weights were read."""
    folder = tmp_path / "no-weights"
    shutil.copytree(tiny_model, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    return folder


def test_refuses_data_with_lint_errors_before_loading(weightless_model: Path, tmp_path: Path) -> None:
    from ftdata_train.data import GateError

    config = TrainConfig.parse(
        {"model": str(weightless_model), "data": {"train": str(SAMPLE)}, "output_dir": str(tmp_path / "o")}
    )
    with pytest.raises(GateError) as refused:
        train(config)
    assert refused.value.findings
    assert all(f.severity >= 30 for f in refused.value.findings)
    assert not (tmp_path / "o").exists()


def test_refuses_an_eval_set_that_leaks_before_loading(
    weightless_model: Path, clean_chat: Path, tmp_path: Path
) -> None:
    from ftdata_train.data import GateError

    lines = _lines(clean_chat)
    (tmp_path / "train.jsonl").write_bytes(b"".join(lines[:20]))
    (tmp_path / "eval.jsonl").write_bytes(b"".join(lines[15:25]))  # five train records reused
    config = _config(weightless_model, (tmp_path / "train.jsonl", tmp_path / "eval.jsonl"), tmp_path / "o")
    with pytest.raises(GateError) as refused:
        train(config)
    assert any(f.code.startswith("FT6") for f in refused.value.findings), [f.code for f in refused.value.findings]


def test_qlora_without_cuda_is_a_config_error(tiny_model: Path, small_data: tuple[Path, Path], tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="CUDA"):
        train(_config(tiny_model, small_data, tmp_path / "q", method="qlora", dtype="auto"))


def test_sft_arguments_use_the_current_api(tiny_model: Path, small_data: tuple[Path, Path], tmp_path: Path) -> None:
    config = _config(
        tiny_model,
        small_data,
        tmp_path / "a",
        eval_steps=5,
        early_stopping_patience=2,
        save_strategy="epoch",
        warmup=0.1,
        gradient_checkpointing=True,
    )
    args, notes = sft_arguments(config, "messages")
    assert args.max_length == 256
    assert args.assistant_only_loss
    assert not args.completion_only_loss
    assert args.activation_checkpointing is True
    assert args.eval_strategy == "steps"
    assert args.eval_steps == 5
    assert args.save_strategy == "steps"
    assert args.save_steps == 5
    assert args.load_best_model_at_end
    assert args.metric_for_best_model == "eval_loss"
    assert args.warmup_steps == 0.1
    assert args.report_to == []
    assert args.disable_tqdm
    assert not args.bf16
    assert not args.fp16
    assert any("every evaluation" in note for note in notes)
    plain, _ = sft_arguments(config.model_copy(update={"early_stopping_patience": None}), "prompt_completion")
    assert plain.completion_only_loss
    assert not plain.assistant_only_loss
    assert not plain.load_best_model_at_end
