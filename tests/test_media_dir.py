"""FT123's folders: relative media paths default to the folder of the LLaMA-Factory
dataset_info.json that names the data file (LLaMA-Factory's ``dataset_dir``, the default
of its ``media_dir``), also for a file in a subfolder of it; an explicit ``media_dir``
wins; a ``media_dir`` that names no folder is an error of the run. On LLaMA-Factory
0.9.5's own multimodal demos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import ftdata
from ftdata.config import ConfigError, Settings
from ftdata.engine.plan import compile_plan
from ftdata.engine.run import lint_file
from tests.conftest import REAL, run_cli

MLLM_DEMO = REAL / "mllm_demo.json"
IMAGES = REAL / "mllm_demo_data"
MLLM_MEDIA = REAL.parent / "llamafactory-0.9.5-mllm"
#: LLaMA-Factory 0.9.5's data/dataset_info.json entry for mllm_demo, as it ships it.
TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}
LINT = ("lint", "--isolated", "--select", "FT123")


def _entry(file_name: str, *columns: str) -> dict:
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", **{c: c for c in columns}},
        "tags": TAGS,
    }


def _layout(root: Path, *, media: str = "data") -> Path:
    """``root/data/dataset_info.json`` naming ``sub/mllm_demo.json``, with the demo's
    images in ``root/<media>/mllm_demo_data``; the data file's path."""
    (root / "data" / "sub").mkdir(parents=True)
    shutil.copytree(IMAGES, root / media / "mllm_demo_data")
    demo = Path(shutil.copy(MLLM_DEMO, root / "data" / "sub" / "mllm_demo.json"))
    info = {"mllm_demo": _entry("sub/mllm_demo.json", "images")}
    (root / "data" / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return demo


def _ft123(stdout: str) -> list[str]:
    return [line.split(": FT123 ", 1)[1] for line in stdout.splitlines() if ": FT123 " in line]


def test_media_beside_the_dataset_info_above_a_file_in_a_subfolder_is_found(tmp_path: Path) -> None:
    _layout(tmp_path)
    result = run_cli(*LINT, "data/sub/mllm_demo.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All checks passed (6 records in 1 file)" in result.stdout
    (tmp_path / "data" / "mllm_demo_data" / "3.jpg").unlink()
    gone = run_cli(*LINT, "data/sub/mllm_demo.json", cwd=tmp_path)
    assert gone.returncode == 1
    where = "(relative to 'data', the folder of the dataset_info.json that names the file)"
    assert _ft123(gone.stdout) == [f"no file at 'mllm_demo_data/3.jpg' {where}"] * 2


def test_media_beside_the_data_file_only_is_reported_naming_the_folder(tmp_path: Path) -> None:
    """LLaMA-Factory would not find them there: it joins the path to its dataset_dir."""
    _layout(tmp_path, media="data/sub")
    result = run_cli(*LINT, "data/sub/mllm_demo.json", cwd=tmp_path)
    assert result.returncode == 1
    where = "(relative to 'data', the folder of the dataset_info.json that names the file)"
    named = [ref for r in json.loads(MLLM_DEMO.read_text(encoding="utf-8")) for ref in r["images"]]
    assert _ft123(result.stdout) == [f"no file at {ref!r} {where}" for ref in named]
    assert len(named) == 8


def test_audio_and_video_demos_in_a_subfolder_are_looked_up_beside_dataset_info(tmp_path: Path) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    info: dict[str, dict] = {}
    refs: list[str] = []
    for name, columns in (("mllm_audio_demo", ("audios",)), ("mllm_video_audio_demo", ("videos", "audios"))):
        shutil.copy(MLLM_MEDIA / f"{name}.json", tmp_path / "data" / "sub")
        info[name] = _entry(f"sub/{name}.json", *columns)
        refs += [ref for r in json.loads((MLLM_MEDIA / f"{name}.json").read_text()) for c in columns for ref in r[c]]
    (tmp_path / "data" / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    files = ["data/sub/mllm_audio_demo.json", "data/sub/mllm_video_audio_demo.json"]
    where = "(relative to 'data', the folder of the dataset_info.json that names the file)"
    before = run_cli(*LINT, *files, cwd=tmp_path)
    assert sorted(_ft123(before.stdout)) == sorted(f"no file at {ref!r} {where}" for ref in refs)  # none there yet
    for ref in refs:  # FT123 checks that a file exists, not what it holds
        (tmp_path / "data" / ref).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / ref).write_bytes(b"")
    result = run_cli(*LINT, *files, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_dataset_info_given_on_the_command_line_or_in_the_configuration_gives_its_folder(tmp_path: Path) -> None:
    """The dataset_info.json may live apart from the data (LLaMA-Factory's dataset_dir with
    a file_name that leads out of it): its folder is still where media are looked up."""
    (tmp_path / "meta").mkdir()
    shutil.copytree(IMAGES, tmp_path / "meta" / "mllm_demo_data")
    (tmp_path / "raw").mkdir()
    shutil.copy(MLLM_DEMO, tmp_path / "raw" / "mllm_demo.json")
    info = tmp_path / "meta" / "dataset_info.json"
    info.write_text(json.dumps({"mllm_demo": _entry("../raw/mllm_demo.json", "images")}), encoding="utf-8")
    assert len(_ft123(run_cli(*LINT, "raw/mllm_demo.json", cwd=tmp_path).stdout)) == 8  # not found by looking
    given = run_cli(*LINT, "raw/mllm_demo.json", "--dataset-info", "meta/dataset_info.json", cwd=tmp_path)
    assert given.returncode == 0, given.stdout + given.stderr
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ftdata]\nselect = ["FT123"]\ndataset-info = "meta/dataset_info.json"\n', encoding="utf-8"
    )
    configured = run_cli("lint", "raw/mllm_demo.json", cwd=tmp_path)
    assert configured.returncode == 0, configured.stdout + configured.stderr


def test_the_api_takes_the_folder_of_the_dataset_info_it_is_given(tmp_path: Path) -> None:
    (tmp_path / "meta").mkdir()
    shutil.copytree(IMAGES, tmp_path / "meta" / "mllm_demo_data")
    (tmp_path / "raw").mkdir()
    data = Path(shutil.copy(MLLM_DEMO, tmp_path / "raw" / "mllm_demo.json"))
    info = tmp_path / "meta" / "dataset_info.json"
    info.write_text(json.dumps({"mllm_demo": _entry("../raw/mllm_demo.json", "images")}), encoding="utf-8")
    alone = ftdata.lint(data, select=["FT123"], config=False)
    assert [f.code for f in alone.findings] == ["FT123"] * 8
    given = ftdata.lint(data, select=["FT123"], config=False, dataset_info=info)
    assert given.findings == []


def test_a_dataset_info_that_does_not_name_the_file_leaves_the_default(tmp_path: Path) -> None:
    demo = _layout(tmp_path)
    (tmp_path / "data" / "dataset_info.json").write_text(
        json.dumps({"other": _entry("sub/other.json", "images")}), encoding="utf-8"
    )
    result = run_cli(*LINT, "data/sub/mllm_demo.json", cwd=tmp_path)
    assert result.returncode == 1
    assert set(_ft123(result.stdout)) == {
        f"no file at 'mllm_demo_data/{n}.jpg' (relative to the dataset file's folder)" for n in (1, 2, 3)
    }
    shutil.copytree(IMAGES, demo.parent / "mllm_demo_data")
    assert run_cli(*LINT, "data/sub/mllm_demo.json", cwd=tmp_path).returncode == 0


def test_an_explicit_media_dir_wins_over_the_dataset_info_folder(tmp_path: Path) -> None:
    _layout(tmp_path)  # the images beside dataset_info.json...
    shutil.copytree(IMAGES, tmp_path / "media" / "mllm_demo_data")
    (tmp_path / "media" / "mllm_demo_data" / "1.jpg").unlink()  # ...and elsewhere, one short
    media = str(tmp_path / "media")
    result = run_cli(*LINT, "data/sub/mllm_demo.json", "--option", f"FT123.media_dir={media}", cwd=tmp_path)
    assert result.returncode == 1
    assert _ft123(result.stdout) == [f"no file at 'mllm_demo_data/1.jpg' (relative to media_dir {media!r})"] * 4
    # A relative media_dir is taken from the default folder, here dataset_info.json's.
    relative = run_cli(*LINT, "data/sub/mllm_demo.json", "--option", "FT123.media_dir=../media", cwd=tmp_path)
    assert _ft123(relative.stdout) == ["no file at 'mllm_demo_data/1.jpg' (relative to media_dir '../media' in 'data')"] * 4  # fmt: skip
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ftdata]\nselect = ["FT123"]\n\n[tool.ftdata.rules.FT123]\nmedia-dir = "./media"\n', encoding="utf-8"
    )
    assert len(_ft123(run_cli("lint", "data/sub/mllm_demo.json", cwd=tmp_path).stdout)) == 4


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_media_dir_that_is_not_a_folder_is_an_error_of_the_run(tmp_path: Path, kind: str) -> None:
    _layout(tmp_path)
    target = tmp_path / ("nowhere" if kind == "missing" else "notes.txt")
    if kind == "file":
        target.write_text("not a folder\n", encoding="utf-8")
    problem = "does not exist" if kind == "missing" else "is a file"
    message = f"option 'media_dir' of rule FT123 (media-file-missing) must name a folder: {str(target)!r} {problem}"
    result = run_cli(*LINT, "data/sub/mllm_demo.json", "--option", f"FT123.media_dir={target}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"ftdata: error: {message}"
    # The same from the configuration (relative to it) and from the library: a ConfigError,
    # as for an option of the wrong type.
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.ftdata]\nselect = ["FT123"]\n\n[tool.ftdata.rules.FT123]\nmedia-dir = "./{target.name}"\n',
        encoding="utf-8",
    )
    configured = run_cli("lint", "data/sub/mllm_demo.json", cwd=tmp_path)
    assert (configured.returncode, configured.stderr.strip()) == (2, f"ftdata: error: {message}")
    demo = tmp_path / "data" / "sub" / "mllm_demo.json"
    with pytest.raises(ConfigError) as raised:
        ftdata.lint(demo, config=False, select=["FT123"], options={"FT123": {"media_dir": str(target)}})
    assert str(raised.value) == message
    with pytest.raises(ConfigError, match=r"option 'media_dir' of rule FT123 .* expects str"):
        ftdata.lint(demo, config=False, select=["FT123"], options={"FT123": {"media_dir": 3}})


def test_a_relative_media_dir_that_is_not_there_names_the_folder_it_was_taken_from(tmp_path: Path) -> None:
    _layout(tmp_path)
    result = run_cli(*LINT, "data/sub/mllm_demo.json", "--option", "FT123.media_dir=media", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert "option 'media_dir' of rule FT123 (media-file-missing) must name a folder: 'data/media' does not exist" in (
        result.stderr
    )


def test_sharded_runs_use_the_dataset_info_folder_like_a_serial_run(tmp_path: Path) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "here.png").write_bytes(b"x")
    (tmp_path / "data" / "sub" / "gone0.png").write_bytes(b"x")  # beside the file: not where it is looked up
    reply = {"role": "assistant", "content": "A cat."}
    rows = [
        {"messages": [{"role": "user", "content": "<image>?"}, reply], "images": ["here.png" if i % 3 else "gone0.png"]}
        for i in range(60)
    ]
    path = tmp_path / "data" / "sub" / "mm.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    info = {"mm": _entry("sub/mm.jsonl", "images")}
    (tmp_path / "data" / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    plan = compile_plan(Settings(select=("FT123",)))
    serial, _ = lint_file(path, plan, jobs=1)
    sharded, _ = lint_file(path, plan, jobs=3, parallel_min_bytes=1)
    assert sorted(sharded, key=lambda f: f.sort_key()) == sorted(serial, key=lambda f: f.sort_key())
    assert [f.index for f in sorted(serial, key=lambda f: f.sort_key())] == list(range(0, 60, 3))
    assert {f.message for f in serial} == {
        f"no file at 'gone0.png' (relative to {str(tmp_path / 'data')!r}, the folder of the dataset_info.json "
        "that names the file)"
    }


@pytest.mark.parametrize("name", ["mllm_audio_demo", "mllm_video_demo", "mllm_video_audio_demo"])
def test_each_command_takes_the_audio_and_video_demos_in_their_layout(tmp_path: Path, name: str) -> None:
    """LLaMA-Factory's `conversations` of OpenAI messages with `audios`/`videos`, beside its
    dataset_info.json entry and (empty stand-ins for) the media: linted, audited,
    deduplicated, split and converted, and the converted file lints as clean."""
    data = tmp_path / "data"
    data.mkdir()
    source = MLLM_MEDIA / f"{name}.json"
    shutil.copy(source, data)
    columns = [c for c in ("videos", "audios") if c in name.replace("video", "videos").replace("audio", "audios")]
    (data / "dataset_info.json").write_text(json.dumps({name: _entry(f"{name}.json", *columns)}), encoding="utf-8")
    records = json.loads(source.read_text(encoding="utf-8"))
    for ref in {ref for r in records for c in columns for ref in r[c]}:
        (data / ref).parent.mkdir(parents=True, exist_ok=True)
        (data / ref).write_bytes(b"")
    file = f"data/{name}.json"
    lint = run_cli("lint", file, "--isolated", "--ignore", "FT200", cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert run_cli("audit", file, cwd=tmp_path).returncode == 0
    dedup = run_cli("dedup", file, "-o", "data/kept.json", cwd=tmp_path)
    assert dedup.returncode == 0, dedup.stdout + dedup.stderr
    assert json.loads((data / "kept.json").read_text(encoding="utf-8")) == records
    split = run_cli("split", file, "-o", "data/split", cwd=tmp_path)
    assert split.returncode == 0, split.stdout + split.stderr
    converted = run_cli("convert", file, "-o", "data/converted.jsonl", "--to", "messages", cwd=tmp_path)
    assert converted.returncode == 0, converted.stdout + converted.stderr
    assert len((data / "converted.jsonl").read_text(encoding="utf-8").splitlines()) == len(records)
    again = run_cli("lint", "data/converted.jsonl", "--isolated", "--ignore", "FT200", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
