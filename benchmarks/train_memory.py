"""Measured peak GPU memory of LoRA / QLoRA / full training steps against the dry run's estimate.

Randomly initialised models built from real configs (memory does not depend on the weights'
values) are saved once, loaded with ``ftdata_train.model.load_model`` exactly as a run loads
them, wrapped in peft, given TRL's fused log-prob head (what ``SFTTrainer`` uses) and trained
for two AdamW steps on random tokens; the peak of ``torch.cuda.max_memory_allocated`` over the
second step is compared with ``estimate_memory(...).allocated``. Needs a CUDA GPU.

    python benchmarks/train_memory.py [--configs llama-3.2-1b llama-3-8b] [--seq 512 2048]
        [--methods lora qlora] [--batch 1] [--checkpointing] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "tests" / "data" / "model-configs"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _save_random(name: str, directory: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = directory / name
    if (out / "config.json").exists():
        return out
    raw = json.loads((CONFIGS / f"{name}.json").read_text())
    config = AutoConfig.for_model(**raw)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    return out


def _measure(model_dir: Path, method: str, seq: int, batch: int, checkpointing: bool) -> dict:
    import torch
    from peft import get_peft_model
    from trl.trainer.utils import add_fused_lm_head

    from ftdata_train.config import TrainConfig
    from ftdata_train.estimate import estimate_memory
    from ftdata_train.model import inspect_model, load_model, lora_config

    config = TrainConfig(
        model=str(model_dir),
        method=method,
        dtype="bfloat16",
        max_length=seq,
        batch_size=batch,
        gradient_checkpointing=checkpointing,
    )
    info = inspect_model(str(model_dir))
    estimate = estimate_memory(info, config)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = load_model(config, info=info)
    if method != "qlora":
        model.to("cuda")
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    if method != "full":
        model = get_peft_model(model, lora_config(config, info))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    ids = torch.randint(0, info.vocab_size, (batch, seq), device="cuda")
    mask = torch.ones_like(ids)
    if batch > 1:
        mask[1:, seq // 2 :] = 0  # padding, as a collated batch has
    labels = ids.masked_fill(mask == 0, -100)
    start = time.perf_counter()
    peaks = []
    for _ in range(2):
        torch.cuda.reset_peak_memory_stats()
        out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        peaks.append(torch.cuda.max_memory_allocated())
    seconds = (time.perf_counter() - start) / 2
    reserved = torch.cuda.max_memory_reserved()
    del model, optimizer, out
    gc.collect()
    torch.cuda.empty_cache()
    return {
        "model": model_dir.name,
        "method": method,
        "seq": seq,
        "batch": batch,
        "checkpointing": checkpointing,
        "measured_allocated": peaks[-1],
        "measured_reserved": reserved,
        "estimated_allocated": estimate.allocated,
        "estimated_total": estimate.total,
        "ratio": estimate.allocated / peaks[-1],
        "seconds_per_step": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["llama-3.2-1b", "llama-3-8b"])
    parser.add_argument("--methods", nargs="+", default=["lora", "qlora"])
    parser.add_argument("--seq", nargs="+", type=int, default=[512, 2048])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        sys.exit("train_memory.py measures GPU memory: run it on a machine with a CUDA GPU")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        for name in args.configs:
            model_dir = _save_random(name, workdir)
            for method in args.methods:
                for seq in args.seq:
                    row = _measure(model_dir, method, seq, args.batch, args.checkpointing)
                    rows.append(row)
                    sys.stdout.write(
                        f"{row['model']:<14} {method:<6} seq {seq:>5} batch {args.batch}"
                        f" measured {row['measured_allocated'] / 1e9:6.2f} GB"
                        f" estimated {row['estimated_allocated'] / 1e9:6.2f} GB ratio {row['ratio']:.3f}\n"
                    )
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
