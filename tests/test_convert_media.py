"""convert carries a record's media lists (``images``, ``videos``, ``audios``) into every
shape that can hold them, as the values they were, with relative paths as written; the
multimodal rules (FT122, FT123) find on the output what they found on the input;
``--to text`` refuses such a record with its reason. Every key of a record ends in the
converted record or the record is refused naming a key (a property). And FT106 takes the
``tools`` that convert writes beside a prompt-completion record as part of the format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import ftdata
from ftdata.curation.convert import convert
from ftdata.formats import detect
from tests.conftest import REAL, run_cli

MLLM_MEDIA = REAL.parent / "llamafactory-0.9.5-mllm"
#: LLaMA-Factory 0.9.5's multimodal demos: each record holds a list of each of these keys.
DEMOS = {
    REAL / "mllm_demo.json": ("images",),
    MLLM_MEDIA / "mllm_audio_demo.json": ("audios",),
    MLLM_MEDIA / "mllm_video_demo.json": ("videos",),
    MLLM_MEDIA / "mllm_video_audio_demo.json": ("videos", "audios"),
}
MEDIA_RULES = ("--isolated", "--select", "FT122,FT123")


def _rows(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines()]


def _layout(folder: Path, source: Path, keys: tuple[str, ...]) -> Path:
    """A copy of ``source`` in ``folder`` with its media beside it (the demo's own images;
    empty stand-ins for audio and video, as FT123 checks that a file exists, not what it
    holds); the copy's path."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = Path(shutil.copy(source, folder / source.name))
    for ref in {ref for row in _rows(source) for key in keys for ref in row[key]}:
        (folder / ref).parent.mkdir(parents=True, exist_ok=True)
        original = source.parent / ref
        (folder / ref).write_bytes(original.read_bytes() if original.is_file() else b"")
    return copy


def _media_findings(path: Path) -> list[tuple[int | None, str, str]]:
    """FT122 and FT123 on ``path``: which record, which rule, what it says."""
    result = ftdata.lint(path, select=["FT122", "FT123"], config=False)
    return sorted((f.index, f.code, f.message) for f in result.findings)


@pytest.mark.parametrize("to", ["messages", "prompt-completion"])
@pytest.mark.parametrize("source", list(DEMOS), ids=lambda p: p.stem)
def test_the_demos_keep_their_media_lists_and_their_media_findings(tmp_path: Path, source: Path, to: str) -> None:
    keys = DEMOS[source]
    data = _layout(tmp_path / "data", source, keys)
    out = tmp_path / "data" / f"out.{to}.jsonl"
    result = run_cli("convert", str(data), "-o", str(out), "--to", to, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    records, rows = _rows(source), _rows(out)
    assert len(rows) == len(records) > 0
    for row, record in zip(rows, records, strict=True):
        for key in keys:
            assert orjson.dumps(row[key]) == orjson.dumps(record[key])  # the same value, relative paths as written
    assert _media_findings(out) == _media_findings(data) == []
    # One file gone and one list short: the output is reported as the input is.
    gone = records[0][keys[0]][0]
    (tmp_path / "data" / gone).unlink()
    short = [dict(r) for r in records]
    short[-1][keys[-1]] = short[-1][keys[-1]][1:]
    data.write_text(json.dumps(short, indent=2), encoding="utf-8")
    out.unlink()
    assert run_cli("convert", str(data), "-o", str(out), "--to", to, cwd=tmp_path).returncode == 0
    before, after = _media_findings(data), _media_findings(out)
    assert {code for _, code, _ in before} == {"FT122", "FT123"}
    assert after == before


@pytest.mark.parametrize("source", list(DEMOS), ids=lambda p: p.stem)
def test_to_text_and_to_preference_refuse_the_demos_with_their_reason(tmp_path: Path, source: Path) -> None:
    keys = DEMOS[source]
    records = _rows(source)
    text = convert(records, to="text")
    assert text.converted == 0
    assert {r.reason for r in text.rejected} == {"needs-chat-template"}
    lost = " and ".join(repr(k) for k in sorted(keys))
    assert all(r.detail.endswith(f"; its {lost} would be lost too") for r in text.rejected)
    # A conversation with no rejected reply or label is no preference data, media or not.
    assert {r.reason for r in convert(records, to="preference").rejected} == {"not-preference"}
    cli = run_cli("convert", str(source), "-o", str(tmp_path / "out.jsonl"), "--to", "text", cwd=tmp_path)
    assert cli.returncode == 1
    rejects = _rows(tmp_path / "out.rejected.jsonl")
    assert [r["reason"] for r in rejects] == ["needs-chat-template"] * len(records)


def test_a_relative_path_is_kept_as_written_when_the_output_is_elsewhere(tmp_path: Path) -> None:
    """LLaMA-Factory resolves a relative path against its media_dir, not the file: the
    path is not rewritten, and FT123 says where it looked for it beside the output."""
    data = _layout(tmp_path / "data", REAL / "mllm_demo.json", ("images",))
    (tmp_path / "elsewhere").mkdir()
    out = tmp_path / "elsewhere" / "out.jsonl"
    convert(data, out, to="messages")
    assert [r["images"] for r in _rows(out)] == [r["images"] for r in _rows(data)]
    assert _media_findings(data) == []
    missing = {message for _, code, message in _media_findings(out) if code == "FT123"}
    assert missing == {
        f"no file at 'mllm_demo_data/{n}.jpg' (relative to the dataset file's folder)" for n in (1, 2, 3)
    }
    # Pointed at the input's folder, the rule finds them again.
    media_dir = {"FT123": {"media_dir": str(tmp_path / "data")}}
    assert ftdata.lint(out, select=["FT123"], config=False, options=media_dir).findings == []


#: Preference and KTO records with media, in TRL's vision layout (typed image parts) and
#: LLaMA-Factory's (placeholders, ShareGPT turns).
PAIRS = [
    {
        "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is shown?"}]}],
        "chosen": [{"role": "assistant", "content": "A red bicycle."}],
        "rejected": [{"role": "assistant", "content": "A blue car."}],
        "images": ["pics/bike.png"],
    },
    {
        "conversations": [{"from": "human", "value": "<image><image>Which is larger?"}],
        "chosen": {"from": "gpt", "value": "The left one."},
        "rejected": {"from": "gpt", "value": "They are the same."},
        "images": ["pics/a.png", "pics/b.png"],
    },
    {
        "messages": [
            {"role": "user", "content": "<audio>What do you hear?"},
            {"role": "assistant", "content": "Rain on a roof."},
        ],
        "label": True,
        "audios": ["sounds/rain.wav"],
    },
]


@pytest.mark.parametrize("to", ["preference", "messages", "prompt-completion"])
def test_preference_and_kto_records_keep_their_media(tmp_path: Path, to: str) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "sounds").mkdir()
    for name in ("pics/bike.png", "pics/a.png", "sounds/rain.wav"):  # pics/b.png is missing
        (tmp_path / name).write_bytes(b"")
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in PAIRS), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = convert(data, out, to=to)
    # A pair is no single conversation: only --to preference takes it.
    kept = PAIRS if to == "preference" else PAIRS[2:]
    assert result.converted == len(kept)
    rows = _rows(out)
    for row, record in zip(rows, kept, strict=True):
        key = "images" if "images" in record else "audios"
        assert orjson.dumps(row[key]) == orjson.dumps(record[key])
    found = _media_findings(out)
    if to == "preference":
        assert found == _media_findings(data)
        assert [code for _, code, _ in found] == ["FT123"]  # pics/b.png, in the output as in the input


def test_a_text_with_media_is_refused_not_stripped(tmp_path: Path) -> None:
    rows = [{"text": "<image>A photo of a cat.", "images": ["cat.png"]}, {"text": "Plain.", "id": 7}]
    result = convert(rows, to="text")
    assert result.rows == [{"text": "Plain.", "id": 7}]
    assert [(r.index, r.reason, r.detail) for r in result.rejected] == [
        (0, "media-in-text", "a language-modelling text cannot hold media: 'images' would be dropped")
    ]


def test_keys_the_shape_writes_or_reads_refuse_the_record_naming_them() -> None:
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    rows = [
        {"messages": chat, "id": 3, "parallel_tool_calls": False, "system": "Be brief."},
        {"messages": chat, "prompt": "an older prompt"},
        {"messages": chat, "conversations": [{"from": "human", "value": "Hi"}]},
    ]
    result = convert(rows, to="prompt-completion")
    assert result.rows == [
        {"prompt": chat[:1], "completion": chat[1:], "id": 3, "parallel_tool_calls": False, "system": "Be brief."}
    ]
    assert [(r.index, r.reason, r.detail) for r in result.rejected] == [
        (
            1,
            "key-conflict",
            "the record's own 'prompt' would be replaced by the 'prompt' of the prompt-completion shape",
        ),
        (
            2,
            "ambiguous-keys",
            "the converted record would be read as sharegpt, not prompt-completion, from its own 'conversations'",
        ),
    ]
    assert convert(rows[1:], to="messages").rows == rows[1:]  # beside messages, both are the record's own


def test_prompt_completion_tools_are_part_of_the_format(tmp_path: Path) -> None:
    """TRL's SFTTrainer hands a prompt-completion record's ``tools`` to the chat template:
    FT106 does not report the key that convert writes there; an ``id`` it still does."""
    out = tmp_path / "out.jsonl"
    result = convert(REAL / "reason_tool_use_demo_50.jsonl", out, to="prompt-completion")
    assert result.converted == result.records == 50
    assert sum("tools" in row for row in _rows(out)) > 0
    assert ftdata.lint(out, select=["FT106"], config=False).findings == []
    row = {**_rows(out)[0], "id": "a1"}
    out.write_text(json.dumps(row) + "\n", encoding="utf-8")
    found = ftdata.lint(out, select=["FT106"], config=False).findings
    assert [(f.code, f.message) for f in found] == [("FT106", "key 'id' is not part of the prompt-completion format")]


# --- every key ends in the output, or the record is refused naming a key ---------------

WORDS = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=6)
USER = st.builds(lambda t: {"role": "user", "content": t}, WORDS)
REPLY = st.builds(lambda t: {"role": "assistant", "content": t}, WORDS)
#: Records of each type ftdata converts, with the keys their dialect is read from.
BASES = [
    (st.builds(lambda u, a: {"messages": [u, a]}, USER, REPLY), {"messages"}),
    (
        st.builds(lambda q, a: {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}, WORDS, WORDS),
        {"conversations", "system"},
    ),
    (st.builds(lambda i, o: {"instruction": i, "input": "", "output": o}, WORDS, WORDS), {"instruction", "input", "output", "system", "history"}),
    (st.builds(lambda u, a: {"prompt": [u], "completion": [a]}, USER, REPLY), {"prompt", "completion"}),
    (st.builds(lambda u, a, b: {"prompt": [u], "chosen": [a], "rejected": [b]}, USER, REPLY, REPLY), {"prompt", "chosen", "rejected"}),
    (st.builds(lambda u, a, b: {"messages": [u, a], "label": b}, USER, REPLY, st.booleans()), {"messages", "label"}),
    (st.builds(lambda t: {"text": t}, WORDS), {"text"}),
]  # fmt: skip
#: Keys a record may carry beside its turns: media lists, metadata, and the keys of other
#: types and dialects (which a target shape may hold itself).
EXTRA = st.sampled_from(
    ["images", "videos", "audios", "id", "metadata", "system", "history", "input", "parallel_tool_calls", "label",
     "kto_tag", "prompt", "completion", "chosen", "rejected", "messages", "conversations", "instruction", "text"]
)  # fmt: skip
VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    WORDS,
    st.lists(WORDS, max_size=2),
    st.dictionaries(WORDS, WORDS, max_size=1),
)


@st.composite
def records(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A record of a known type and the same record with keys of its own added."""
    base_strategy, read = draw(st.sampled_from(BASES))
    base = draw(base_strategy)
    extra = draw(
        st.dictionaries(EXTRA.filter(lambda k: k not in read and k not in base), VALUE, min_size=1, max_size=3)
    )
    return base, {**base, **extra}


@settings(max_examples=300, deadline=None)
@given(pair=records(), to=st.sampled_from(["messages", "prompt-completion", "preference", "text"]))
def test_every_key_ends_in_the_output_or_the_record_is_refused_naming_one(
    pair: tuple[dict[str, Any], dict[str, Any]], to: str
) -> None:
    base, record = pair
    assume(detect(record) == detect(base))  # the added keys leave the record of its type
    extra = {k: v for k, v in record.items() if k not in base}
    result = convert([record], to=to)
    if result.rows:
        (row,) = result.rows
        for key, value in extra.items():
            assert key in row, (key, row)
            assert orjson.dumps(row[key]) == orjson.dumps(value)
    elif convert([base], to=to).rows:
        # The record converts without its own keys: the refusal is theirs and says which.
        (rejection,) = result.rejected
        assert any(f"{k!r}" in rejection.detail or f"{k}[" in rejection.detail for k in record), rejection
