"""TrainConfig: files in three syntaxes, the commented default, clear errors and warnings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ftdata_train.config import DEFAULT_LEARNING_RATE, ConfigError, TrainConfig, init_template

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_init_template_is_the_defaults() -> None:
    parsed = TrainConfig.parse(tomllib.loads(init_template()))
    bare = TrainConfig(model=parsed.model, data={"train": "train.jsonl"})
    assert parsed == bare
    # Every field the model has is mentioned in the template, so users see all settings.
    text = init_template()
    for name in TrainConfig.model_fields:
        assert name in text, name


@pytest.mark.parametrize("suffix", [".toml", ".yaml", ".json"])
def test_load_each_syntax_resolves_relative_paths(tmp_path: Path, suffix: str) -> None:
    body = {
        ".toml": 'model = "m"\nmethod = "qlora"\noutput_dir = "out"\n[data]\ntrain = "t.jsonl"\n[lora]\nr = 8\n',
        ".yaml": "model: m\nmethod: qlora\noutput_dir: out\ndata:\n  train: t.jsonl\nlora:\n  r: 8\n",
        ".json": '{"model": "m", "method": "qlora", "output_dir": "out", "data": {"train": "t.jsonl"}, "lora": {"r": 8}}',
    }[suffix]
    path = tmp_path / f"train{suffix}"
    path.write_text(body)
    config = TrainConfig.load(path)
    assert config.method == "qlora"
    assert config.lora.r == 8
    assert config.data.train == str(tmp_path / "t.jsonl")
    assert config.output_dir == str(tmp_path / "out")
    assert config.resolved_learning_rate == DEFAULT_LEARNING_RATE["qlora"]


def test_errors_name_every_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('model = "m"\nepochs = 0\n[lora]\nr = 0\nrank = 4\n')
    with pytest.raises(ConfigError) as err:
        TrainConfig.load(path)
    text = str(err.value)
    assert str(path) in text
    assert "epochs:" in text
    assert "lora.r:" in text
    assert "lora.rank: unknown setting" in text


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("model = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        TrainConfig.load(path)
    with pytest.raises(ConfigError, match="cannot read"):
        TrainConfig.load(tmp_path / "missing.toml")
    other = tmp_path / "c.ini"
    other.write_text("x")
    with pytest.raises(ConfigError, match="unknown config type"):
        TrainConfig.load(other)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"early_stopping_patience": 2}, "needs eval_steps"),
        ({"method": "qlora", "dtype": "float32"}, "compute_dtype"),
        ({"early_stopping_patience": 2, "eval_steps": 5, "save_strategy": "no"}, "save_strategy"),
        ({"model": "  "}, "model must name"),
        ({"method": "full", "dtype": "float16"}, "gradient scaler"),
    ],
)
def test_invalid_combinations(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig.parse({"model": "m", **settings})


def test_warnings_for_suspicious_values() -> None:
    assert TrainConfig(model="m").warnings() == []
    assert any("outside the usual range" in w for w in TrainConfig(model="m", learning_rate=1e-2).warnings())
    # 2e-4 is right for LoRA but high for a full fine-tune.
    assert any("for full" in w for w in TrainConfig(model="m", method="full", learning_rate=2e-4).warnings())
    assert TrainConfig(model="m", method="full").resolved_learning_rate == 2e-5
    assert any("alpha" in w for w in TrainConfig(model="m", lora={"r": 2, "alpha": 64}).warnings())


def test_overrides_and_to_dict(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('model = "m"\n')
    config = TrainConfig.load(path, max_steps=5)
    assert config.max_steps == 5
    data = config.to_dict()
    assert data["learning_rate"] == 2e-4
    assert TrainConfig.parse(data) == config.model_copy(update={"learning_rate": 2e-4})
