"""Fixtures for ftdata_train: a tiny random Llama-style chat model with a tokenizer trained on
the bundled sample, so every test runs real transformers/peft/trl code in seconds on a CPU."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ftdata_train.config import TrainConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SAMPLE = Path(__file__).resolve().parents[2] / "ftdata" / "samples" / "support_chat.jsonl"


def gate_config(tiny_model: Path, tmp_path: Path, **fields: Any) -> TrainConfig:
    """A config on the tiny model whose run folder is under ``tmp_path``."""
    data = fields.pop("data", {})
    return TrainConfig(model=str(tiny_model), output_dir=str(tmp_path / "run"), data=data, **fields)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` as a JSON Lines file at ``path``."""
    import orjson

    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def sft_trainer_dataset(
    model_dir: Path, prepared: Any, tmp_path: Path, *, tokenizer: Any = None, **sft: Any
) -> tuple[Any, Any]:
    """The train dataset as TRL's own ``SFTTrainer`` processes it for ``prepared`` (its loss
    options, plus ``sft`` settings such as ``max_length``), and the tokenizer it used: what the
    gate's counts and label preview must equal."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(model_dir)
    args = SFTConfig(
        output_dir=str(tmp_path / "trl"), report_to=[], use_cpu=True, disable_tqdm=True, **sft, **prepared.sft_options
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=prepared.train,
        processing_class=tokenizer,
    )
    return trainer.train_dataset, tokenizer


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a saved tiny chat model (tokenizer with a {% generation %} template)."""
    from ftdata_train.testing import build_tiny_model, sample_texts

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), sample_texts(SAMPLE))


@pytest.fixture(scope="session")
def clean_chat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's records that lint clean (its one broken line removed), as JSON Lines.

    Its tool-calling conversation is left out too: the tiny model's ChatML template does not
    render tool calls, so the gate refuses it (FTT102; tests/train/test_screening.py)."""
    import orjson

    import ftdata

    report = ftdata.lint(SAMPLE, config=False)
    bad = {f.line for f in report.findings if f.severity >= ftdata.Severity.ERROR}
    out = tmp_path_factory.mktemp("data") / "chat.jsonl"
    with open(SAMPLE, "rb") as src, open(out, "wb") as dst:
        for number, line in enumerate(src, start=1):
            if number not in bad and line.strip():
                record = orjson.loads(line)
                if not any("tool_calls" in m for m in record.get("messages", ())):
                    dst.write(line)
    return out
