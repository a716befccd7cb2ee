"""Trained-token masks and their preview, on the tiny model's real tokenizer and template."""

from __future__ import annotations

import os
import subprocess
import sys

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
from tests.train.conftest import write_rows

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


def _audit(*args: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ftdata", "audit", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_audit_html_shows_what_the_trainer_trains_on(tiny_model, tmp_path, tokenizer):
    """A real ``ftdata audit --tokenizer`` run: the page shows the first records with the same
    trained spans as the dry run's preview, escaped, cut where max_length cuts."""
    import orjson

    from ftdata.formats import normalise
    from ftdata.records import Record
    from ftdata_train.rows import trl_rows

    rows = [
        CHAT,
        {"not": "a record"},  # unreadable: skipped by the view, not shown as clean
        {
            "messages": [
                {"role": "user", "content": "Can I embed <script>alert(1)</script> in a note?"},
                {"role": "assistant", "content": "No: <script> & <b>tags</b> are shown as text."},
            ]
        },
        {"prompt": "Translate 'hello' to French:", "completion": " bonjour"},
        {
            "messages": [
                {"role": "user", "content": "Tell me everything. " * 40},
                {"role": "assistant", "content": "Ok."},
            ]
        },
        {"messages": [{"role": "user", "content": "One more?"}, {"role": "assistant", "content": "Sure."}]},
    ]
    data = write_rows(tmp_path / "data.jsonl", rows)
    page, figures = tmp_path / "audit.html", tmp_path / "audit.json"
    done = _audit(
        data, "--tokenizer", tiny_model, "--max-length", 64, "--show-labels", 4, "--html", page, "--json", figures, "-q"
    )
    assert done.returncode == 0, done.stderr
    views = orjson.loads(figures.read_bytes())["labels"]
    assert [v["line"] for v in views] == [1, 3, 4, 5]
    html = page.read_text(encoding="utf-8")
    assert html.count('<pre class="labels">') == 4
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    for view, line in zip(views, (1, 3, 4, 5), strict=True):
        rec = Record(line - 1, rows[line - 1])
        normalise(rec, None)
        kind = "prompt_completion" if "prompt" in rows[line - 1] else "messages"
        (row,) = trl_rows([rec], kind)
        # the dry run's preview of the same record, in brackets
        example = tokenize_example(row, tokenizer, max_length=64, loss="auto")
        preview = render_labels(example, tokenizer)
        assert (view["truncated"], view["tokens"], view["trained_tokens"]) == (
            example.truncated,
            len(example.input_ids),
            example.trained_tokens,
        )
        shown = "".join(f"[[{p['text']}]]" if p["trained"] else p["text"] for p in view["pieces"])
        assert shown + (TRUNCATED_MARK if view["truncated"] else "") == preview
        for piece in view["pieces"]:
            escaped = html_escape(piece["text"])
            tag = '<mark class="trained">' if piece["trained"] else '<span class="masked">'
            assert tag + escaped in html
    assert views[3]["truncated"]
    assert views[3]["trained_tokens"] == 0  # the reply is beyond the cut
    assert TRUNCATED_MARK in html
    assert [p["text"] for p in views[2]["pieces"] if p["trained"]] == [" bonjour<|im_end|>"]

    none = _audit(data, "--tokenizer", tiny_model, "--show-labels", 0, "--html", page, "-q")
    assert none.returncode == 0, none.stderr
    assert "What the trainer trains on" not in page.read_text(encoding="utf-8")


def html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)
