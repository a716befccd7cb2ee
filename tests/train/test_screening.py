"""What SFT on a text-only model cannot train, refused by the gate on real and realistic files:
preference and KTO data, per-message weight 0, tool calls the chat template drops, media; and
language-modelling text, which trains as text the way TRL does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ftdata_train.config import ConfigError
from ftdata_train.data import GateError, prepare
from ftdata_train.labels import render_labels, tokenize_example
from tests.conftest import REAL
from tests.train.conftest import gate_config, sft_trainer_dataset, write_rows

LAYOUTS = Path(__file__).resolve().parents[1] / "data" / "layouts"
SAMPLE = Path(__file__).resolve().parents[2] / "ftdata" / "samples" / "support_chat.jsonl"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

#: ChatML that renders tool calls and the tools offered (as Qwen's templates do).
TOOLS_CHATML = (
    "{%- if tools %}{{- '<|im_start|>system\\nTools: ' }}{%- for tool in tools %}"
    "{{- tool.function.name + ' ' }}{%- endfor %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}{{- '<|im_start|>assistant\\n' }}{% generation %}"
    "{{- message.content }}"
    "{%- for tc in message.tool_calls %}"
    "{{- '<tool_call>' + tc.function.name + ' ' + tc.function.arguments + '</tool_call>' }}"
    "{%- endfor %}{{- '<|im_end|>\\n' }}{% endgeneration %}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _chat(user: str, answer: str, **reply: object) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer, **reply}]}


def _ftdata(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftdata", *args], capture_output=True, text=True, env=ENV)


def _toml(path: Path, model: Path, train: Path, eval: Path | None = None) -> Path:
    lines = [f'model = "{model}"', "max_length = 256", f'output_dir = "{path.parent / "run"}"', "[data]"]
    lines.append(f'train = "{train}"')
    if eval is not None:
        lines.append(f'eval = "{eval}"')
    path.write_text("\n".join(lines) + "\n")
    return path


# -- 1. preference and KTO data -------------------------------------------------------------


def test_kto_and_dpo_files_refuse_before_tokenisation_one_line_per_file(tiny_model, tmp_path):
    kto = LAYOUTS / "llamafactory_kto_en_demo.json"
    dpo = LAYOUTS / "llamafactory_dpo_en_demo.json"
    # max_length 8 would truncate every record (FT502): the type is refused first.
    with pytest.raises(GateError) as caught:
        prepare(kto, dpo, config=gate_config(tiny_model, tmp_path, max_length=8))
    error = caught.value
    assert error.findings == []
    assert error.headline == "2 files are not supervised fine-tuning data"
    assert len(error.details) == 2
    kto_line, dpo_line = error.details
    assert kto_line.startswith(f"data.train: {kto} holds 5 KTO examples")
    assert "supervised fine-tuning" in kto_line
    assert "KTOTrainer" in kto_line
    assert "label true" in kto_line
    assert dpo_line.startswith(f"data.eval: {dpo} holds 8 DPO preference pairs")
    assert "DPOTrainer" in dpo_line
    assert "chosen" in dpo_line
    assert "FT502" not in str(error)


def test_v1_preference_messages_are_refused(tiny_model, tmp_path):
    with pytest.raises(GateError, match=r"holds 10 DPO preference pairs"):
        prepare(LAYOUTS / "llamafactory_v1_dpo_demo.jsonl", config=gate_config(tiny_model, tmp_path))


def test_a_file_mixing_sft_and_preference_names_the_counts(tiny_model, tmp_path):
    rows = [_chat(f"How do I export note {i}?", f"Open note {i} and choose Export.") for i in range(3)]
    rows += [{"prompt": f"Rename note {i}?", "chosen": "Choose Rename.", "rejected": "No."} for i in range(2)]
    mixed = write_rows(tmp_path / "mixed.jsonl", rows)
    with pytest.raises(GateError) as caught:
        prepare(mixed, config=gate_config(tiny_model, tmp_path))
    assert caught.value.headline == f"data.train: {mixed} mixes record types (3 messages, 2 preference)"
    assert "DPOTrainer" in caught.value.details[0]


def test_cli_prints_the_refusal_once_and_a_one_line_headline(tiny_model, tmp_path):
    config = _toml(tmp_path / "kto.toml", tiny_model, LAYOUTS / "llamafactory_kto_en_demo.json")
    proc = _ftdata("train", str(config), "--dry-run")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.count("KTOTrainer") == 1
    stderr = proc.stderr.strip().splitlines()
    assert stderr[-1].startswith("ftdata: the data gate refused the run: data.train:")
    assert "KTOTrainer" not in proc.stderr
    assert "\\n" not in proc.stderr

    config = _toml(tmp_path / "sample.toml", tiny_model, SAMPLE)
    proc = _ftdata("train", str(config), "--dry-run")
    assert proc.returncode == 1, proc.stderr
    refusal = [line for line in proc.stderr.splitlines() if "refused" in line]
    assert len(refusal) == 1
    assert "\\n" not in refusal[0]
    assert "support_chat.jsonl:" not in refusal[0]
    finding = next(line for line in proc.stdout.splitlines() if "support_chat.jsonl:" in line)
    assert proc.stdout.count(finding) == 1
    assert "data.allow" in proc.stdout


# -- 2. language-modelling text -------------------------------------------------------------


def test_text_trains_every_token_with_eos_as_sft_trainer_does(tiny_model, tmp_path):

    c4 = LAYOUTS / "llamafactory_c4_demo.jsonl"
    max_length = 128
    config = gate_config(tiny_model, tmp_path, max_length=max_length, data={"eval_size": 0.2})
    prepared = prepare(c4, config=config)
    assert (prepared.kind, prepared.loss) == ("text", "all")
    assert prepared.train.column_names == ["text"]
    assert prepared.sft_options == {"assistant_only_loss": False, "completion_only_loss": False}
    stats = prepared.stats["train"]
    assert stats.trained_tokens == stats.tokens
    assert stats.truncated > 0
    assert any("language-modelling text" in note for note in prepared.notes)

    processed, tokenizer = sft_trainer_dataset(tiny_model, prepared, tmp_path, max_length=max_length)
    assert len(processed) == len(prepared.train)
    for row in range(len(prepared.train)):
        mine = tokenize_example(prepared.train[row], tokenizer, max_length=max_length, loss=prepared.loss)
        assert mine.input_ids == processed[row]["input_ids"]
        assert mine.trained == [label != -100 for label in processed[row]["labels"]]
    assert stats.tokens == sum(len(r["input_ids"]) for r in processed)

    short = tokenize_example({"text": "Plain words."}, tokenizer, max_length=None, loss="auto")
    shown = render_labels(short, tokenizer)
    assert shown.startswith("[[")
    assert shown.endswith(f"{tokenizer.eos_token}]]")
    assert "<|im_start|>" not in shown  # no chat template


@pytest.mark.parametrize("loss", ["assistant", "completion"])
def test_turn_losses_on_text_are_config_errors(tiny_model, tmp_path, loss):
    with pytest.raises(ConfigError, match=r"language-modelling text.*loss = 'all'"):
        prepare(LAYOUTS / "llamafactory_c4_demo.jsonl", config=gate_config(tiny_model, tmp_path, loss=loss))


# -- 3. weight 0 ----------------------------------------------------------------------------


def _weighted(tmp_path: Path) -> Path:
    rows = []
    for i in range(12):
        chat = _chat(f"How do I pin note {i}?", f"Wrong answer {i}.", weight=0)
        chat["messages"] += [
            {"role": "user", "content": "That is wrong."},
            {"role": "assistant", "content": f"Open note {i} and choose Pin.", "weight": 1},
        ]
        rows.append(chat if i in (2, 5) else _chat(f"How do I star note {i}?", f"Open note {i} and choose Star."))
    return write_rows(tmp_path / "weights.jsonl", rows)


def test_weight_zero_replies_refuse_with_lines_and_when_allowed_are_said_to_train(tiny_model, tmp_path):
    source = _weighted(tmp_path)
    with pytest.raises(GateError) as caught:
        prepare(source, config=gate_config(tiny_model, tmp_path))
    found = caught.value.findings
    assert [(f.code, f.line) for f in found] == [("FTT101", 3), ("FTT101", 6)]
    assert "weight 0" in found[0].message
    assert "TRL ignores" in found[0].message

    prepared = prepare(source, config=gate_config(tiny_model, tmp_path, data={"allow": ["FTT101"], "eval_size": 0.2}))
    assert prepared.manifest.allowed == {"FTT101": 2}
    assert any("ARE trained" in note for note in prepared.notes)


# -- 4. tool calls the template does not render ---------------------------------------------


def _tool_rows() -> list[dict]:
    tools = [{"type": "function", "function": {"name": "lookup_invoice", "parameters": {"type": "object"}}}]
    rows = []
    for i in range(10):
        call = {"id": f"c{i}", "type": "function", "function": {"name": "lookup_invoice", "arguments": '{"n": 1}'}}
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"Find invoice {i}."},
                    {"role": "assistant", "content": "", "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": f"c{i}", "content": f"Invoice {i}: paid."},
                    {"role": "assistant", "content": f"Invoice {i} is paid."},
                ],
                "tools": tools,
            }
        )
    return rows


def test_tool_calls_the_template_drops_refuse_and_a_tool_template_passes(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    source = write_rows(tmp_path / "tools.jsonl", _tool_rows())
    config = gate_config(tiny_model, tmp_path, data={"eval_size": 0.2})
    with pytest.raises(GateError) as caught:
        prepare(source, config=config)
    error = caught.value
    assert error.headline.startswith(f"the chat template of {tiny_model} does not render tool calls;")
    assert "rows would train empty replies" in error.headline
    assert {f.code for f in error.findings} == {"FTT102"}
    assert len(error.findings) == 10  # train and held-out eval rows

    allowed = prepare(
        source, config=config.model_copy(update={"data": config.data.model_copy(update={"allow": ["FTT102"]})})
    )
    assert allowed.manifest.allowed == {"FTT102": 10}
    assert any("trained without them" in note for note in allowed.notes)

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = TOOLS_CHATML
    prepared = prepare(source, config=config, tokenizer=tokenizer)
    shown = render_labels(tokenize_example(prepared.train[0], tokenizer, max_length=None, loss="assistant"), tokenizer)
    assert "[[<tool_call>lookup_invoice" in shown


GLAIVE = REAL / "glaive_toolcall_en_demo.json"


def test_sharegpt_function_calls_reach_the_template_as_tool_calls(tiny_model, tmp_path):
    """LLaMA-Factory's glaive demo (ShareGPT ``function_call``/``observation`` turns, tools as a JSON
    string): a template without tool calling is refused on the rows with calls, not trained on the
    call's JSON as if it were a reply; a Qwen-style tool template trains each call as it writes it."""
    import json

    from transformers import AutoTokenizer

    from ftdata_train.testing import TOOL_CHAT_TEMPLATE

    records = json.loads(GLAIVE.read_text(encoding="utf-8"))
    config = gate_config(tiny_model, tmp_path, max_length=8192)
    with pytest.raises(GateError) as caught:
        prepare(GLAIVE, config=config)
    refused = {f.line: f.message for f in caught.value.findings}
    assert {f.code for f in caught.value.findings} == {"FTT102"}
    assert any("tool call not rendered" in message for message in refused.values())
    assert all(("not rendered" in message) for message in refused.values())

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = TOOL_CHAT_TEMPLATE
    prepared = prepare(GLAIVE, config=config, tokenizer=tokenizer)
    calls = 0
    for row in prepared.train:
        shown = render_labels(tokenize_example(row, tokenizer, max_length=None, loss="assistant"), tokenizer)
        for message in row["messages"]:
            for call in message.get("tool_calls") or ():
                function = call["function"]
                assert isinstance(function["arguments"], dict)
                calls += 1
                expected = f'{{"name": "{function["name"]}", "arguments": {json.dumps(function["arguments"], ensure_ascii=False)}}}'
                # inside the trained span, which runs from the call to the end of the turn
                assert any(expected in part.split("]]")[0] for part in shown.split("[[")[1:])
            if message["role"] == "tool":
                assert f"<tool_response>\n{message['content']}\n</tool_response>" in shown
    in_file = sum(t["from"] == "function_call" for r in records for t in r["conversations"])
    assert 0 < calls <= in_file


# -- 5. media -------------------------------------------------------------------------------


def test_records_with_images_refuse_and_when_allowed_say_the_images_are_not_passed(tiny_model, tmp_path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"<image>Who is in picture {i}?"},
                {"role": "assistant", "content": f"Player {i}."},
            ],
            "images": [f"mllm_demo_data/{i + 1}.jpg"],
        }
        for i in range(3)
    ]
    rows += [_chat(f"How do I archive note {i}?", f"Open note {i} and choose Archive.") for i in range(9)]
    source = write_rows(tmp_path / "mllm.jsonl", rows)
    with pytest.raises(GateError) as caught:
        prepare(source, config=gate_config(tiny_model, tmp_path))
    # The images are not there yet: FT123 refuses first.
    assert {f.code for f in caught.value.findings} == {"FT123", "FTT103"}
    shutil.copytree(REAL / "mllm_demo_data", tmp_path / "mllm_demo_data")
    with pytest.raises(GateError) as caught:
        prepare(source, config=gate_config(tiny_model, tmp_path))
    found = caught.value.findings
    assert [(f.code, f.line) for f in found] == [("FTT103", 1), ("FTT103", 2), ("FTT103", 3)]
    assert "trains text-only models" in found[0].message
    assert "images" in found[0].message
    prepared = prepare(source, config=gate_config(tiny_model, tmp_path, data={"allow": ["FTT103"], "eval_size": 0.2}))
    assert any("media are not passed" in note for note in prepared.notes)


# -- 6-8. eval = train, missing, empty, too small -------------------------------------------


def test_eval_equal_to_train_is_a_plain_refusal(tiny_model, clean_chat, tmp_path):
    copy = shutil.copy(clean_chat, tmp_path / "copy.jsonl")
    for eval_file in (clean_chat, Path(copy)):
        with pytest.raises(GateError, match=r"^data\.eval is the training file"):
            prepare(clean_chat, eval_file, config=gate_config(tiny_model, tmp_path))
    proc = _ftdata("train", str(_toml(tmp_path / "same.toml", tiny_model, clean_chat, clean_chat)), "--dry-run")
    assert proc.returncode == 1, proc.stderr
    assert "data.eval is the training file" in proc.stderr


def test_missing_empty_and_too_small_files_say_so(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        prepare(tmp_path / "missing.jsonl", config=gate_config(tiny_model, tmp_path))
    with pytest.raises(ConfigError, match="is a folder"):
        prepare(tmp_path, config=gate_config(tiny_model, tmp_path))
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(GateError, match=r"empty\.jsonl is empty"):
        prepare(empty, config=gate_config(tiny_model, tmp_path))
    small = write_rows(
        tmp_path / "small.jsonl", [_chat(f"How do I tag note {i}?", f"Choose Tag {i}.") for i in range(3)]
    )
    with pytest.raises(GateError, match=r"is small \(3 readable records\).*at least 10 records"):
        prepare(small, config=gate_config(tiny_model, tmp_path))
