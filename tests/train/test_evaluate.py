"""evaluate: base versus tuned on a real few-step LoRA adapter of the tiny model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ftdata.outputs import OutputError
from ftdata_train.evaluate import (
    EvalError,
    exact_match,
    read_examples,
    repetition,
    score_example,
    score_examples,
    token_f1,
)
from tests.conftest import REAL

SCRIPT = "<script>alert('x')</script>"
SCHEMA = '{"type": "object", "required": ["label"], "properties": {"label": {"type": "string"}}}'


def _records(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def adapter(tiny_model: Path, clean_chat: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter after five real optimiser steps of TRL's SFTTrainer on the clean sample."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig, SFTTrainer

    hf_logging.disable_progress_bar()
    out = tmp_path_factory.mktemp("adapter")
    rows = [{"messages": r["messages"]} for r in _records(clean_chat)[:40]]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    args = SFTConfig(
        output_dir=str(out / "run"),
        max_steps=5,
        per_device_train_batch_size=4,
        learning_rate=5e-3,
        assistant_only_loss=True,
        max_length=256,
        report_to="none",
        save_strategy="no",
        logging_steps=5,
        disable_tqdm=True,
        use_cpu=True,
    )
    SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer).train()
    model.save_pretrained(out / "lora")
    tokenizer.save_pretrained(out / "lora")
    return out / "lora"


@pytest.fixture(scope="module")
def eval_file(clean_chat: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five held-out sample records, one of them with markup in its prompt and reply."""
    records = _records(clean_chat)[-4:]
    records.append(
        {
            "messages": [
                {"role": "user", "content": f"Is {SCRIPT} safe?"},
                {"role": "assistant", "content": f"No: {SCRIPT} runs code."},
            ]
        }
    )
    path = tmp_path_factory.mktemp("eval") / "eval.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


@pytest.fixture(scope="module")
def report(adapter: Path, eval_file: Path):
    from ftdata_train.evaluate import evaluate

    return evaluate(adapter, eval_file, max_new_tokens=6, batch_size=2)


def test_reports_base_and_tuned_side_by_side(report, adapter: Path, tiny_model: Path) -> None:
    assert list(report.models) == ["base", "tuned"]
    base, tuned = report.models["base"], report.models["tuned"]
    assert base.name == str(tiny_model)
    assert tuned.name == str(adapter)
    assert base.examples == tuned.examples == len(report.examples) == 5
    assert base.trained_tokens == tuned.trained_tokens > 0
    # Five steps at a high learning rate move the adapter's loss away from the base's.
    assert base.loss != pytest.approx(tuned.loss, abs=1e-4)
    for model in (base, tuned):
        assert model.perplexity == pytest.approx(math.exp(model.loss))
        assert 0.0 <= model.compliance <= 1.0
    for example in report.examples:
        assert set(example.outputs) == {"base", "tuned"}
    data = json.loads(json.dumps(report.to_dict()))
    assert data["models"]["tuned"]["loss"] == pytest.approx(tuned.loss)
    assert len(data["examples"]) == 5
    table = report.table()
    assert [str(c.header).split("\n")[0] for c in table.columns] == ["metric", "base", "tuned"]


def test_loss_equals_a_hand_computation(report, adapter: Path, tiny_model: Path, eval_file: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    messages = _records(eval_file)[0]["messages"]
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = torch.tensor([encoded["input_ids"]])
    labels = torch.tensor([encoded["input_ids"]])
    labels[0, torch.tensor(encoded["assistant_masks"]) == 0] = -100

    def hand_loss(model) -> float:
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1]
        target = labels[0, 1:]
        keep = target != -100
        return float(torch.nn.functional.cross_entropy(logits[keep], target[keep]))

    base_model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    assert report.examples[0].outputs["base"].loss == pytest.approx(hand_loss(base_model), abs=1e-4)
    tuned_model = PeftModel.from_pretrained(base_model, adapter).eval()
    assert report.examples[0].outputs["tuned"].loss == pytest.approx(hand_loss(tuned_model), abs=1e-4)
    # The summary pools the tokens of all examples.
    outs = [e.outputs["tuned"] for e in report.examples]
    pooled = sum(g.loss * g.tokens for g in outs) / sum(g.tokens for g in outs)
    assert report.models["tuned"].loss == pytest.approx(pooled)


def test_full_model_without_base_is_evaluated_alone(tiny_model: Path, eval_file: Path) -> None:
    from ftdata_train.evaluate import evaluate

    alone = evaluate(tiny_model, eval_file, max_new_tokens=2, limit=2)
    assert list(alone.models) == ["tuned"]
    assert any("no base model" in note for note in alone.notes)
    paired = evaluate(tiny_model, eval_file, base=str(tiny_model), max_new_tokens=2, limit=2)
    assert paired.models["base"].loss == pytest.approx(paired.models["tuned"].loss)
    assert paired.models["tuned"].loss == pytest.approx(alone.models["tuned"].loss)


def test_prompt_completion_trains_on_the_completion(tiny_model: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from ftdata_train.evaluate import evaluate

    path = tmp_path / "pc.jsonl"
    path.write_text(json.dumps({"prompt": "How do I sign in?", "completion": " Use your email."}) + "\n")
    result = evaluate(tiny_model, path, max_new_tokens=3)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    whole = tokenizer("How do I sign in? Use your email." + tokenizer.eos_token)["input_ids"]
    prompt = tokenizer("How do I sign in?")["input_ids"]
    shared = next((k for k, (a, b) in enumerate(zip(prompt, whole)) if a != b), len(prompt))
    assert result.models["tuned"].trained_tokens == len(whole) - shared
    assert result.examples[0].reference == " Use your email."


def test_exact_match_and_f1_on_hand_cases() -> None:
    assert exact_match("The cat sat.", "cat  sat")
    assert not exact_match("a cat sat", "the dog sat")
    assert token_f1("cat sat on mat", "the cat sat") == pytest.approx(2 / 3)
    assert token_f1("Paris", "paris!") == 1.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "something") == 0.0
    assert token_f1("x y", "z") == 0.0


def test_repetition_is_the_share_of_repeated_trigrams() -> None:
    assert repetition("a b c a b c a b c") == pytest.approx(4 / 7)
    assert repetition("one two three four") == 0.0
    assert repetition("short") == 0.0
    assert repetition("") == 0.0


def test_format_compliance_counts_a_schema_break() -> None:
    reference = {
        "messages": [
            {"role": "user", "content": "Classify: great product"},
            {"role": "assistant", "content": '{"label": "positive"}'},
        ]
    }
    good = score_example(reference, '{"label": "negative"}', schema=SCHEMA)
    assert good.compliant
    assert not good.exact_match
    wrong_type = score_example(reference, '{"label": 3}', schema=SCHEMA)
    assert [f.code for f in wrong_type.findings] == ["FT206"]
    prose = score_example(reference, "It is positive.\nUser: thanks", schema=SCHEMA)
    assert {f.code for f in prose.findings} == {"FT205", "FT206", "FT305"}
    with pytest.raises(EvalError, match="FT206"):
        score_example(reference, "{}", schema="{not json")


def test_findings_in_earlier_turns_are_not_the_generations() -> None:
    reference = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello.\nUser: and then"},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Goodbye."},
        ]
    }
    assert score_example(reference, "See you.").compliant
    assert [f.code for f in score_example(reference, "See you.\nUser: wait").findings] == ["FT305"]
    assert [f.code for f in score_example(reference, "").findings] == ["FT110"]


WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
WEATHER = {
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
    ],
    "tools": WEATHER_TOOLS,
}


@pytest.mark.parametrize(
    ("generated", "names", "arguments", "codes"),
    [
        ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>', True, True, []),
        (
            'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',
            True,
            True,
            [],
        ),
        ('{"name": "get_weather", "parameters": {"city": "Paris"}}', True, True, []),
        (
            '```json\n[{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]\n```',
            True,
            False,
            [],
        ),
        ('<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>', False, False, ["FT116"]),
        ("It is sunny in Paris.", False, False, ["FTT201"]),
        ('<tool_call>\n{"name": "get_weather", "argu', False, False, ["FTT201"]),
    ],
    ids=["qwen", "string-arguments", "llama-parameters", "other-arguments", "undeclared", "prose", "cut-off"],
)
def test_tool_call_references_are_matched_call_for_call(generated, names, arguments, codes) -> None:
    score = score_example(WEATHER, generated)
    assert score.tool_calls is not None
    assert (score.tool_calls.name_match, score.tool_calls.arguments_match) == (names, arguments)
    assert score.exact_match == arguments
    assert [f.code for f in score.findings] == codes
    assert score.to_dict()["tool_calls"]["expected"] == ["get_weather"]
    if arguments:
        assert score.f1 == 1.0
    # a plain reply in the same batch is scored as text, without tool-call judgement
    plain = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
    text = score_examples([WEATHER, plain], [generated, "Hello."])[1]
    assert text.tool_calls is None
    assert text.exact_match
    assert text.compliant


def test_sharegpt_tool_call_references_from_the_glaive_file(tmp_path: Path) -> None:
    """LLaMA-Factory's glaive demo cut after each record's first function_call: the reference is
    that call, and a reply that writes it as the Qwen template does matches it exactly."""
    glaive = REAL
    rows = []
    for record in json.loads((glaive / "glaive_toolcall_en_demo.json").read_text(encoding="utf-8")):
        turns = record["conversations"]
        first = next((i for i, t in enumerate(turns) if t["from"] == "function_call"), None)
        if first is not None:
            rows.append({**record, "conversations": turns[: first + 1]})
    path = tmp_path / "calls.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    examples, notes = read_examples(path)
    assert notes == []
    assert len(examples) == len(rows)
    generations, wrong = [], []
    for example, row in zip(examples, rows, strict=True):
        call = json.loads(row["conversations"][-1]["value"])
        assert json.loads(example.reference) == {"name": call["name"], "arguments": call["arguments"]}
        assert example.tools == json.loads(row["tools"])
        generations.append(f"<tool_call>\n{json.dumps(call)}\n</tool_call>")
        wrong.append(json.dumps({"name": call["name"], "arguments": {"unexpected": True}}))
    right = score_examples([e.record for e in examples], generations)
    assert all(s.exact_match and s.compliant for s in right)
    off = score_examples([e.record for e in examples], wrong)
    assert all(s.tool_calls.name_match and not s.tool_calls.arguments_match for s in off)
    assert not any(s.exact_match for s in off)


def test_html_escapes_text_and_keeps_off_the_eval_file(report, eval_file: Path, tmp_path: Path) -> None:
    page = report.to_html(tmp_path / "eval.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;" in page
    assert "<script" not in page
    assert "Worst examples" in page
    assert "<table" in page
    with pytest.raises(OutputError):
        report.to_html(eval_file)


def test_read_examples_reports_what_it_skips(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
        "{not json\n"
        '{"messages": [{"role": "user", "content": "only a question"}]}\n'
    )
    examples, notes = read_examples(path)
    assert [e.line for e in examples] == [1]
    assert examples[0].prompt == [{"role": "user", "content": "q"}]
    assert any("unreadable" in n and "2" in n for n in notes)
    assert any("without an assistant reply" in n and "3" in n for n in notes)
    with pytest.raises(EvalError):
        read_examples(tmp_path / "missing.jsonl")


def _ftdata(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "ftdata", "eval", *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_json_and_html(adapter: Path, eval_file: Path, tmp_path: Path) -> None:
    page = tmp_path / "out.html"
    done = _ftdata(
        adapter, eval_file, "--limit", "2", "--max-new-tokens", "3", "--output-format", "json", "--html", page
    )
    assert done.returncode == 0, done.stderr
    assert "skipped" not in done.stderr
    data = json.loads(done.stdout)
    assert data["skipped"] == []
    assert set(data["models"]) == {"base", "tuned"}
    assert len(data["examples"]) == 2
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_cli_unreadable_model_exits_2(eval_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    done = _ftdata(broken, eval_file)
    assert done.returncode == 2
    assert "neither an adapter" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_names_skipped_records_and_exits_1(adapter: Path, eval_file: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(
        eval_file.read_bytes().splitlines(keepends=True)[0]
        + b"{not json\n"
        + b'{"messages": [{"role": "user", "content": "only a question"}]}\n'
        + eval_file.read_bytes().splitlines(keepends=True)[1]
    )
    done = _ftdata(adapter, mixed, "--max-new-tokens", "2", "--output-format", "json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)  # the report is still written
    assert [e["line"] for e in data["examples"]] == [1, 4]
    assert [(s["line"], s["reason"].split(":")[0]) for s in data["skipped"]] == [
        (2, "unreadable"),
        (3, "no assistant reply"),
    ]
    assert "2 of 4 eval records were skipped and not scored" in done.stderr
    assert f"{mixed}:2: unreadable: " in done.stderr
    assert f"{mixed}:3: no assistant reply" in done.stderr

    nothing = tmp_path / "nothing.jsonl"
    nothing.write_text("{not json\n[1, 2]\n")
    unscored = _ftdata(adapter, nothing, "--max-new-tokens", "2")
    assert unscored.returncode == 2
    assert "no eval example" in unscored.stderr
    assert "line(s) 1, 2" in unscored.stderr
    assert "Traceback" not in unscored.stderr
