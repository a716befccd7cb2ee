"""The readers: line and column of every problem, JSON arrays, huge lines, atomic writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftdata
from ftdata import io
from ftdata.records import Record


def _read(path: Path) -> tuple[list[Record], list[io.FileProblem], io.ReadStats]:
    stats = io.ReadStats()
    items = list(io.read(path, stats))
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, io.FileProblem)], stats


def test_jsonl_records_carry_line_offset_and_raw(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [b'{"prompt": "a", "completion": "b"}', b"", b'{"prompt": "\xc3\xa9", "completion": "c"}']
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines))
    records, problems, stats = _read(path)
    assert [(r.index, r.line) for r in records] == [(0, 1), (1, 3)]
    assert [(p.kind, p.line) for p in problems] == [("utf8-bom", 1), ("blank-line", 2)]
    data = path.read_bytes()
    for r in records:
        assert data[r.offset : r.offset + len(r.raw)] == r.raw
    assert stats.missing_final_newline
    assert (stats.lines, stats.records) == (3, 2)


def test_json_array_records_get_their_own_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    records = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}]
    path.write_text("[\n  " + ",\n  ".join(json.dumps(r) for r in records) + "\n]\n")
    read, problems, stats = _read(path)
    assert not problems
    assert [(r.line, r.column, r.data) for r in read] == [(2, 3, records[0]), (3, 3, records[1])]
    assert stats.container == "json-array"


def test_json_array_structure_problems(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[{"prompt": "a", "completion": "b"},\n {"prompt": "c", "completion": "d"},\n]\n')
    report = ftdata.lint(path, config=False, ignore=["FT200"])
    assert [(f.code, f.line, f.message) for f in report] == [("FT001", 3, "trailing comma before ']'")]
    path.write_text('[{"prompt": "a", "completion": "b"}')
    report = ftdata.lint(path, config=False, ignore=["FT200"])
    assert [(f.code, f.message) for f in report] == [("FT001", "unexpected end of file: the JSON array is not closed")]
    path.write_text('[{"prompt": "a", "completion": "b"}] extra')
    report = ftdata.lint(path, config=False, ignore=["FT200"])
    assert [(f.code, f.line, f.column) for f in report] == [("FT001", 1, 38)]


def test_json_lines_in_a_json_file_are_read_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.json"  # what `Dataset.to_json` writes
    path.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n')
    records, _, stats = _read(path)
    assert len(records) == 2
    assert stats.container == "jsonl"


def test_a_jsonl_file_holding_an_array_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('[\n{"prompt": "a", "completion": "b"}\n]\n')
    report = ftdata.lint(path, config=False, select=["FT001"])
    assert "name it .json" in report.findings[0].message


def test_a_huge_line_is_skipped_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    small = b'{"prompt": "a", "completion": "b"}\n'
    path.write_bytes(small + b'{"prompt": "' + b"x" * 5000 + b'", "completion": "b"}\n' + small)
    report = ftdata.lint(path, config=False, select=["FT010"], options={"FT010": {"max_bytes": 1000}})
    assert [(f.line, f.index) for f in report] == [(2, 1)]
    assert report.sources[0].records == 3


def test_every_strict_problem_has_a_column(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        b'{"a": 1, "a": 2, "prompt": "x", "completion": "y"}\n'
        b'{"prompt": "\\ud800", "completion": "y"}\n'
        b'{"prompt": "x", "completion": "y", "n": 18446744073709551616}\n'
        b'{"prompt": "caf\xe9", "completion": "y"}\n'
    )
    report = ftdata.lint(path, config=False, select=["FT0"])
    assert [(f.code, f.line, f.column) for f in report] == [
        ("FT007", 1, 10),
        ("FT008", 2, 13),
        ("FT011", 3, 41),
        ("FT002", 4, 16),
    ]


def test_atomic_write_replaces_and_keeps_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    with io.atomic_write(target) as f:
        f.write(b"new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_atomic_write_leaves_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")

    def interrupted() -> None:
        with io.atomic_write(target) as f:
            f.write(b"partial")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted()
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


_texts = st.text(alphabet=st.sampled_from(["a", '"', "\\", ":", " ", "é", "\n", "}"]), max_size=6)


@st.composite
def _objects(draw: st.DrawFn, depth: int = 0) -> str:
    """JSON object text, possibly with duplicate keys, written tight or loose."""
    keys = draw(st.lists(st.sampled_from(["a", "b", 'c"', "d\\", "e:"]), max_size=4))
    colon = draw(st.sampled_from([":", ": ", " :", " : "]))
    comma = draw(st.sampled_from([",", ", "]))
    members = []
    for key in keys:
        if depth < 2 and draw(st.booleans()):
            value = draw(_objects(depth + 1))
        else:
            value = json.dumps(draw(_texts), ensure_ascii=draw(st.booleans()))
        members.append(json.dumps(key) + colon + value)
    return "{" + comma.join(members) + "}"


def _has_duplicates(text: str) -> bool:
    found = False

    def hook(pairs: list[tuple[str, object]]) -> dict:
        nonlocal found
        found = found or len({k for k, _ in pairs}) != len(pairs)
        return dict(pairs)

    json.loads(text, object_pairs_hook=hook)
    return found


@given(_objects())
def test_duplicate_keys_are_found_exactly(text: str) -> None:
    _, problems = io.parse_record(text.encode())
    assert any(kind == "duplicate-key" for kind, *_ in problems) == _has_duplicates(text)


def test_pretty_printed_objects_in_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    one = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}
    two = {"conversations": [{"from": "human", "value": "Bye"}, {"from": "Gpt", "value": "Bye!"}]}
    path.write_text(json.dumps(one, indent=2) + "\n" + json.dumps(two, indent=2) + "\n")
    records, _, stats = _read(path)
    assert stats.container == "json-stream"
    assert [(r.line, r.data) for r in records] == [(1, one), (13, two)]
    report = ftdata.lint(path, config=False, ignore=["FT200"])
    assert [(f.code, f.line, f.column) for f in report] == [("FT109", 14, 20), ("FT107", 20, 15)]
    path.write_text(json.dumps(one, indent=2) + "\nstray\n" + json.dumps(two, indent=2))
    report = ftdata.lint(path, config=False, select=["FT001"])
    assert [(f.line, f.message) for f in report] == [(13, "unexpected data between records")]


def _io_names_used(path: Path) -> set[str]:
    """Names a module takes from ``ftdata.io``: ``from ftdata.io import X`` and, where
    ``from ftdata import io`` binds the name ``io``, every ``io.X``."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    used: set[str] = set()
    binds_io = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "ftdata.io":
            used |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "ftdata":
            binds_io |= any(a.name == "io" and a.asname is None for a in node.names)
        elif isinstance(node, ast.Import) and any(a.name == "io" for a in node.names):
            return used  # the standard io in the same file: its attributes are not ours
    if binds_io:
        used |= {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "io"
        }
    return used


def test_every_name_taken_from_ftdata_io_is_exported_by_the_package() -> None:
    root = Path(__file__).resolve().parents[1]
    files = [p for d in ("ftdata", "ftdata_train", "tests", "benchmarks", "scripts") for p in (root / d).rglob("*.py")]
    used = {name: path for path in files for name in _io_names_used(path)}
    assert {"read", "ReadStats", "FileProblem", "atomic_write", "iter_data_files"} <= set(used)
    missing = {f"{used[n].relative_to(root)}: io.{n}" for n in used if n not in io.__all__ and not n.startswith("__")}
    assert missing == set()
    for name in io.__all__:
        module = getattr(io, name).__module__ if callable(getattr(io, name)) else None
        assert module is None or module.startswith("ftdata.io"), name
