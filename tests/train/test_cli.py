"""`ftdata train` and its dry run through the command line: --init, the dry run's JSON and
table, the label preview, and the exit codes (0 ok, 1 the gate refused, 2 config/environment)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from click.testing import CliRunner

from ftdata_train.cli.train import train_command
from ftdata_train.config import TrainConfig

SAMPLE = Path(__file__).resolve().parents[2] / "ftdata" / "samples" / "support_chat.jsonl"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _ftdata(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftdata", *args], capture_output=True, text=True, env=ENV)


def _write_config(path: Path, model: Path, train: Path, **extra: object) -> Path:
    lines = [f"model = {json.dumps(str(model))}", "max_length = 256", "batch_size = 2", "gradient_accumulation = 3"]
    lines.append(f"output_dir = {json.dumps(str(path.parent / 'run'))}")
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    lines += ["[data]", f"train = {json.dumps(str(train))}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_init_writes_a_config_that_parses(tmp_path: Path) -> None:
    proc = _ftdata("train", "--init")
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "train.toml").write_text(proc.stdout)
    config = TrainConfig.load(tmp_path / "train.toml")
    assert config.method == "lora"
    assert config.data.train == str(tmp_path / "train.jsonl")


def test_dry_run_json_fields_and_trainable_count_is_peft_count(
    tiny_model: Path, clean_chat: Path, tmp_path: Path
) -> None:
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from ftdata_train.model import inspect_model, lora_config

    config_file = _write_config(tmp_path / "train.toml", tiny_model, clean_chat)
    result = CliRunner().invoke(train_command, [str(config_file), "--dry-run", "--output-format", "json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    for key in ("model", "splits", "steps", "trainable_parameters", "memory", "time", "time_assumption", "warnings"):
        assert key in plan, key
    assert set(plan["memory"]) == {"lora", "qlora", "full"}
    assert plan["time"]["seconds"] > 0
    assert "A100" in plan["time_assumption"]
    assert set(plan["memory"]["lora"]["fits"]) == {"24GB", "40GB", "48GB", "80GB"}
    assert set(plan["splits"]) == {"train", "eval"}
    records = plan["steps"]["sequences_per_epoch"]
    assert plan["steps"]["effective_batch"] == 6
    assert records == plan["splits"]["train"]["records"]
    assert plan["steps"]["per_epoch"] == math.ceil(math.ceil(records / 2) / 3)
    assert plan["steps"]["total"] == 3 * plan["steps"]["per_epoch"]

    config = TrainConfig.load(config_file)
    info = inspect_model(config.model)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), lora_config(config, info))
    trainable, _ = model.get_nb_trainable_parameters()
    assert plan["trainable_parameters"] == trainable


def test_dry_run_text_table_and_label_preview(tiny_model: Path, clean_chat: Path, tmp_path: Path) -> None:
    config_file = _write_config(tmp_path / "train.toml", tiny_model, clean_chat)
    result = CliRunner().invoke(train_command, [str(config_file), "--dry-run", "--show-labels", "2"])
    assert result.exit_code == 0, result.output
    assert "Trainable parameters" in result.stdout
    assert "fits on" in result.stdout
    assert result.stdout.count("example ") >= 2
    assert "[[" in result.stdout  # trained tokens marked in plain text


def test_gate_refusal_exits_1_with_findings(tiny_model: Path, tmp_path: Path) -> None:
    config_file = _write_config(tmp_path / "train.toml", tiny_model, SAMPLE)
    proc = _ftdata("train", str(config_file), "--dry-run")
    assert proc.returncode == 1, proc.stderr
    assert "support_chat.jsonl:" in proc.stdout
    assert "refused" in proc.stderr
    result = CliRunner().invoke(train_command, [str(config_file), "--dry-run", "--output-format", "json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["refused"] is True
    assert payload["findings"]


def test_qlora_on_a_cpu_exits_2_with_the_reason(tiny_model: Path, clean_chat: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config_file = _write_config(tmp_path / "train.toml", tiny_model, clean_chat, method="qlora")
    proc = _ftdata("train", str(config_file))
    assert proc.returncode == 2, proc.stderr
    assert "CUDA" in proc.stderr
    assert "method = 'lora'" in proc.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [("model = \n", "not valid TOML"), ('model = "x"\nmethod = "lorax"\n', "method"), ("[lora]\nr = 4\n", "model")],
)
def test_bad_config_exits_2(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "train.toml").write_text(content)
    result = CliRunner().invoke(train_command, [str(tmp_path / "train.toml"), "--dry-run"])
    assert result.exit_code == 2
    assert message in result.output


def test_missing_model_and_usage_errors_exit_2(clean_chat: Path, tmp_path: Path) -> None:
    config_file = _write_config(tmp_path / "train.toml", tmp_path / "no-such-model", clean_chat)
    result = CliRunner().invoke(train_command, [str(config_file), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert CliRunner().invoke(train_command, []).exit_code == 2
    assert CliRunner().invoke(train_command, [str(config_file), "--show-labels", "1"]).exit_code == 2
