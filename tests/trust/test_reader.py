"""The reader: problem kinds are typed and bound to rules, no input makes it raise, and a
malformed element of a ``.json`` file costs that element only."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ftdata
from ftdata import io, jsonstrict, registry
from ftdata.problems import Problem
from ftdata.records import Record
from tests.conftest import ROOT, run_cli

EMITTERS = [
    *sorted((ROOT / "ftdata" / "io").glob("*.py")),
    ROOT / "ftdata" / "jsonstrict.py",
    *sorted((ROOT / "ftdata" / "formats").glob("*.py")),
]


def _records(path: Path, parse: str = "strict", **kw: int) -> tuple[list[Record], list[io.FileProblem]]:
    items = list(io.read(path, io.ReadStats(), parse=parse, **kw))
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, io.FileProblem)]


def _codes(report: ftdata.Report) -> list[tuple[str, int | None, int | None, int | None]]:
    return [(f.code, f.line, f.column, f.index) for f in report]


# -- typed problem kinds -----------------------------------------------------------------


def test_every_problem_kind_is_a_reader_rule_and_every_reader_rule_a_kind() -> None:
    source = {r.name for r in registry.all_rules() if r.scope.value == "reader"}
    kinds = {p.value for p in Problem}
    assert kinds == source
    for p in Problem:
        assert registry.get(p.value).scope.value == "reader"
        assert str(p) == f"{p}" == p.value  # prints as the rule name on every Python version


def _literal_rule_names(path: Path) -> list[tuple[int, str]]:
    """String constants that spell a rule name, and problem tuples or FileProblems whose
    kind is a string literal."""
    names = {p.value for p in Problem}
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and node.value in names:
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.Tuple) and len(node.elts) in (3, 4):
            first, *rest = node.elts
            # A tuple of plain strings (file suffixes) is data; a problem carries a message.
            plain = all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in rest)
            if isinstance(first, ast.Constant) and _rule_shaped(first.value) and not plain:
                found.append((node.lineno, f"problem tuple of {first.value!r}"))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "FileProblem":
            kind = node.args[0] if node.args else None
            if isinstance(kind, ast.Constant):
                found.append((node.lineno, f"FileProblem({kind.value!r})"))
    return found


def _rule_shaped(value: object) -> bool:
    return isinstance(value, str) and "-" in value and registry.NAME_RE.match(value) is not None


@pytest.mark.parametrize("path", EMITTERS, ids=lambda p: p.name)
def test_emitters_use_enum_members_not_strings(path: Path) -> None:
    assert sorted(_literal_rule_names(path)) == []


def test_the_scan_would_see_a_string_kind(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('p.append(("invalid-jsn", (), "m", 0))\nq = ("invalid-json", "m")\nFileProblem("x", 1, 1, "m")\n')
    assert sorted(line for line, _ in _literal_rule_names(bad)) == [1, 2, 3]


def test_emitted_kinds_are_members(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": NaN, "a": 1}\r\n\n[1]\n{"messages": [{"role": 5}]}')
    records, problems = _records(path)
    for rec in records:
        if type(rec.data) is dict:
            ftdata.formats.normalise(rec)
    kinds = [p[0] for r in records for p in r.problems] + [p.kind for p in problems]
    assert kinds
    assert all(type(k) is Problem for k in kinds)
    assert {Problem.NAN_OR_INFINITY, Problem.DUPLICATE_KEY, Problem.NOT_AN_OBJECT, Problem.WRONG_TYPE} <= set(kinds)


# -- bad input is a finding ----------------------------------------------------------------

BIG = "9" * 5000
PAIR = {"prompt": "Say hi", "completion": "Hi"}


def test_huge_integer_is_an_unsafe_integer_finding_and_the_file_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    first = f'{{"prompt": "a", "completion": "b", "id": {BIG}}}'
    path.write_text(f'{first}\n{{"prompt": "c", "completion": "d", "id": -{BIG}}}\n')
    column = first.index(BIG) + 1
    report = ftdata.lint(path, config=False, ignore=["FT200"])
    assert _codes(report) == [("FT011", 1, column, 0), ("FT011", 2, column, 1)]
    assert "5,000 digits" in report.findings[0].message
    assert len(report.findings[0].message) < 200  # the number is not echoed whole
    for parse in ("strict", "fast", "none"):
        records, _ = _records(path, parse)
        assert len(records) == 2
    done = run_cli("lint", path.name, "--ignore", "FT200", cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert f"d.jsonl:1:{column}: FT011" in done.stdout
    assert done.returncode in (0, 1)


def test_huge_integer_in_a_json_array(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    first = f'{{"prompt": "a", "completion": "b", "n": {BIG}}}'
    path.write_text(f"[\n{first},\n{json.dumps(PAIR)}\n]\n")
    report = ftdata.lint(path, config=False, ignore=["FT200"])
    assert _codes(report) == [("FT011", 2, first.index(BIG) + 1, 0)]


@pytest.mark.parametrize("max_depth", [64, 500, 5000, 1_000_000])
@pytest.mark.parametrize("shape", ["array", "object"])
def test_deep_nesting_never_recurses(tmp_path: Path, max_depth: int, shape: str) -> None:
    n = 100_000
    deep = "[" * n + "]" * n if shape == "array" else '{"a":' * n + "1" + "}" * n
    path = tmp_path / "d.jsonl"
    path.write_text(f'{{"prompt": "a", "completion": "b", "x": {deep}}}\n{json.dumps(PAIR)}\n')
    records, _ = _records(path, max_depth=max_depth)
    assert len(records) == 2
    kinds = [p[0] for p in records[0].problems]
    assert kinds == ([Problem.NESTING_TOO_DEEP] if max_depth < n else [])
    result = jsonstrict.parse(deep, max_depth=max_depth)
    assert not result.fatal
    assert len(jsonstrict.locate(deep, [("a",) * 3])) == (1 if shape == "object" else 0)


def test_deep_nesting_option_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    head = '{"prompt": "a", "completion": "b", "x": '
    path.write_text(head + "[" * 100_000 + "]" * 100_000 + "}\n")
    done = run_cli("lint", path.name, "--ignore", "FT200", "--option", "FT009.max_depth=500", cwd=tmp_path)
    assert "Traceback" not in done.stderr
    # The outer object is level 1, so the 500th array opens the first level too deep.
    assert f"d.jsonl:1:{len(head) + 500}: FT009 value nested deeper than 500 levels" in done.stdout


def test_lone_surrogate_stays_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    first = '{"prompt": "Nice \\ud83d", "completion": "Thanks"}'
    path.write_text(first + "\n" + json.dumps(PAIR) + "\n")
    report = ftdata.lint(path, config=False, ignore=["FT200"])
    assert _codes(report) == [("FT008", 1, first.index("\\u") + 1, 0)]


def test_invalid_json_messages_are_ftdatas_own() -> None:
    assert jsonstrict.syntax_error('{"a": 1}') is None
    assert jsonstrict.syntax_error('{"a": 1,}') == "trailing comma before '}' at column 9"
    assert jsonstrict.syntax_error('{"a": "b') == "unterminated string at column 7"
    assert jsonstrict.syntax_error('{\n"a" 1}') == "expected ':' after an object key at line 2, column 5"
    assert jsonstrict.syntax_error("") == "unexpected end of data: expected a JSON value at column 1"
    assert jsonstrict.syntax_error("[" * 10_000) is not None


# -- a malformed element costs that element only ----------------------------------------------

BROKEN = {
    "odd-quote": '{"prompt": "x, "completion": "y"}',
    "unclosed": '{"prompt": "x", "completion": "y"',
    "stray-brace": '{"prompt": "x", "completion": "y"}}',
    "stray-bracket": '{"prompt": "x", "completion": "y"}]',
    "bracket-mismatch": '{"prompt": ["x", "completion": "y"}',
    "missing-comma": '{"prompt": "x" "completion": "y"}',
}


def _elements(n: int, bad: int, broken: str, indent: int | None) -> list[str]:
    """``n`` one-line or pretty-printed array elements, the one at ``bad`` replaced."""
    rows = [json.dumps({"prompt": f"question {i}", "completion": f"answer {i}"}, indent=indent) for i in range(n)]
    if indent:
        rows = ["\n".join("  " + line for line in row.splitlines()) for row in rows]
        broken = "  " + broken
    rows[bad] = broken
    return rows


@pytest.mark.parametrize("broken", BROKEN, ids=str)
@pytest.mark.parametrize("layout", ["one-per-line", "pretty", "minified"])
def test_a_broken_array_element_costs_that_element_only(tmp_path: Path, broken: str, layout: str) -> None:
    n, bad = 1000, 10
    indent = 2 if layout == "pretty" else None
    rows = _elements(n, bad, BROKEN[broken], indent)
    text = "[" + ",".join(rows) + "]" if layout == "minified" else "[\n" + ",\n".join(rows) + "\n]\n"
    path = tmp_path / "d.json"
    path.write_text(text)
    for parse in ("strict", "fast", "none"):
        records, problems = _records(path, parse)
        assert problems == []
        assert [r.index for r in records] == list(range(n))
        # Each element is read with its own bytes, the broken one included.
        assert [r.raw for r in records] == [row.strip().encode() for row in rows]
        _assert_positions(text.encode(), records)
    records, _ = _records(path)
    assert records[bad].data is None
    assert [p[0] for p in records[bad].problems] == [Problem.INVALID_JSON]
    assert all(r.data == json.loads(r.raw) for r in records if r.index != bad)

    report = ftdata.lint(path, config=False, ignore=["FT200"])
    assert [(f.code, f.index) for f in report] == [("FT001", bad)]
    assert report.findings[0].line == records[bad].line + records[bad].raw.decode().count(
        "\n", 0, _error_offset(records[bad])
    )


def _assert_positions(blob: bytes, records: list[Record]) -> None:
    """Each record's line and column are where its bytes are in the file."""
    for r in records:
        assert r.offset is not None
        assert blob[r.offset :].startswith(r.raw or b"")
        line_start = blob.rfind(b"\n", 0, r.offset) + 1
        assert (r.line, r.column) == (blob.count(b"\n", 0, r.offset) + 1, r.offset - line_start + 1)


def _error_offset(rec: Record) -> int:
    return next(p[3] for p in rec.problems if p[0] is Problem.INVALID_JSON)


def test_several_broken_elements_in_a_row(tmp_path: Path) -> None:
    rows = [json.dumps({"prompt": f"q{i}", "completion": "a"}) for i in range(20)]
    rows[3], rows[4], rows[5] = BROKEN["odd-quote"], BROKEN["unclosed"], BROKEN["stray-brace"]
    rows[19] = BROKEN["unclosed"]
    path = tmp_path / "d.json"
    path.write_text("[\n" + ",\n".join(rows) + "\n]\n")
    records, problems = _records(path)
    assert [r.line for r in records] == list(range(2, 22))
    assert [r.index for r in records if r.data is None] == [3, 4, 5, 19]
    # The last object never closes, so the final ']' is read as its end.
    assert [p.message for p in problems] == ["unexpected end of file: the JSON array is not closed"]


def test_an_unclosed_array_still_reports_its_end(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text("[\n" + json.dumps(PAIR) + ",\n" + BROKEN["odd-quote"] + ",\n" + json.dumps(PAIR) + "\n")
    records, problems = _records(path)
    assert [r.data is None for r in records] == [False, True, False]
    assert [p.message for p in problems] == ["unexpected end of file: the JSON array is not closed"]


def test_a_nested_object_is_not_taken_for_the_next_record(tmp_path: Path) -> None:
    inner = '{"messages": [{"role": "user" "content": "Hi"}, {"role": "assistant", "content": "x"}]}'
    path = tmp_path / "d.json"
    path.write_text("[\n" + inner + ",\n" + json.dumps(PAIR) + "\n]\n")
    records, problems = _records(path)
    assert [(r.index, r.line, r.data is None) for r in records] == [(0, 2, True), (1, 3, False)]
    assert problems == []


@pytest.mark.parametrize("broken", ["odd-quote", "unclosed", "bracket-mismatch"])
def test_a_broken_object_in_a_pretty_printed_stream(tmp_path: Path, broken: str) -> None:
    rows = [json.dumps({"prompt": f"q{i}", "completion": "a"}, indent=2) for i in range(6)]
    rows[2] = BROKEN[broken]
    path = tmp_path / "d.json"
    text = "\n".join(rows) + "\n"
    path.write_text(text)
    records, problems = _records(path)
    assert problems == []
    assert [r.raw for r in records] == [row.encode() for row in rows]
    _assert_positions(text.encode(), records)
    assert [r.index for r in records if r.data is None] == [2]


# -- fuzz -------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
pieces = st.sampled_from(
    [b"{", b"}", b"[", b"]", b'"', b":", b",", b" ", b"\\", b"\\ud800", b"NaN", b"\xff", b"\xc3", b"1e999",
     b"9" * 4400, b'"prompt"', b'"completion"', b'"x"', b"null", b"\r"]
)  # fmt: skip
lines = st.lists(st.one_of(st.binary(max_size=80), st.lists(pieces, max_size=30).map(b"".join)), max_size=12)


@FUZZ
@given(rows=lines)
def test_arbitrary_lines_never_raise_and_each_yields_something(tmp_path_factory, rows: list[bytes]) -> None:
    rows = [r.replace(b"\n", b" ") for r in rows]
    path = tmp_path_factory.mktemp("fuzz") / "d.jsonl"
    path.write_bytes(b"\n".join(rows))
    for parse in ("strict", "fast"):
        records, problems = _records(path, parse)
        seen = {r.line for r in records} | {p.line for p in problems if p.kind is Problem.BLANK_LINE}
        for lineno, row in enumerate(rows, 1):
            if row.removeprefix(io.BOM if lineno == 1 else b"").strip(b" \t\r\n\f\v"):
                assert lineno in seen, (lineno, row)
        for rec in records:
            assert rec.data is not None or rec.problems, rec.raw


@FUZZ
@given(rows=lines)
def test_arbitrary_json_files_never_raise(tmp_path_factory, rows: list[bytes]) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "d.json"
    path.write_bytes(b"[" + b",\n".join(rows))
    counts = set()
    for parse in ("strict", "fast", "none"):
        records, _ = _records(path, parse)
        counts.add(tuple(r.offset for r in records))
    assert len(counts) == 1  # where elements split does not depend on how they are parsed
