"""Token counts in batches agree with the tokenizer and its chat template called one
record at a time; a record the template refuses spoils nothing else in its batch; ShareGPT
tool calls reach the template as tool calls, not as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ftdata
from ftdata.auditing import _memory_records
from ftdata.labels import record_row, tokenize_example
from ftdata.rules.tokens import min_tokens
from ftdata.tokens import TURN_OVERHEAD, chat_messages, chat_tools, count_tokens, load_tokenizer
from tests.conftest import PLAIN_TOKENIZER_DIR, REAL, TOKENIZER_DIR, run_cli

GLAIVE = REAL / "glaive_toolcall_en_demo.json"


def _conversation(i: int, tool: bool = False) -> dict:
    messages = [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": f"My order {i} has not arrived, what now? " * (1 + i % 3)},
        {"role": "assistant", "content": f"Sorry about order {i}. I have sent a new one." * (1 + i % 2)},
    ]
    if tool:
        messages.append({"role": "tool", "content": "ok"})
    messages += [{"role": "user", "content": "Thanks!"}, {"role": "assistant", "content": "You're welcome."}]
    return {"messages": messages}


@pytest.mark.parametrize("renderer", ["direct", "public"])
@pytest.mark.parametrize("directory", [TOKENIZER_DIR, PLAIN_TOKENIZER_DIR], ids=["generation", "plain"])
def test_batched_counts_match_one_record_at_a_time(tiny_tokenizers, directory, renderer, monkeypatch) -> None:
    if renderer == "public":  # a transformers without the internal renderer: the public API alone
        import transformers.utils.chat_template_utils as internals

        monkeypatch.delattr(internals, "render_jinja_template")
    rows = [_conversation(i, tool=i % 7 == 3) for i in range(40)]
    counts = list(count_tokens(_memory_records(rows, None), tokenizer=str(directory), batch=16))
    tok = load_tokenizer(str(directory))
    assert [c.index for c in counts] == list(range(40))
    for row, count in zip(rows, counts, strict=True):
        messages = row["messages"]
        if any(m["role"] == "tool" for m in messages):  # the template refuses the tool role
            assert count.error is not None
            assert "tool" in count.error
            continue
        assert count.error is None
        assert count.total == len(tok.apply_chat_template(messages, return_dict=True)["input_ids"])
        for role in ("system", "user", "assistant"):
            alone = sum(
                len(tok(m["content"], add_special_tokens=False)["input_ids"]) for m in messages if m["role"] == role
            )
            assert count.by_role[role] == alone
        prompt = tok.apply_chat_template(messages[:2], add_generation_prompt=True, return_dict=True)["input_ids"]
        assert count.reply_start == len(prompt)
        if directory == TOKENIZER_DIR:  # the marked text is each reply and its end-of-turn token
            assert count.trainable == count.by_role["assistant"] + 2
        else:
            assert count.trainable is None


def test_estimate_is_labelled() -> None:
    (count,) = count_tokens(_memory_records([_conversation(1)], None))
    assert count.estimated
    assert count.total > 0
    assert count.reply_start is not None


@pytest.fixture(scope="module")
def glaive() -> list[dict]:
    """LLaMA-Factory's ShareGPT tool-calling demo: function_call and observation turns, tools
    as a JSON string."""
    return json.loads(GLAIVE.read_text(encoding="utf-8"))


@pytest.fixture
def tool_tokenizer(tiny_tokenizers, tmp_path: Path) -> Path:
    """The tiny tokenizer with a Qwen2.5-style tool-calling template."""
    from transformers import AutoTokenizer

    from ftdata_train.testing import TOOL_CHAT_TEMPLATE

    tok = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    tok.chat_template = TOOL_CHAT_TEMPLATE
    tok.save_pretrained(tmp_path / "tool-tokenizer")
    return tmp_path / "tool-tokenizer"


def test_sharegpt_function_calls_become_tool_calls(glaive) -> None:
    calls = results = 0
    for rec in _memory_records(glaive, None):
        messages = chat_messages(rec)
        turns = rec.data["conversations"]
        assert len(messages) == len(turns)
        for message, turn in zip(messages, turns, strict=True):
            if turn["from"] == "function_call":
                call = json.loads(turn["value"])
                assert message == {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
                    ],
                }
                assert isinstance(message["tool_calls"][0]["function"]["arguments"], dict)
                calls += 1
            elif turn["from"] == "observation":
                assert message == {"role": "tool", "content": turn["value"]}
                results += 1
            else:
                assert "tool_calls" not in message
        assert chat_tools(rec) == json.loads(rec.data["tools"]) or rec.data["tools"] in ("", "[]")
    assert calls == results == 211


def test_sharegpt_call_lists_and_string_arguments() -> None:
    rows = [
        {
            "conversations": [
                {"from": "human", "value": "Weather in Paris and Rome?"},
                {
                    "from": "function_call",
                    "value": json.dumps(
                        [{"name": "weather", "arguments": '{"city": "Paris"}'}, {"name": "weather", "arguments": {}}]
                    ),
                },
                {"from": "observation", "value": "sunny"},
                {"from": "gpt", "value": "Sunny."},
            ]
        },
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "function_call", "value": "not a call"}]},
    ]
    called, broken = _memory_records(rows, None)
    functions = [c["function"] for c in chat_messages(called)[1]["tool_calls"]]
    assert functions == [{"name": "weather", "arguments": {"city": "Paris"}}, {"name": "weather", "arguments": {}}]
    # a turn that is not a call stays what it was: text (FT116 reports it)
    assert chat_messages(broken)[1] == {"role": "assistant", "content": "not a call"}


@pytest.mark.parametrize("renderer", ["direct", "public"])
def test_tool_calls_and_tools_are_counted_as_the_template_renders_them(
    glaive, tool_tokenizer, renderer, monkeypatch
) -> None:
    if renderer == "public":
        import transformers.utils.chat_template_utils as internals

        monkeypatch.delattr(internals, "render_jinja_template")
    records = list(_memory_records(glaive[:60], None))
    counts = list(count_tokens(records, tokenizer=str(tool_tokenizer), batch=16))
    tok = load_tokenizer(str(tool_tokenizer))
    with_calls = 0
    for rec, count in zip(records, counts, strict=True):
        assert count.error is None
        messages, tools = chat_messages(rec), chat_tools(rec)
        out = tok.apply_chat_template(messages, tools=tools, return_dict=True, return_assistant_tokens_mask=True)
        assert count.total == len(out["input_ids"])
        assert count.trainable == sum(out["assistant_masks"])
        # the same figures as the row the trainer gets (the audit's label view, ftdata train)
        example = tokenize_example(record_row(rec, "messages"), tok, max_length=None, loss="assistant")
        assert (example.length_before, example.trained_tokens) == (count.total, count.trainable)
        trained = tok.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m])
        for message in messages:
            for call in message.get("tool_calls", ()):
                with_calls += 1
                # the call is trained as the template writes it: name and arguments as JSON
                function = call["function"]
                assert (
                    f'{{"name": "{function["name"]}", "arguments": {json.dumps(function["arguments"], ensure_ascii=False)}}}'
                    in trained
                )
        if tools:  # the declared tools are in the prompt the counts cover
            assert tools[0]["name"] in tok.decode(out["input_ids"])
    assert with_calls > 10


def test_lint_renders_glaive_tool_calls_with_a_tool_template(tool_tokenizer) -> None:
    tools = run_cli("lint", GLAIVE, "--select", "FT503", "--tokenizer", tool_tokenizer, "--output-format", "json")
    assert tools.returncode == 0, tools.stdout + tools.stderr
    assert json.loads(tools.stdout) == []
    # the tiny ChatML template refuses the tool role: every record with an observation fails
    plain = run_cli("lint", GLAIVE, "--select", "FT503", "--tokenizer", TOKENIZER_DIR, "--output-format", "json")
    assert plain.returncode == 1
    failed = json.loads(plain.stdout)
    assert len(failed) == sum(
        any(t["from"] == "observation" for t in r["conversations"]) for r in json.loads(GLAIVE.read_text())
    )
    assert all("unsupported role tool" in f["message"] for f in failed)


def _long_chat(reply: str) -> dict:
    return {"messages": [{"role": "user", "content": "Tell me more."}, {"role": "assistant", "content": reply}]}


def test_estimated_length_is_reported_only_when_the_words_are_over_too(tmp_path: Path) -> None:
    """Without a tokenizer, 4 characters a token over-counts text of long words: such a
    record is left alone unless its words, numbers and signs alone are over."""
    path = tmp_path / "long.jsonl"
    records = [
        _long_chat("The cat sat on the mat, and it was a good day. " * 12),  # 168 pieces, ~141 by characters
        _long_chat("internationalization characteristically " * 20),  # 40 pieces, ~206 by characters
        _long_chat("这个问题的答案取决于很多因素。" * 20),  # at least 172, but ~86 by characters
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    report = [f for f in ftdata.lint(path, select=["FT501"], max_length=100, config=False) if f.code == "FT501"]
    assert [f.index for f in report] == [0]
    assert report[0].message.startswith("~")
    assert "at least 180 by its words, numbers and punctuation" in report[0].message
    assert "set `tokenizer` for exact counts" in report[0].message


def test_min_tokens_counts_pieces_and_cjk_characters() -> None:
    (rec,) = _memory_records([_long_chat("I've got 12345 apples (fresh), don't you?")], None)
    # user: Tell, me, more, "."; assistant: I've, got, 123, 45, apples, fresh ("(" may join it), "),", don't, you, "?"
    assert min_tokens(rec) == 4 + 10 + 2 * TURN_OVERHEAD
    (han,) = _memory_records([_long_chat("你好世界" * 10)], None)
    assert min_tokens(han) == 4 + 20 + 2 * TURN_OVERHEAD
