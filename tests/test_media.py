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
from ftdata.requirements import LocalFiles, RequirementError, Source
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


@pytest.mark.parametrize("media_dir", [None, "media"])
def test_sharded_runs_look_files_up_like_a_serial_run(tmp_path: Path, media_dir: str | None) -> None:
    """With or without a media_dir, shards look each file up where a serial run does."""
    folder = tmp_path / media_dir if media_dir else tmp_path
    folder.mkdir(exist_ok=True)
    (folder / "here.png").write_bytes(b"x")
    if media_dir:
        (tmp_path / "gone0.png").write_bytes(b"x")  # beside the file, not in media_dir: still missing
    reply = {"role": "assistant", "content": "A cat."}
    rows = [
        {"messages": [_user("<image>?"), reply], "images": ["here.png" if i % 3 else f"gone{i % 7}.png"]}
        for i in range(60)
    ]
    path = tmp_path / "mm.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    options = {"FT123": {"media_dir": str(folder)}} if media_dir else {}
    plan = compile_plan(Settings(select=("FT123",), options=options))
    serial, _ = lint_file(path, plan, jobs=1)
    sharded, _ = lint_file(path, plan, jobs=3, parallel_min_bytes=1)
    assert sorted(sharded, key=lambda f: f.sort_key()) == sorted(serial, key=lambda f: f.sort_key())
    assert [f.index for f in sorted(serial, key=lambda f: f.sort_key())] == list(range(0, 60, 3))


def test_local_files_answers_each_distinct_name_and_survives_odd_names(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    collected = [(((("images", 0), "a.png"), (("images", 1), "a.png"))), ((("images", 0), "folder.png"),)]
    collected.append(((("images", 0), "bad\x00name.png"), (("images", 1), "n" * 5000 + ".png")))
    answer = LocalFiles().answer(Source(tmp_path / "mm.jsonl"), collected, {})
    assert answer == {
        "found": {"a.png": True, "bad\x00name.png": False, "folder.png": False, "n" * 5000 + ".png": False},
        "dataset_dir": "",
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


MLLM_MEDIA = REAL.parent / "llamafactory-0.9.5-mllm"
#: The entries of LLaMA-Factory 0.9.5's data/dataset_info.json for its multimodal demos.
DEMO_INFO = {
    name: {
        "file_name": f"{name}.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", **{k: k for k in columns}},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }
    for name, columns in (
        ("mllm_demo", ["images"]),
        ("mllm_audio_demo", ["audios"]),
        ("mllm_video_demo", ["videos"]),
        ("mllm_video_audio_demo", ["videos", "audios"]),
    )
}


def _ft123(result_stdout: str) -> list[str]:
    return [line.split(": FT123 ", 1)[1] for line in result_stdout.splitlines() if ": FT123 " in line]


def test_media_dir_is_where_relative_paths_are_looked_up(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    demo = Path(shutil.copy(MLLM_DEMO, tmp_path / "data" / "mllm_demo.json"))
    shutil.copytree(MLLM_DEMO.parent / "mllm_demo_data", tmp_path / "media" / "mllm_demo_data")
    lint = ("lint", "data/mllm_demo.json", "--isolated", "--select", "FT123")
    beside = run_cli(*lint, cwd=tmp_path)
    assert beside.returncode == 1
    assert len(_ft123(beside.stdout)) == 8  # every reference of the six records
    # A relative media_dir is taken from the dataset file's folder, as relative paths are.
    given = run_cli(*lint, "--option", "FT123.media_dir=../media", cwd=tmp_path)
    assert given.returncode == 0, given.stdout + given.stderr
    assert run_cli(*lint, "--option", "FT123.media_dir=media", cwd=tmp_path).returncode == 2  # no data/media
    (tmp_path / "media" / "mllm_demo_data" / "3.jpg").unlink()
    gone = run_cli(*lint, "--option", "FT123.media_dir=../media", cwd=tmp_path)
    assert gone.returncode == 1
    assert (
        _ft123(gone.stdout)
        == ["no file at 'mllm_demo_data/3.jpg' (relative to media_dir '../media' in the dataset file's folder)"] * 2
    )
    # The same lookup from the library, with the folder given as an absolute path.
    media = str(tmp_path / "media")
    report = ftdata.lint(demo, config=False, select=["FT123"], options={"FT123": {"media_dir": media}})
    assert [(f.index, f.path, f.message) for f in report] == [
        (i, ("images", 0), f"no file at 'mllm_demo_data/3.jpg' (relative to media_dir {media!r})") for i in (2, 5)
    ]


def test_media_dir_in_the_configuration_is_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "project" / "data").mkdir(parents=True)
    shutil.copy(MLLM_DEMO, tmp_path / "project" / "data" / "mllm_demo.json")
    shutil.copytree(MLLM_DEMO.parent / "mllm_demo_data", tmp_path / "project" / "media" / "mllm_demo_data")
    (tmp_path / "project" / "pyproject.toml").write_text(
        '[tool.ftdata]\nselect = ["FT123"]\n\n[tool.ftdata.rules.FT123]\nmedia-dir = "./media"\n', encoding="utf-8"
    )
    (tmp_path / "elsewhere").mkdir()
    result = run_cli("lint", tmp_path / "project" / "data" / "mllm_demo.json", cwd=tmp_path / "elsewhere")
    assert result.returncode == 0, result.stdout + result.stderr


def test_absolute_paths_and_urls_ignore_media_dir(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "in.png").write_bytes(b"x")
    (tmp_path / "abs.png").write_bytes(b"x")
    reply = {"role": "assistant", "content": "A cat."}
    images = ["in.png", str(tmp_path / "abs.png"), "https://example.com/x.png", "abs.png", str(tmp_path / "gone.png")]
    path = tmp_path / "mm.jsonl"
    path.write_text(json.dumps({"messages": [_user("<image>" * 5), reply], "images": images}) + "\n", encoding="utf-8")
    options = {"FT123": {"media_dir": str(tmp_path / "media")}}
    found = [(f.path, f.message) for f in ftdata.lint(path, config=False, select=["FT123"], options=options)]
    assert found == [
        (("images", 3), f"no file at 'abs.png' (relative to media_dir {str(tmp_path / 'media')!r})"),
        (("images", 4), f"no file at {str(tmp_path / 'gone.png')!r}"),
    ]


def test_llamafactory_layout_with_dataset_info_is_clean(tmp_path: Path) -> None:
    """LLaMA-Factory's own layout: data/dataset_info.json, the demo files beside it, the
    media in data/mllm_demo_data (its default media_dir is the dataset folder)."""
    data = tmp_path / "data"
    shutil.copytree(MLLM_DEMO.parent / "mllm_demo_data", data / "mllm_demo_data")
    shutil.copy(MLLM_DEMO, data)
    for name in ("mllm_audio_demo", "mllm_video_demo", "mllm_video_audio_demo"):
        shutil.copy(MLLM_MEDIA / f"{name}.json", data)
    (data / "dataset_info.json").write_text(json.dumps(DEMO_INFO, indent=2), encoding="utf-8")
    named = {ref for name in DEMO_INFO for r in json.loads((data / f"{name}.json").read_text()) for k in ("images", "videos", "audios") for ref in r.get(k, [])}  # fmt: skip
    missing = sorted(ref for ref in named if not (data / ref).is_file())
    assert missing == [f"mllm_demo_data/{n}" for n in ("1.mp3", "1.mp4", "2.avi", "2.wav", "3.flac", "3.mp4", "4.mp3", "4.mp4")]  # fmt: skip
    files = [data / f"{name}.json" for name in DEMO_INFO]
    before = ftdata.lint(files, config=False, select=["FT122", "FT123"])
    assert {(f.source.rsplit("/", 1)[-1], f.message) for f in before} == {
        (f"{name}.json", f"no file at {ref!r} (relative to the dataset file's folder)")
        for name in DEMO_INFO
        for r in json.loads((data / f"{name}.json").read_text())
        for k in ("videos", "audios")
        for ref in r.get(k, [])
    }
    for ref in missing:  # the sdist's audio and video files, by name (FT123 opens nothing)
        (data / ref).write_bytes(b"")
    after = ftdata.lint(files, config=False, select=["FT122", "FT123"])
    assert after.total_records == 15
    assert after.findings == []


def test_a_dataset_info_above_the_file_gives_its_folder_as_media_dir(tmp_path: Path) -> None:
    """LLaMA-Factory looks media up in its dataset_dir (the folder of dataset_info.json),
    also for a file_name in a subfolder; so does ftdata, from the library too."""
    data = tmp_path / "data"
    shutil.copytree(MLLM_DEMO.parent / "mllm_demo_data", data / "mllm_demo_data")
    (data / "sub").mkdir()
    demo = Path(shutil.copy(MLLM_DEMO, data / "sub" / "mllm_demo.json"))
    (data / "dataset_info.json").write_text(
        json.dumps({"mllm_demo": {**DEMO_INFO["mllm_demo"], "file_name": "sub/mllm_demo.json"}}), encoding="utf-8"
    )
    assert ftdata.lint(demo, config=False, select=["FT123"]).findings == []
    report = ftdata.lint(demo, config=False, select=["FT123"], options={"FT123": {"media_dir": str(data / "sub")}})
    assert len(report.findings) == 8


def test_a_video_given_as_frames_counts_once_and_each_frame_is_looked_up(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "1.jpg").write_bytes(b"x")
    reply = {"role": "assistant", "content": "A goal."}
    rows = [{"messages": [_user("<video>What happens?"), reply], "videos": [["frames/1.jpg", "frames/2.jpg"]]}]
    path = tmp_path / "mm.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    found = [(f.code, f.path, f.message) for f in ftdata.lint(path, config=False, select=["FT122", "FT123"])]
    assert found == [("FT123", ("videos", 0, 1), "no file at 'frames/2.jpg' (relative to the dataset file's folder)")]
    rec = Record(0, rows[0])
    normalise(rec)
    assert list(local_references(rec)) == [(("videos", 0, 0), "frames/1.jpg"), (("videos", 0, 1), "frames/2.jpg")]
