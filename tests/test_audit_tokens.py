"""The audit's token figures where a record is not one plain conversation: stepwise
supervision (the loss is on one token per step), reasoning and tool calls (trained with their
reply), and preference pairs (two sequences each). Checked through `ftdata audit` on real
files against counts made here from the JSON, with the tiny tokenizer called directly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REAL, TESTS, TOKENIZER_DIR, run_cli

STEPWISE = TESTS / "data" / "real" / "trl-zen" / "standard_stepwise_supervision.jsonl"
REASONING = REAL / "reason_tool_use_demo_50.jsonl"
DPO = REAL / "v1_dpo_demo.jsonl"


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _audit(tmp_path: Path, path: Path, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "audit.json"
    done = run_cli("audit", path, "--json", out, *args)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(out.read_text())["stats"][0], done.stdout


def _estimate(chars: int) -> int:
    return int(chars / 4 + 0.5)


def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))


# Stepwise supervision -------------------------------------------------------------------


def _prm_labels(row: dict[str, Any], encode: Any, bos: list[int], max_length: int | None) -> list[int]:
    """The labels TRL's PRMTrainer gives ``row``: -100 everywhere but the last token of each
    step (its text then the separator "\\n"), BOS before the prompt, cut at ``max_length``."""
    labels = [-100] * (len(bos) + len(encode(row["prompt"])))
    for step, label in zip(row["completions"], row["labels"], strict=True):
        labels += [-100] * (len(encode(step)) + len(encode("\n")) - 1) + [int(label)]
    return labels[:max_length] if max_length is not None else labels


def _expected_steps(labels: list[list[int]]) -> dict[str, int]:
    flat = [label for record in labels for label in record]
    kept = [label for label in flat if label != -100]
    return {"tokens": len(flat), "trained": len(kept), "true": sum(kept), "false": len(kept) - sum(kept)}


def test_stepwise_estimate_counts_one_labelled_token_per_step(tmp_path):
    rows = _rows(STEPWISE)
    # The estimate's terms: 4 characters a token, a separator one token, no BOS.
    expected = _expected_steps(
        [_prm_labels(row, lambda text: [0] * _estimate(len(text)) if text != "\n" else [0], [], None) for row in rows]
    )
    assert expected == {"tokens": 341, "trained": 32, "true": 16, "false": 16}  # the file as shipped
    stats, stdout = _audit(tmp_path, STEPWISE)
    assert stats["stepwise"] == len(rows)
    assert stats["trained_tokens"] == expected["trained"]
    assert stats["trained_tokens"] + stats["prompt_tokens"] == expected["tokens"]
    assert (stats["steps_true"], stats["steps_false"]) == (expected["true"], expected["false"])
    assert stats["trained_share"] == pytest.approx(expected["trained"] / expected["tokens"], abs=1e-6)
    line = next(line for line in stdout.splitlines() if "tokens trained on" in line)
    assert "one token per labelled step" in line
    share = expected["trained"] / expected["tokens"]
    assert f"{share:.1%}: {expected['trained']} labelled steps (16 true, 16 false)" in line


@pytest.mark.parametrize("max_length", [None, 30])
def test_stepwise_with_a_tokenizer_matches_prm_trainer_labels(tmp_path, max_length):
    tok = _tokenizer()
    assert tok.bos_token_id is not None  # so the BOS token is part of what is compared

    def encode(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    rows = _rows(STEPWISE)
    untruncated = [_prm_labels(row, encode, [tok.bos_token_id], None) for row in rows]
    expected = _expected_steps([_prm_labels(row, encode, [tok.bos_token_id], max_length) for row in rows])
    args = ["--tokenizer", str(TOKENIZER_DIR)] + (["--max-length", str(max_length)] if max_length else [])
    stats, _ = _audit(tmp_path, STEPWISE, *args)
    assert stats["trained_tokens"] == expected["trained"]
    assert stats["trained_tokens"] + stats["prompt_tokens"] == expected["tokens"]
    assert (stats["steps_true"], stats["steps_false"]) == (expected["true"], expected["false"])
    assert stats["tokens"]["total"]["max"] == max(len(labels) for labels in untruncated)
    if max_length is None:
        assert (expected["tokens"], expected["trained"]) == (763, 32)
    else:
        assert stats["over_max_length"] == sum(len(labels) > max_length for labels in untruncated) > 0
        assert expected["trained"] < 32  # truncation cut labelled steps


# Reasoning and tool calls -----------------------------------------------------------------


def _parts(content: Any, kinds: set[str]) -> str:
    if isinstance(content, str):
        return content if "text" in kinds else ""
    return "".join(p.get("text", p.get("value", "")) for p in content if p.get("type", "text") in kinds)


def _calls(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return []
    calls = [json.loads(p["value"]) for p in content if p.get("type") == "tool_call"]
    return [{"name": c["name"], "arguments": c["arguments"]} for c in calls]


def test_estimate_counts_reasoning_and_tool_calls(tmp_path):
    totals, trained_sum, prompt_sum = [], 0, 0
    for row in _rows(REASONING):
        position, start, assistant = 0, None, 0
        for m in row["messages"]:
            chars = len(_parts(m["content"], {"text", "reasoning", "thinking"}))
            chars += sum(len(json.dumps(call, ensure_ascii=False)) for call in _calls(m["content"]))
            n = _estimate(chars) + 4
            if m["role"] == "assistant":
                assistant += n
                start = position + 4 if start is None else start
            position += n
        trained = min(assistant, position - start) if start is not None else 0
        totals.append(position)
        trained_sum += trained
        prompt_sum += position - trained
    stats, _ = _audit(tmp_path, REASONING)
    assert stats["tokens"]["total"]["max"] == max(totals)
    assert stats["tokens"]["total"]["mean"] == round(sum(totals) / len(totals), 1)
    assert (stats["trained_tokens"], stats["prompt_tokens"]) == (trained_sum, prompt_sum)
    assert stats["trained_share"] > 0.7  # with only the text parts it was about 0.4


#: A chat template that writes reasoning and tool calls, as Qwen3's does (simplified).
REASONING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' %}{% generation %}"
    "{% if m.reasoning_content is string %}<think>{{ m.reasoning_content }}</think>{% endif %}"
    "{{ m['content'] }}{% for c in m.tool_calls or [] %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}"
    "<|im_end|>{% endgeneration %}{% else %}{{ m['content'] }}<|im_end|>{% endif %}\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_template_that_writes_reasoning_and_tool_calls_is_given_them(tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "tokenizer"
    shutil.copytree(TOKENIZER_DIR, folder)
    (folder / "chat_template.jinja").write_text(REASONING_TEMPLATE, encoding="utf-8")
    tok = AutoTokenizer.from_pretrained(str(folder))
    totals, texts = [], []
    for row in _rows(REASONING):
        messages = []
        for m in row["messages"]:
            message: dict[str, Any] = {"role": m["role"], "content": _parts(m["content"], {"text"})}
            if reasoning := _parts(m["content"], {"reasoning", "thinking"}):
                message["reasoning_content"] = reasoning
            if calls := _calls(m["content"]):
                message["tool_calls"] = [{"type": "function", "function": c} for c in calls]
            messages.append(message)
        texts.append(text := tok.apply_chat_template(messages, tokenize=False))
        totals.append(len(tok(text, add_special_tokens=False)["input_ids"]))
    assert sum("<think>" in t for t in texts) > 25
    assert sum("<tool_call>" in t for t in texts) > 25
    stats, _ = _audit(tmp_path, REASONING, "--tokenizer", str(folder))
    assert stats["tokens"]["total"]["count"] == len(totals)
    assert stats["tokens"]["total"]["max"] == max(totals)
    assert stats["tokens"]["total"]["mean"] == round(sum(totals) / len(totals), 1)
    assert stats["trained_share"] > 0.7


def test_training_rows_carry_reasoning_and_tool_calls():
    from ftdata import io
    from ftdata.formats import normalise
    from ftdata.labels import record_row
    from ftdata.records import Record

    records = [r for r in io.read(REASONING, io.ReadStats(), parse="fast") if isinstance(r, Record)]
    for rec, row in zip(records, _rows(REASONING), strict=True):
        normalise(rec, None)
        rendered = record_row(rec, "messages")["messages"]
        for mine, m in zip(rendered, row["messages"], strict=True):
            assert mine.get("reasoning_content", "") == _parts(m["content"], {"reasoning", "thinking"})
            calls = [c["function"] for c in mine.get("tool_calls", [])]
            assert calls == _calls(m["content"])


# Preference pairs -------------------------------------------------------------------------


def _side(tok: Any, messages: list[dict[str, Any]], max_length: int | None) -> tuple[int, int, int]:
    """(tokens, kept, trained) of one side of a pair: the reply's tokens that truncation keeps."""
    turns = [{"role": m["role"], "content": _parts(m["content"], {"text"})} for m in messages]
    text = tok.apply_chat_template(turns, tokenize=False)
    prompt = tok.apply_chat_template(turns[:-1], tokenize=False, add_generation_prompt=True)
    assert text.startswith(prompt)
    start, end = len(prompt), len(prompt) + len(turns[-1]["content"])
    encoded = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    n = len(encoded["input_ids"])
    kept = min(n, max_length or n)
    trained = sum(1 for i, (a, b) in enumerate(encoded["offset_mapping"]) if i < kept and a < end and b > start)
    return n, kept, trained


@pytest.mark.parametrize("max_length", [None, 512])
def test_preference_pairs_count_both_sides(tmp_path, max_length):
    tok = _tokenizer()
    rows = _rows(DPO)
    sides = [
        (_side(tok, r["chosen_messages"], max_length), _side(tok, r["rejected_messages"], max_length)) for r in rows
    ]
    args = ["--tokenizer", str(TOKENIZER_DIR)] + (["--max-length", str(max_length)] if max_length else [])
    stats, stdout = _audit(tmp_path, DPO, *args)
    assert stats["pairs"] == len(rows)
    assert stats["tokens"]["total"]["max"] == max(max(c[0], r[0]) for c, r in sides)
    trained = sum(c[2] + r[2] for c, r in sides)
    kept = sum(c[1] + r[1] for c, r in sides)
    assert (stats["trained_tokens"], stats["prompt_tokens"]) == (trained, kept - trained)
    assert stats["truncated_tokens"] == sum(c[0] - c[1] + r[0] - r[1] for c, r in sides)
    assert "tokens trained on (both replies of a pair)" in stdout
    assert "tokens per record (longer side of a pair)" in stdout
    if max_length:
        over = sum(c[0] > max_length or r[0] > max_length for c, r in sides)
        assert stats["over_max_length"] == over == 7  # 4 when only the chosen side was measured
        assert f"over max_length {max_length} (either side of a pair)" in stdout


def test_kto_records_are_one_sequence_each(tmp_path):
    stats, stdout = _audit(tmp_path, REAL / "kto_en_demo.json")
    assert (stats["pairs"], stats["stepwise"]) == (0, 0)
    assert "of a pair" not in stdout
    assert "labelled step" not in stdout
