"""The gate's second pass: near-duplicate leakage (FT602), a dry run that writes nothing, messages
with tool calls on only some rows, assistant-only loss under packing, escaped label previews."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftdata_train.data import GateError, prepare
from ftdata_train.labels import render_labels, tokenize_example
from tests.train.conftest import gate_config, sft_trainer_dataset, write_rows

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

#: A Llama-3.1-style template: it tests ``'tool_calls' in message`` and renders the arguments
#: with ``tojson``, so any key Arrow adds to a message or to the arguments changes what trains.
TOOL_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and 'tool_calls' in message %}"
    "{%- if not message.tool_calls|length == 1 %}{{- raise_exception('only single tool calls') }}{%- endif %}"
    "{%- set call = message.tool_calls[0].function %}"
    "{{- '<|im_start|>assistant\\n' }}{% generation %}"
    "{{- '{\"name\": \"' + call.name + '\", \"parameters\": ' + call.arguments|tojson + '}<|im_end|>\\n' }}"
    "{% endgeneration %}"
    "{%- elif message.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message.content + '<|im_end|>\\n' }}{% endgeneration %}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
)


def _chat(user: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


QUESTION = "How do I move the note called {name} into the shared team folder without losing its history?"


def test_near_duplicate_eval_prompt_refuses_and_can_be_allowed(tiny_model, tmp_path):
    names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    train = write_rows(tmp_path / "train.jsonl", [_chat(QUESTION.format(name=n), f"Drag {n} there.") for n in names])
    near = QUESTION.format(name="alpha") + " Thanks."  # a light edit
    fresh = [_chat(f"What does error code {i} mean when syncing?", f"Code {i}: retry later.") for i in range(6)]
    held = write_rows(tmp_path / "eval.jsonl", [*fresh, _chat(near, "Drag it there.")])
    with pytest.raises(GateError) as caught:
        prepare(train, held, config=gate_config(tiny_model, tmp_path))
    found = [f for f in caught.value.findings if f.code == "FT602"]
    assert [(f.source, f.line) for f in found] == [(str(held), 7)]
    assert f"{train}:1" in found[0].message
    assert "near duplicate" in found[0].message
    assert not [f for f in caught.value.findings if f.code == "FT601"]

    prepared = prepare(train, held, config=gate_config(tiny_model, tmp_path, data={"allow": ["FT602"]}))
    assert prepared.manifest.allowed == {"FT602": 1}
    assert prepared.manifest.leakage["pairs"] == {"FT601": 0, "FT602": 1}


def test_held_out_split_keeps_near_duplicate_prompts_together(tiny_model, tmp_path):
    long = "Please explain step by step how I can move a note into the shared team folder while keeping" * 2
    rows = [_chat(f"{long} item {i}", f"Drag note {i} there.") for i in range(20)]
    rows += [_chat(f"What does error code {i} mean when syncing?", f"Code {i}: retry later.") for i in range(20)]
    prepared = prepare(write_rows(tmp_path / "all.jsonl", rows), config=gate_config(tiny_model, tmp_path))
    # The 20 near-identical questions form one group: all in train or all in eval.
    assert len({"train" if i in prepared.lines["train"] else "eval" for i in range(1, 21)}) == 1
    assert prepared.manifest.split["group_by"] == ["prompt", "near-duplicates"]


def test_dry_run_writes_nothing(tiny_model, clean_chat, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    train = work / "train.jsonl"
    train.write_bytes(clean_chat.read_bytes())
    config = work / "train.toml"
    config.write_text(
        f"model = {json.dumps(str(tiny_model))}\noutput_dir = {json.dumps(str(work / 'run'))}\n"
        f"[data]\ntrain = {json.dumps(str(train))}\n"
    )
    before = _snapshot(work)
    proc = subprocess.run(
        [sys.executable, "-m", "ftdata", "train", str(config), "--dry-run", "--output-format", "json"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr
    assert _snapshot(work) == before
    report = json.loads(proc.stdout)
    assert report["data_manifest"]["split"]["files"] == {}
    assert any("held out" in note for note in report["notes"])


def test_a_refused_run_leaves_no_split_behind(tiny_model, tmp_path):
    from ftdata_train.trainer import train

    system = "You are the support assistant for Acme Notes. Open Settings and choose Account. " * 8
    rows = [
        {
            "messages": [
                {"role": "system", "content": system if i % 4 == 0 else "Be brief."},
                {"role": "user", "content": f"How do I export note {i}?"},
                {"role": "assistant", "content": f"Open note {i} and choose Export."},
            ]
        }
        for i in range(24)
    ]
    source = write_rows(tmp_path / "long.jsonl", rows)
    config = gate_config(tiny_model, tmp_path, max_length=48, data={"train": str(source)})
    with pytest.raises(GateError, match="no trained token"):
        train(config)
    assert not (tmp_path / "run").exists()


def _tool_rows() -> list[dict]:
    rows = []
    for i in range(12):
        if i % 3 == 0:
            # Two tools with different argument names: Arrow would merge them into one struct.
            name, arguments = ("get_weather", {"city": f"City{i}"}) if i % 2 else ("search_notes", {"query": f"q{i}"})
            call = {"type": "function", "function": {"name": name, "arguments": arguments}}
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": f"What is the weather in City{i}?"},
                        {"role": "assistant", "content": "", "tool_calls": [call]},
                        {"role": "tool", "content": f"sunny, {i} degrees"},
                        {"role": "assistant", "content": f"It is sunny in City{i}."},
                    ]
                }
            )
        else:
            rows.append(_chat(f"How do I rename note {i}?", f"Open note {i} and choose Rename."))
    return rows


def test_tool_calls_on_some_rows_reach_the_template_as_in_the_file(tiny_model, tmp_path):
    from datasets import Dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = TOOL_TEMPLATE
    rows = _tool_rows()
    # Object arguments (FT116, allowed here) show what the Json column avoids: with Arrow
    # structs a call gets the other tool's argument as null (transformers 5 drops None values
    # only at the top level of a message, so tool_calls: None alone would be harmless).
    arrow = Dataset.from_list(rows)[0]["messages"]
    assert '"city": null' in tokenizer.apply_chat_template(arrow, tokenize=False)

    source = write_rows(tmp_path / "tools.jsonl", rows)
    config = gate_config(tiny_model, tmp_path, data={"eval_size": 0.25, "allow": ["FT116"]})
    prepared = prepare(source, config=config, tokenizer=tokenizer)
    by_line = {line: rows[line - 1]["messages"] for line in prepared.lines["train"]}
    for row, line in enumerate(prepared.lines["train"]):
        assert prepared.train[row]["messages"] == by_line[line]  # no key added, none lost
    assert prepared.manifest.dropped == []

    processed, _ = sft_trainer_dataset(tiny_model, prepared, tmp_path, tokenizer=tokenizer)
    assert len(processed) == len(prepared.train)
    for row in range(len(prepared.train)):
        mine = tokenize_example(prepared.train[row], tokenizer, max_length=1024, loss="assistant")
        assert mine.input_ids == processed[row]["input_ids"]
        assert mine.trained == [label != -100 for label in processed[row]["labels"]]


def test_packing_keeps_each_examples_assistant_mask(tiny_model, clean_chat, tmp_path):
    """TRL 1.16 builds labels per example, then packs (input_ids, labels) best-fit: the packed
    labels are the examples' own, so the per-example preview is what trains."""

    config = gate_config(tiny_model, tmp_path, max_length=256, packing=True, loss="assistant")
    prepared = prepare(clean_chat, config=config)
    packed, tokenizer = sft_trainer_dataset(tiny_model, prepared, tmp_path, max_length=256, packing=True)
    assert len(packed) < len(prepared.train)
    # Cut each packed row back into its examples by seq_lengths and match them to ours.
    theirs = set()
    for row in packed:
        start = 0
        for n in row["seq_lengths"]:
            ids = row["input_ids"][start : start + n]
            labels = row["labels"][start : start + n]
            theirs.add((tuple(ids), tuple(label != -100 for label in labels)))
            start += n
    mine = set()
    for example in prepared.train:
        tok = tokenize_example(example, tokenizer, max_length=256, loss="assistant")
        mine.add((tuple(tok.input_ids), tuple(tok.trained)))
    assert theirs == mine


def test_label_preview_escapes_control_characters(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    evil = _chat("Say hi", "hi \x1b[31mred\x1b[0m and a bell \x07 done")
    example = tokenize_example(evil, tokenizer, max_length=None, loss="assistant")
    shown = render_labels(example, tokenizer, style="brackets")
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "\\x1b[31mred" in shown
    rich_text = render_labels(example, tokenizer, style="rich")
    assert "\x1b" not in rich_text.plain
