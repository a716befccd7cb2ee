"""An output's name says its layout: a ``.jsonl``/``.ndjson`` file holds JSON Lines and a
``.json`` file one JSON array. Commands that copy records byte for byte (dedup) refuse a
name of the other layout before writing anything; convert, which writes records anew,
follows the name; split names its files itself; a fix keeps the file's layout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftdata
from ftdata.outputs import OutputError, check_layout, layout_named
from tests.conftest import ROOT

ARRAY = ROOT / "tests" / "data" / "real" / "llamafactory-0.9.5" / "alpaca_en_demo.json"
LINES = ROOT / "tests" / "data" / "layouts" / "mlx_examples_lora_train.jsonl"


def ftdata_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftdata", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def copy(source: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    return Path(shutil.copy(source, folder / source.name))


def json_lines(path: Path) -> list[object]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(
    ("source", "name", "held", "suggested"),
    [
        (ARRAY, "kept.jsonl", "is one JSON array", "kept.json"),
        (ARRAY, "kept.NDJSON", "is one JSON array", "kept.json"),
        (LINES, "kept.json", "is JSON Lines", "kept.jsonl"),
    ],
)
def test_dedup_refuses_an_output_named_for_the_other_layout(
    tmp_path: Path, source: Path, name: str, held: str, suggested: str
) -> None:
    data = copy(source, tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    proc = ftdata_cli("dedup", data, "-o", out / name, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"the input {data} {held}" in proc.stderr
    assert f"name the output {out / suggested}" in proc.stderr
    assert list(out.iterdir()) == []
    # The name it suggests is taken.
    proc = ftdata_cli("dedup", data, "-o", out / suggested, "-q", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    assert (out / suggested).read_bytes()


def test_dedup_writes_each_layout_under_its_own_name(tmp_path: Path) -> None:
    array = copy(ARRAY, tmp_path / "in")
    lines = copy(LINES, tmp_path / "in")
    assert ftdata_cli("dedup", array, "-o", tmp_path / "a.json", "-q", cwd=tmp_path).returncode == 0
    kept = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert type(kept) is list
    assert kept
    assert all(type(r) is dict for r in kept)
    assert ftdata_cli("dedup", lines, "-o", tmp_path / "l.ndjson", "-q", cwd=tmp_path).returncode == 0
    rows = json_lines(tmp_path / "l.ndjson")
    assert rows
    assert all(type(r) is dict for r in rows)
    # A name that promises no layout is the user's choice.
    assert ftdata_cli("dedup", array, "-o", tmp_path / "a.out", "-q", cwd=tmp_path).returncode == 0
    assert (tmp_path / "a.out").read_bytes() == (tmp_path / "a.json").read_bytes()


def test_the_library_dedup_refuses_before_writing(tmp_path: Path) -> None:
    data = copy(ARRAY, tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputError, match="name the output"):
        ftdata.dedup(data, out / "kept.jsonl")
    assert list(out.iterdir()) == []


def test_convert_follows_the_output_name(tmp_path: Path) -> None:
    array = copy(ARRAY, tmp_path / "in")
    lines = copy(LINES, tmp_path / "in")
    proc = ftdata_cli("convert", array, "-o", tmp_path / "c.jsonl", "--to", "messages", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json_lines(tmp_path / "c.jsonl")
    assert len(rows) == len(json.loads(array.read_text(encoding="utf-8")))
    assert all(type(r) is dict and "messages" in r for r in rows)
    proc = ftdata_cli("convert", lines, "-o", tmp_path / "c.json", "--to", "text", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    converted = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert type(converted) is list
    assert len(converted) == len(json_lines(lines))


def test_split_names_its_files_for_the_layout_they_hold(tmp_path: Path) -> None:
    for source, suffix in ((ARRAY, ".json"), (LINES, ".jsonl")):
        data = copy(source, tmp_path / "in")
        out = tmp_path / f"split{suffix}"
        proc = ftdata_cli("split", data, "-o", out, "-q", cwd=tmp_path)
        assert proc.returncode in (0, 1), proc.stderr
        files = sorted(p for p in out.iterdir() if p.name in (f"train{suffix}", f"eval{suffix}"))
        assert [p.name for p in files] == [f"eval{suffix}", f"train{suffix}"]
        for path in files:
            if suffix == ".json":
                assert type(json.loads(path.read_text(encoding="utf-8"))) is list
            else:
                assert all(type(r) is dict for r in json_lines(path))


def test_a_fix_keeps_a_json_array_an_array(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_bytes(b"\xef\xbb\xbf" + ARRAY.read_bytes().replace(b"\n", b"\r\n"))
    proc = ftdata_cli("lint", data, "--fix", "-q", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    fixed = data.read_bytes()
    assert not fixed.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" not in fixed
    assert json.loads(fixed) == json.loads(ARRAY.read_bytes())


@given(
    stem=st.sampled_from(["kept", "a.b", "x-y"]),
    suffix=st.sampled_from([".jsonl", ".JSONL", ".ndjson", ".json", ".Json", ".txt", ""]),
    container=st.sampled_from(["jsonl", "json-array", "json-stream"]),
)
def test_a_refused_name_comes_with_one_that_is_taken(stem: str, suffix: str, container: str) -> None:
    name = Path(f"{stem}{suffix}")
    written = "jsonl" if container == "jsonl" else "json"
    try:
        check_layout(name, container, source="data")
    except OutputError as e:
        assert layout_named(name) not in (None, written)
        suggested = str(e).rsplit("name the output ", 1)[1]
        assert layout_named(suggested) == written
        check_layout(suggested, container, source="data")
    else:
        assert layout_named(name) in (None, written)
