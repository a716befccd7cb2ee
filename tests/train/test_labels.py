"""Trained-token masks and their preview, on the tiny model's real tokenizer and template."""

from __future__ import annotations

import pytest

from ftdata_train.config import TrainConfig
from ftdata_train.data import prepare
from ftdata_train.labels import (
    TRUNCATED_MARK,
    LabelPreview,
    LossError,
    label_preview,
    render_labels,
    resolve_loss,
    sft_loss_options,
    tokenize_example,
)

CHAT = {
    "messages": [
        {"role": "system", "content": "You are the support assistant for Acme Notes."},
        {"role": "user", "content": "How do I reset my password?"},
        {"role": "assistant", "content": "Open Settings and choose Reset."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "Glad to help."},
    ]
}


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_assistant_loss_trains_on_each_reply_and_its_end_marker(tokenizer):
    example = tokenize_example(CHAT, tokenizer, max_length=None, loss="auto")
    assert not example.truncated
    assert example.length_before == len(example.input_ids)
    text = render_labels(example, tokenizer, style="brackets")
    assert text.count("[[") == 2
    assert "[[Open Settings and choose Reset.<|im_end|>]]" in text
    assert "[[Glad to help.<|im_end|>]]" in text
    assert "How do I reset my password?" in text
    assert "[[How" not in text
    plain = text.replace("[[", "").replace("]]", "")
    assert plain == tokenizer.decode(example.input_ids, skip_special_tokens=False)


def test_loss_all_trains_every_token(tokenizer):
    example = tokenize_example(CHAT, tokenizer, max_length=None, loss="all")
    assert all(example.trained)
    assert render_labels(example, tokenizer).startswith("[[<|im_start|>system")


def test_truncation_is_marked_and_can_leave_nothing_trained(tokenizer):
    full = tokenize_example(CHAT, tokenizer, max_length=None, loss="assistant")
    first_trained = full.trained.index(True)
    cut = tokenize_example(CHAT, tokenizer, max_length=first_trained + 2, loss="assistant")
    assert cut.truncated
    assert cut.length_before == len(full.input_ids)
    assert cut.input_ids == full.input_ids[: first_trained + 2]
    assert cut.trained_tokens == 2
    assert render_labels(cut, tokenizer).endswith("]]" + TRUNCATED_MARK)
    nothing = tokenize_example(CHAT, tokenizer, max_length=first_trained, loss="assistant")
    assert nothing.fully_masked
    assert nothing.truncated


def test_rich_style_colours_trained_and_dims_masked(tokenizer):
    first_trained = tokenize_example(CHAT, tokenizer, max_length=None, loss="assistant").trained.index(True)
    example = tokenize_example(CHAT, tokenizer, max_length=first_trained + 3, loss="assistant")
    text = render_labels(example, tokenizer, style="rich")
    by_style: dict[str, str] = {}
    for span in text.spans:
        by_style[str(span.style)] = by_style.get(str(span.style), "") + text.plain[span.start : span.end]
    assert set(by_style) == {"bold green", "dim", "bold red"}
    assert "How do I reset my password?" in by_style["dim"]
    assert by_style["bold green"] == render_labels(example, tokenizer).split("[[")[1].split("]]")[0]
    assert by_style["bold red"] == TRUNCATED_MARK
    assert text.plain.endswith(TRUNCATED_MARK)
    with pytest.raises(ValueError, match="style"):
        render_labels(example, tokenizer, style="html")  # type: ignore[arg-type]


def test_plain_completion_gets_eos_and_only_it_is_trained(tokenizer):
    example = tokenize_example(
        {"prompt": "Question: how do I export?", "completion": " Choose Export."},
        tokenizer,
        max_length=None,
        loss="auto",
    )
    text = render_labels(example, tokenizer)
    assert text.startswith("Question: how do I export?")
    assert text.endswith("Choose Export.<|im_end|>]]")


def test_losses_the_data_cannot_have_are_errors():
    with pytest.raises(LossError, match="plain-text prompt/completion"):
        resolve_loss("prompt_completion", "assistant")
    with pytest.raises(LossError):
        resolve_loss("messages", "completion")
    assert sft_loss_options("messages", "auto") == {"assistant_only_loss": True, "completion_only_loss": False}
    assert sft_loss_options("chat_prompt_completion", "auto") == {
        "assistant_only_loss": False,
        "completion_only_loss": True,
    }
    assert sft_loss_options("prompt_completion", "all") == {"assistant_only_loss": False, "completion_only_loss": False}


def test_label_preview_of_prepared_data_names_input_lines(tiny_model, clean_chat, tmp_path, tokenizer):
    config = TrainConfig(
        model=str(tiny_model), output_dir=str(tmp_path / "run"), max_length=48, data={"fully_masked": "drop"}
    )
    prepared = prepare(clean_chat, config=config)
    previews = label_preview(prepared, tokenizer, 3, max_length=48, loss=prepared.loss)
    assert [p.row for p in previews] == [0, 1, 2]
    assert all(isinstance(p, LabelPreview) and p.split == "train" for p in previews)
    assert [p.line for p in previews] == prepared.lines["train"][:3]
    for p in previews:
        assert (
            p.example.input_ids
            == tokenize_example(prepared.train[p.row], tokenizer, max_length=48, loss="auto").input_ids
        )
        assert "[[" in p.render(tokenizer)
    assert len(label_preview(prepared.eval, tokenizer, 1000, max_length=48, loss="auto")) == len(prepared.eval)
    assert label_preview(prepared, tokenizer, 0, max_length=48, loss="auto") == []
