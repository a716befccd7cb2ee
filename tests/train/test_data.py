"""The data gate: refusals on real files, the held-out split, fully masked examples, the
manifest, and agreement with what TRL's SFTTrainer actually trains on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import orjson
import pytest

from ftdata_train.config import ConfigError
from ftdata_train.data import MANIFEST_SCHEMA, GateError, prepare
from ftdata_train.labels import tokenize_example
from tests.train.conftest import gate_config, sft_trainer_dataset

SAMPLE = Path(__file__).resolve().parents[2] / "ftdata" / "samples" / "support_chat.jsonl"


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _chat(system: str, user: str, answer: str) -> bytes:
    return orjson.dumps(
        {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
                {"role": "assistant", "content": answer},
            ]
        }
    )


def test_gate_refuses_the_sample_and_names_its_lines(tiny_model, tmp_path):
    with pytest.raises(GateError) as caught:
        prepare(SAMPLE, config=gate_config(tiny_model, tmp_path))
    err = caught.value
    codes = {f.code for f in err.findings}
    assert {"FT001", "FT006", "FT107", "FT119", "FT007"} <= codes
    assert f"{SAMPLE}:41:109 FT001 trailing comma" in str(err)
    assert f"{SAMPLE}:110:" in str(err)
    # Nothing was split or written for refused data.
    assert not (tmp_path / "run").exists()


def test_allow_lets_a_code_through_and_the_manifest_counts_it(tiny_model, clean_chat, tmp_path):
    bad_role = _lines(SAMPLE)[99]  # line 100: role " assistant" (FT119)
    train = _write(tmp_path / "train_data.jsonl", [*_lines(clean_chat), bad_role])
    with pytest.raises(GateError) as caught:
        prepare(train, config=gate_config(tiny_model, tmp_path))
    assert [f.code for f in caught.value.findings] == ["FT119"]
    assert f"{train}:{len(_lines(clean_chat)) + 1}:" in str(caught.value)

    prepared = prepare(train, config=gate_config(tiny_model, tmp_path, data={"allow": ["FT119"]}))
    assert prepared.manifest.allowed == {"FT119": 1}
    assert prepared.manifest.to_dict()["allowed"] == {"FT119": 1}


def test_gate_refuses_an_eval_file_that_shares_a_prompt_with_train(tiny_model, clean_chat, tmp_path):
    lines = _lines(clean_chat)
    train = _write(tmp_path / "mine.jsonl", lines[:60])
    fresh = [_chat("Be brief.", f"Can I share folder {i}?", f"Yes, folder {i} can be shared.") for i in range(10)]
    held = _write(tmp_path / "theirs.jsonl", [*fresh, lines[5]])
    with pytest.raises(GateError) as caught:
        prepare(train, held, config=gate_config(tiny_model, tmp_path))
    leaks = [f for f in caught.value.findings if f.code == "FT601"]
    assert len(leaks) == 1
    assert leaks[0].source == str(held)
    assert leaks[0].line == 11
    assert f"{train}:6" in leaks[0].message
    assert f"{held}:11:1 FT601" in str(caught.value)

    clean = _write(tmp_path / "theirs_clean.jsonl", fresh)
    prepared = prepare(train, clean, config=gate_config(tiny_model, tmp_path))
    assert len(prepared.train) == 60
    assert len(prepared.eval) == 10
    assert prepared.manifest.split is None
    assert prepared.manifest.leakage["pairs"] == {"FT601": 0, "FT602": 0}
    assert not any("split" in note for note in prepared.notes)


def test_without_eval_a_leak_free_split_is_made_and_no_record_is_lost(tiny_model, clean_chat, tmp_path):
    broken = _lines(SAMPLE)[40]  # line 41: a trailing comma (FT001), unreadable
    source = _write(tmp_path / "support.jsonl", [*_lines(clean_chat), broken])
    config = gate_config(tiny_model, tmp_path, data={"allow": ["FT001"], "eval_size": 0.2})
    prepared = prepare(source, config=config)

    assert any("no eval file was given" in note for note in prepared.notes)
    data = tmp_path / "run" / "data"
    assert not data.exists()  # prepare writes nothing
    paths = prepared.write_split(data)
    assert paths["eval"] == data / "eval.jsonl"
    assert any(f"written to {data}" in note for note in prepared.notes)
    train_lines, eval_lines, rejected = (_lines(data / n) for n in ("train.jsonl", "eval.jsonl", "rejected.jsonl"))
    inputs = _lines(source)
    assert len(train_lines) + len(eval_lines) + len(rejected) == len(inputs)
    assert sorted(train_lines + eval_lines + [orjson.loads(r)["raw"].encode() for r in rejected]) == sorted(inputs)

    dropped = prepared.manifest.dropped
    assert [(d.line, d.reason) for d in dropped] == [(len(inputs), "unreadable")]
    total = sum(s.records + s.dropped for s in prepared.stats.values()) + len(dropped)
    assert total == len(inputs)
    assert len(prepared.train) == len(train_lines)
    assert len(prepared.eval) == len(eval_lines)
    # The held-out prompts are not training prompts.
    train_prompts = {json.dumps(r["messages"][:-1]) for r in prepared.train}
    assert not any(json.dumps(r["messages"][:-1]) in train_prompts for r in prepared.eval)
    assert prepared.manifest.split is not None
    assert prepared.manifest.split["leakage"]["pairs"] == {"FT601": 0, "FT602": 0}
    assert set(prepared.lines["train"]) | set(prepared.lines["eval"]) == set(range(1, len(inputs)))


def _long_system_data(tmp_path: Path) -> tuple[Path, list[int]]:
    """Chats where a long system prompt pushes the answer past 48 tokens on some lines."""
    long_system = (
        "You are the support assistant for Acme Notes. Answer briefly and politely. "
        "Open Settings, choose Account, and follow the link we email you. " * 6
    )
    lines, long_lines = [], []
    for i in range(30):
        system = long_system if i % 5 == 0 else "You are the support assistant for Acme Notes."
        lines.append(_chat(system, f"How do I export note number {i}?", f"Open note {i} and choose Export."))
        if i % 5 == 0:
            long_lines.append(i + 1)
    held = [_chat("Be brief.", f"Can I share folder {i}?", f"Yes, folder {i} can be shared.") for i in range(5)]
    _write(tmp_path / "held.jsonl", held)
    return _write(tmp_path / "chats.jsonl", lines), long_lines


def test_fully_masked_examples_refuse_with_their_lines(tiny_model, tmp_path):
    train, long_lines = _long_system_data(tmp_path)
    with pytest.raises(GateError) as caught:
        prepare(train, tmp_path / "held.jsonl", config=gate_config(tiny_model, tmp_path, max_length=48))
    assert sorted(f.line for f in caught.value.findings) == long_lines
    assert {f.code for f in caught.value.findings} == {"FT502"}
    assert "data.fully_masked = 'drop'" in str(caught.value)
    for line in long_lines:
        assert f"{train}:{line}:1 FT502" in str(caught.value)


def test_fully_masked_examples_drop_and_are_counted(tiny_model, tmp_path):
    train, long_lines = _long_system_data(tmp_path)
    config = gate_config(tiny_model, tmp_path, max_length=48, data={"fully_masked": "drop"})
    prepared = prepare(train, tmp_path / "held.jsonl", config=config)
    stats = prepared.stats["train"]
    assert stats.fully_masked == len(long_lines) == stats.dropped
    assert list(stats.fully_masked_lines) == long_lines
    assert stats.records == len(prepared.train) == 30 - len(long_lines)
    assert stats.length_max > 48
    assert stats.truncated >= len(long_lines)
    manifest = prepared.manifest.to_dict()
    assert [d["line"] for d in manifest["dropped"]] == long_lines
    assert {d["reason"] for d in manifest["dropped"]} == {"fully masked by truncation"}
    assert manifest["records"] == {"train": 30 - len(long_lines), "eval": 5}
    assert prepared.lines["train"] == [n for n in range(1, 31) if n not in long_lines]
    assert any("dropped" in note for note in prepared.notes)


@pytest.mark.parametrize("loss", ["auto", "completion", "all"])
def test_trained_mask_equals_what_sft_trainer_trains_on(tiny_model, clean_chat, tmp_path, loss):
    max_length = 64
    config = gate_config(tiny_model, tmp_path, max_length=max_length, loss=loss, data={"fully_masked": "drop"})
    prepared = prepare(clean_chat, config=config)
    assert prepared.stats["train"].truncated > 0  # truncated examples are part of the comparison
    processed, tokenizer = sft_trainer_dataset(tiny_model, prepared, tmp_path, max_length=max_length)
    # TRL drops nothing more: the gate already removed what it would drop.
    assert len(processed) == len(prepared.train)
    for row in range(len(prepared.train)):
        mine = tokenize_example(prepared.train[row], tokenizer, max_length=max_length, loss=prepared.loss)
        theirs = processed[row]
        assert mine.input_ids == theirs["input_ids"]
        assert mine.trained == [label != -100 for label in theirs["labels"]]
    assert prepared.stats["train"].trained_tokens == sum(sum(label != -100 for label in r["labels"]) for r in processed)


def test_plain_prompt_completion_matches_sft_trainer(tiny_model, tmp_path):
    rows = [
        {"prompt": f"Question {i}: how do I export note {i}?", "completion": f" Open note {i} and choose Export."}
        for i in range(24)
    ]
    train = _write(tmp_path / "pc.jsonl", [orjson.dumps(r) for r in rows])
    config = gate_config(tiny_model, tmp_path, max_length=32, data={"eval_size": 0.25, "fully_masked": "drop"})
    prepared = prepare(train, config=config)
    assert prepared.kind == "prompt_completion"
    assert prepared.loss == "completion"
    assert prepared.train.column_names == ["prompt", "completion"]
    assert prepared.stats["train"].truncated > 0
    processed, tokenizer = sft_trainer_dataset(tiny_model, prepared, tmp_path, max_length=32)
    assert len(processed) == len(prepared.train)
    for row in range(len(prepared.train)):
        mine = tokenize_example(prepared.train[row], tokenizer, max_length=32, loss="completion")
        assert mine.input_ids == processed[row]["input_ids"]
        assert mine.trained == [label != -100 for label in processed[row]["labels"]]


def test_manifest_hashes_the_inputs_and_saves(tiny_model, clean_chat, tmp_path):
    prepared = prepare(clean_chat, config=gate_config(tiny_model, tmp_path))
    prepared.write_split(tmp_path / "run" / "data")
    entry = prepared.manifest.inputs[0]
    assert entry["sha256"] == hashlib.sha256(clean_chat.read_bytes()).hexdigest()
    assert entry["size"] == clean_chat.stat().st_size
    assert entry["records"] == len(_lines(clean_chat))
    for name, info in prepared.manifest.split["files"].items():
        assert info["sha256"] == hashlib.sha256(Path(info["path"]).read_bytes()).hexdigest(), name
    saved = json.loads(prepared.manifest.save(tmp_path / "adapter").read_text())
    assert saved["schema"] == MANIFEST_SCHEMA
    assert saved["tokenizer"] == str(tiny_model)
    assert saved["max_length"] == 1024
    assert {"FT001", "FT101", "FT502", "FT503", "FT601", "FT602"} <= set(saved["rules"])
    assert saved["records"] == {"train": len(prepared.train), "eval": len(prepared.eval)}
    # Only the columns TRL reads.
    assert prepared.train.column_names == ["messages"]


def test_template_without_generation_markers_needs_loss_all(tiny_model, clean_chat, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = tokenizer.chat_template.replace("{%- generation -%}", "").replace(
        "{%- endgeneration -%}", ""
    )
    with pytest.raises(ConfigError, match=r"generation %\}.*loss = 'all'"):
        prepare(clean_chat, config=gate_config(tiny_model, tmp_path), tokenizer=tokenizer)
    prepared = prepare(clean_chat, config=gate_config(tiny_model, tmp_path, loss="all"), tokenizer=tokenizer)
    assert prepared.stats["train"].trained_tokens == prepared.stats["train"].tokens


def test_missing_or_unnamed_data_is_a_config_error(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match=r"data\.train"):
        prepare(config=gate_config(tiny_model, tmp_path))
    with pytest.raises(ConfigError, match="does not exist"):
        prepare(tmp_path / "nope.jsonl", config=gate_config(tiny_model, tmp_path))
