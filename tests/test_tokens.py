"""Token counts in batches agree with the tokenizer and its chat template called one
record at a time; a record the template refuses spoils nothing else in its batch."""

from __future__ import annotations

import pytest

from ftdata.auditing import _memory_records
from ftdata.tokens import count_tokens, load_tokenizer
from tests.conftest import PLAIN_TOKENIZER_DIR, TOKENIZER_DIR


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
