"""Multimodal references: `images`/`videos`/`audios` lists against the placeholders and
typed parts that use them (FT122), on LLaMA-Factory's demo file and TRL-style records."""

from __future__ import annotations

import json
from pathlib import Path

import ftdata
from ftdata.formats import normalise
from ftdata.records import Record
from ftdata.rules.media import local_references, media_list
from tests.conftest import ROOT, run_cli

MLLM_DEMO = ROOT / "benchmarks" / "data" / "real" / "llamafactory-0.9.5" / "data" / "mllm_demo.json"


def _lint(tmp_path: Path, records: list[dict]) -> list[tuple[int | None, str]]:
    path = tmp_path / "mm.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return [(f.line, f.message) for f in ftdata.lint(path, config=False, select=["FT122"])]


def _user(content: object) -> dict:
    return {"role": "user", "content": content}


def test_llamafactory_demo_file_has_matching_counts() -> None:
    report = ftdata.lint(MLLM_DEMO, config=False, select=["FT122"])
    assert report.total_records == 6
    assert report.findings == []


def test_a_placeholder_too_many_or_too_few_is_an_error(tmp_path: Path) -> None:
    reply = {"role": "assistant", "content": "Two players."}
    found = _lint(
        tmp_path,
        [
            {"messages": [_user("<image>Who?"), reply, _user("And now?<image>"), reply], "images": ["1.jpg", "1.jpg"]},
            {"messages": [_user("<image>Who?"), reply, _user("And now?<image>"), reply], "images": ["1.jpg"]},
            {"messages": [_user("Who?"), reply], "images": ["1.jpg"]},
        ],
    )
    assert found == [
        (2, "2 <image> placeholders in the text but 1 entry in 'images'"),
        (3, "0 <image> placeholders in the text but 1 entry in 'images'"),
    ]


def test_typed_parts_count_unless_they_carry_their_own_media(tmp_path: Path) -> None:
    reply = {"role": "assistant", "content": [{"type": "text", "text": "A dog."}]}
    found = _lint(
        tmp_path,
        [
            {"messages": [_user([{"type": "image"}, {"type": "text", "text": "What?"}]), reply], "images": ["d.png"]},
            {"messages": [_user([{"type": "image"}, {"type": "image"}]), reply], "images": ["d.png"]},
            {"messages": [_user([{"type": "image", "image": "d.png"}]), reply]},
            {"messages": [_user([{"type": "image_url", "image_url": {"url": "https://x/d.png"}}]), reply]},
            {"messages": [_user([{"type": "audio"}]), reply]},
        ],
    )
    assert found == [
        (2, '2 {"type": "image"} parts but 1 entry in \'images\''),
        (5, '1 {"type": "audio"} part but no \'audios\' list'),
    ]


def test_a_placeholder_without_a_list_is_text(tmp_path: Path) -> None:
    reply = {"role": "assistant", "content": "It is not an HTML tag."}
    assert _lint(tmp_path, [{"messages": [_user("What does <image> do?"), reply]}]) == []


def test_each_side_of_a_pair_is_counted_with_the_prompt(tmp_path: Path) -> None:
    prompt = [{"from": "human", "value": "<image>What is it?"}]
    found = _lint(
        tmp_path,
        [
            {"conversations": prompt, "chosen": {"from": "gpt", "value": "A cat."}, "rejected": {"from": "gpt", "value": "A dog."}, "images": ["c.jpg"]},
            {"conversations": prompt, "chosen": {"from": "gpt", "value": "A cat."}, "rejected": {"from": "gpt", "value": "<image>"}, "images": ["c.jpg"]},
        ],
    )  # fmt: skip
    assert found == [(2, "the rejected conversation has 2 <image> placeholders in the text but 1 entry in 'images'")]


def test_single_values_and_null_are_read_as_trainers_read_them(tmp_path: Path) -> None:
    assert media_list({"images": "a.jpg"}, "images") == ["a.jpg"]
    assert media_list({"images": None}, "images") == []
    assert media_list({"images": {"path": "a.jpg"}}, "images") is None
    assert media_list({}, "images") is None
    found = _lint(
        tmp_path,
        [
            {"instruction": "<audio>Transcribe.", "input": "", "output": "Hello.", "audios": "a.wav"},
            {"instruction": "<video>Describe.", "input": "", "output": "A goal.", "videos": None},
        ],
    )
    assert found == [(2, "1 <video> placeholder in the text but 0 entries in 'videos'")]


def test_the_finding_points_at_the_list(tmp_path: Path) -> None:
    path = tmp_path / "mm.jsonl"
    path.write_text(
        json.dumps({"messages": [_user("Hi"), {"role": "assistant", "content": "Hello"}], "images": ["a.jpg"]}) + "\n"
    )
    result = run_cli("lint", path, "--isolated", "--select", "FT122")
    assert result.returncode == 1
    column = path.read_text().index('["a.jpg"]') + 1
    assert f"{path}:1:{column}: FT122 0 <image> placeholders in the text but 1 entry in 'images'" in result.stdout


def test_local_references_leave_urls_and_inline_data_out() -> None:
    rec = Record(0, {"messages": [], "images": ["a.jpg", "https://x/b.jpg", "data:image/png;base64,AA", "/abs/c.png"], "audios": "s.wav", "videos": [7]})  # fmt: skip
    normalise(rec)
    assert list(local_references(rec)) == [
        (("images", 0), "a.jpg"),
        (("images", 3), "/abs/c.png"),
        (("audios",), "s.wav"),
    ]
