"""merge(): a LoRA adapter folded into a 16-bit (here fp32) reload of its base gives the
adapter's logits; outputs that would clobber the adapter or the base, and 4-bit merges, are
refused before anything is written."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from ftdata_train.merge import MANIFEST_FILE, MergeError, merge  # noqa: E402


@pytest.fixture(scope="module")
def adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved LoRA adapter with random (non-zero) update matrices, so merging changes logits."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    config = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "down_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    model = peft.get_peft_model(base, config)
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(out)
    return out


def _ids(tiny_model: Path) -> torch.Tensor:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    return tok("How do I reset my password? Open Settings.", return_tensors="pt")["input_ids"]


def test_merged_logits_equal_adapter_logits(tiny_model: Path, adapter: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    out = merge(adapter, tmp_path / "merged", dtype="fp32")
    assert out == tmp_path / "merged"
    assert (out / "model.safetensors").is_file()
    assert (out / "tokenizer_config.json").is_file()
    ids = _ids(tiny_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    with torch.no_grad():
        base_logits = base(ids).logits
        tuned = peft.PeftModel.from_pretrained(base, str(adapter)).eval()
        adapter_logits = tuned(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
        merged_logits = merged(ids).logits
    assert not torch.allclose(base_logits, adapter_logits, atol=1e-4)  # the adapter does something
    torch.testing.assert_close(merged_logits, adapter_logits, rtol=1e-4, atol=1e-5)
    assert not any(p.name.endswith("adapter_config.json") for p in out.iterdir())


def test_manifest_hashes_the_adapter(adapter: Path, tmp_path: Path) -> None:
    out = merge(adapter, tmp_path / "merged", dtype="bfloat16")
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    assert manifest["adapter_files"]["adapter_model.safetensors"] == hashlib.sha256(weights).hexdigest()
    assert manifest["dtype"] == "bfloat16"
    assert manifest["base"] == json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert manifest["versions"]["peft"] == peft.__version__
    saved = (out / "model.safetensors").read_bytes()
    assert manifest["outputs"]["model.safetensors"] == hashlib.sha256(saved).hexdigest()
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        name = next(iter(f.keys()))
        assert f.get_tensor(name).dtype == torch.bfloat16


@pytest.mark.parametrize("where", ["adapter", "inside-adapter", "base"])
def test_refuses_to_write_over_adapter_or_base(adapter: Path, tiny_model: Path, where: str) -> None:
    target = {"adapter": adapter, "inside-adapter": adapter / "merged", "base": tiny_model}[where]
    before = sorted(p.name for p in target.parent.iterdir())
    with pytest.raises(MergeError, match="would overwrite"):
        merge(adapter, target)
    assert sorted(p.name for p in target.parent.iterdir()) == before


@pytest.mark.parametrize("dtype", ["4bit", "nf4", "int8"])
def test_refuses_a_quantised_merge(adapter: Path, tmp_path: Path, dtype: str) -> None:
    with pytest.raises(MergeError, match="refusing to merge into a"):
        merge(adapter, tmp_path / "merged", dtype=dtype)
    assert not (tmp_path / "merged").exists()


def test_refuses_non_adapter_and_non_empty_output(adapter: Path, tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(MergeError, match="not a peft adapter"):
        merge(tiny_model, tmp_path / "merged")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(MergeError, match="not empty"):
        merge(adapter, busy)
    assert (busy / "keep.txt").read_text() == "mine"


def test_missing_base_is_a_clear_error(adapter: Path, tmp_path: Path) -> None:
    moved = tmp_path / "adapter"
    moved.mkdir()
    for item in adapter.iterdir():
        (moved / item.name).write_bytes(item.read_bytes())
    settings = json.loads((moved / "adapter_config.json").read_text())
    settings["base_model_name_or_path"] = str(tmp_path / "gone")
    (moved / "adapter_config.json").write_text(json.dumps(settings))
    with pytest.raises(MergeError, match="cannot load the base model"):
        merge(moved, tmp_path / "merged")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".merged")] == []


def test_cli_merge(adapter: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ftdata_train.cli.merge import merge_command

    runner = CliRunner()
    ok = runner.invoke(merge_command, [str(adapter), "-o", str(tmp_path / "m"), "--dtype", "fp16"])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "m" / MANIFEST_FILE).read_text())["dtype"] == "float16"
    refused = runner.invoke(merge_command, [str(adapter), "-o", str(tmp_path / "q"), "--dtype", "4bit"])
    assert refused.exit_code == 2
    assert "refusing to merge" in refused.output


def test_cli_merge_subprocess_refuses_a_non_adapter(tiny_model: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ftdata", "merge", str(tiny_model), "-o", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "adapter_config.json" in proc.stderr
