"""Multimodal references: `images`/`videos`/`audios` lists against the placeholders and
typed parts that use them (FT122), and the local files they name (FT123), on
LLaMA-Factory's demo file and TRL-style records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import ftdata
from ftdata.config import Settings
from ftdata.engine.plan import compile_plan
from ftdata.engine.run import lint_file
from ftdata.formats import normalise
from ftdata.records import Record
from ftdata.requirements import LocalFiles, RequirementError
from ftdata.rules.media import local_references, media_list
from tests.conftest import REAL, run_cli

MLLM_DEMO = REAL / "mllm_demo.json"


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


def _demo_copy(tmp_path: Path) -> Path:
    """LLaMA-Factory's demo file with the images it names (``mllm_demo_data/1.jpg``...),
    copied as the sdist ships them."""
    images = MLLM_DEMO.parent / "mllm_demo_data"
    assert (images / "1.jpg").is_file(), "the demo images are kept beside the demo file"
    shutil.copytree(images, tmp_path / "mllm_demo_data")
    return Path(shutil.copy(MLLM_DEMO, tmp_path / "mllm_demo.json"))


def test_llamafactory_demo_images_exist_and_a_removed_one_is_reported(tmp_path: Path) -> None:
    demo = _demo_copy(tmp_path)
    report = ftdata.lint(demo, config=False, select=["FT123"])
    assert report.total_records == 6
    assert report.findings == []
    assert report.sources[0].not_applied == ()  # type: ignore[attr-defined]
    (tmp_path / "mllm_demo_data" / "2.jpg").unlink()
    report = ftdata.lint(demo, config=False, select=["FT123"])
    assert [(f.code, f.index, f.path, f.message) for f in report] == [
        ("FT123", i, ("images", 0), "no file at 'mllm_demo_data/2.jpg' (relative to the dataset file's folder)")
        for i in (1, 4)
    ]
    assert report.failed()


def test_paths_are_relative_to_the_dataset_file_not_the_working_folder(tmp_path: Path) -> None:
    (tmp_path / "data" / "img").mkdir(parents=True)
    (tmp_path / "data" / "img" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    rows = [
        {"messages": [_user("<image>A?"), {"role": "assistant", "content": "Yes."}], "images": ["img/a.png"]},
        {"messages": [_user("<image>B?"), {"role": "assistant", "content": "No."}], "images": ["b.png"]},
        {
            "messages": [_user("<image>C?"), {"role": "assistant", "content": "No."}],
            "images": [str(tmp_path / "b.png")],
        },
    ]
    data = tmp_path / "data" / "mm.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = run_cli("lint", "data/mm.jsonl", "--isolated", "--select", "FT123", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    column = data.read_text().splitlines()[1].index('"b.png"') + 1
    assert result.stdout.splitlines()[0] == (
        f"data/mm.jsonl:2:{column}: FT123 no file at 'b.png' (relative to the dataset file's folder)"
    )
    assert "FT123" not in "".join(result.stdout.splitlines()[1:])
    (tmp_path / "data" / "b.png").write_bytes(b"")
    assert run_cli("lint", "data/mm.jsonl", "--isolated", "--select", "FT123", cwd=tmp_path).returncode == 0


def test_urls_data_uris_and_other_keys_are_not_looked_up(tmp_path: Path) -> None:
    reply = {"role": "assistant", "content": "A cat."}
    found = [
        (line, message)
        for line, message in _lint_codes(
            tmp_path,
            [
                {"messages": [_user("<image>?"), reply], "images": ["https://example.com/x.png", "s3://b/x.png"]},
                {"messages": [_user("<image>?"), reply], "images": ["data:image/png;base64,AAAA"]},
                {
                    "messages": [_user([{"type": "image", "image": "data:image/png;base64,AAAA"}]), reply],
                    "photo": "x.png",
                },
                {"messages": [_user("<video>?"), reply], "videos": ["clip.mp4", 7, None, ""]},
            ],
            ["FT123"],
        )
    ]
    assert found == [(4, "no file at 'clip.mp4' (relative to the dataset file's folder)")]


def _lint_codes(tmp_path: Path, records: list[dict], select: list[str]) -> list[tuple[int | None, str]]:
    path = tmp_path / "mm.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return [(f.line, f.message) for f in ftdata.lint(path, config=False, select=select)]


def test_records_in_memory_are_not_checked_and_the_run_says_so_once() -> None:
    reply = {"role": "assistant", "content": "A cat."}
    rows = [{"messages": [_user("<image>?"), reply], "images": [f"missing/{i}.png"]} for i in range(3)]
    report = ftdata.lint(rows, config=False, select=["FT122", "FT123"])
    assert report.findings == []
    notes = [n.message for n in report.sources[0].not_applied]  # type: ignore[attr-defined]
    assert notes == ["FT123 does not apply to 3 records (records in memory have no folder to look their files up in)"]
    remote = [{"messages": [_user("<image>?"), reply], "images": ["https://example.com/c.png"]}]
    assert ftdata.lint(remote, config=False, select=["FT123"]).sources[0].not_applied == ()  # type: ignore[attr-defined]


def test_sharded_runs_look_files_up_like_a_serial_run(tmp_path: Path) -> None:
    (tmp_path / "here.png").write_bytes(b"x")
    reply = {"role": "assistant", "content": "A cat."}
    rows = [
        {"messages": [_user("<image>?"), reply], "images": ["here.png" if i % 3 else f"gone{i % 7}.png"]}
        for i in range(60)
    ]
    path = tmp_path / "mm.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    plan = compile_plan(Settings(select=("FT123",)))
    serial, _ = lint_file(path, plan, jobs=1)
    sharded, _ = lint_file(path, plan, jobs=3, parallel_min_bytes=1)
    assert sorted(sharded, key=lambda f: f.sort_key()) == sorted(serial, key=lambda f: f.sort_key())
    assert [f.index for f in sorted(serial, key=lambda f: f.sort_key())] == list(range(0, 60, 3))


def test_local_files_answers_each_distinct_name_and_survives_odd_names(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    collected = [(((("images", 0), "a.png"), (("images", 1), "a.png"))), ((("images", 0), "folder.png"),)]
    collected.append(((("images", 0), "bad\x00name.png"), (("images", 1), "n" * 5000 + ".png")))
    answer = LocalFiles().answer(tmp_path, collected)
    assert answer == {
        "found": {"a.png": True, "bad\x00name.png": False, "folder.png": False, "n" * 5000 + ".png": False}
    }


def test_the_answer_cannot_be_set_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "mm.jsonl"
    path.write_text(json.dumps({"messages": [_user("hi")], "images": ["x.png"]}) + "\n", encoding="utf-8")
    with pytest.raises(RequirementError, match="FT123 cannot run: option 'found' is filled in from the file system"):
        ftdata.lint(path, config=False, select=["FT123"], options={"FT123": {"found": {"x.png": True}}})


def test_typed_parts_that_name_their_own_file_are_looked_up(tmp_path: Path) -> None:
    (tmp_path / "here.png").write_bytes(b"x")
    reply = {"role": "assistant", "content": "A cat."}
    parts = [
        {"type": "image", "image": "here.png"},
        {"type": "image", "image": "gone.png"},
        {"type": "image_url", "image_url": {"url": "https://example.com/c.png"}},
        {"type": "image_url", "image_url": {"url": "shots/1.png"}},
        {"type": "video", "path": f"file://{tmp_path / 'clip.mp4'}"},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]
    path = tmp_path / "mm.jsonl"
    path.write_text(json.dumps({"messages": [_user(parts), reply]}) + "\n", encoding="utf-8")
    found = [(f.path, f.message) for f in ftdata.lint(path, config=False, select=["FT123"])]
    assert found == [
        (("messages", 0, "content", 1, "image"), "no file at 'gone.png' (relative to the dataset file's folder)"),
        (
            ("messages", 0, "content", 3, "image_url", "url"),
            "no file at 'shots/1.png' (relative to the dataset file's folder)",
        ),
        (("messages", 0, "content", 4, "path"), f"no file at {str(tmp_path / 'clip.mp4')!r}"),
    ]
