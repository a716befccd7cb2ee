"""--fix touches only UTF-8 JSON Lines / JSON, is a fixed point on every line-ending mix,
never loses a record and never raises; its fixes are exactly the fixable rules."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftdata import registry
from ftdata.curation.fix import FIXABLE, FIXERS, fix_bytes, fix_file, unfixable, write_fix
from tests.conftest import run_cli

RECORD = {"messages": [{"role": " user", "content": "e\u0301 hi"}, {"role": "assistant ", "content": "ok"}]}
LINE = json.dumps(RECORD, ensure_ascii=False)


def test_every_fixable_rule_has_a_fixer_and_every_fixer_a_fixable_rule() -> None:
    fixable = {r.name for r in registry.all_rules() if r.fixable}
    assert fixable == set(FIXERS)
    assert fixable == FIXABLE


def _encoded() -> dict[str, bytes]:
    text = LINE + "\r\n" + LINE + "\n\n"
    return {
        "gzip.jsonl": gzip.compress(text.encode()),
        "utf16.jsonl": text.encode("utf-16"),
        "utf16-be-no-bom.jsonl": text.encode("utf-16-be"),
        "utf32.jsonl": text.encode("utf-32"),
        "latin1.jsonl": (LINE.replace("e\u0301", "caf\u00e9") + "\r\n").encode("latin-1"),
        "gzip.json": gzip.compress(("[" + LINE + "]").encode()),
        "utf16.json": ("[" + LINE + "]\r\n").encode("utf-16"),
    }


@pytest.mark.parametrize("name", sorted(_encoded()))
def test_files_that_are_not_utf8_are_left_byte_for_byte(tmp_path: Path, name: str) -> None:
    data = _encoded()[name]
    path = tmp_path / name
    path.write_bytes(data)
    result = fix_file(path)
    assert result.skipped
    assert not result.changed
    assert result.message.startswith(f"{path}: not fixed: ")
    write_fix(result)
    assert path.read_bytes() == data
    assert fix_bytes(data, container="json-array" if name.endswith(".json") else "jsonl")[0] == data
    lint = run_cli("lint", "--isolated", "--fix", path)
    assert path.read_bytes() == data, lint.stderr
    assert lint.returncode in (1, 2), lint.stdout  # the lint findings say what is wrong
    assert "Traceback" not in lint.stderr


def test_a_utf8_file_is_fixed() -> None:
    data = ("\ufeff" + LINE + "\r\n\r\n" + LINE).encode()
    assert unfixable(data) is None
    fixed, applied = fix_bytes(data)
    assert fixed.split(b"\n")[:-1] == [fixed.split(b"\n")[0]] * 2
    assert set(applied) == set(FIXERS)
    assert json.loads(fixed.split(b"\n")[0])["messages"][0]["role"] == "user"


def test_duplicate_messages_key_with_a_non_string_role_does_not_crash(tmp_path: Path) -> None:
    raw = b'{"messages": [{"role": 5, "content": "a"}], "messages": [{"role": " user ", "content": "b"}]}\n'
    assert fix_bytes(raw)[0] == raw  # which copy a trainer reads is not certain: untouched
    path = tmp_path / "dup.jsonl"
    path.write_bytes(raw)
    result = run_cli("lint", "--isolated", "--fix", path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert path.read_bytes() == raw


good_lines = st.sampled_from(
    [
        LINE,
        json.dumps(RECORD),
        '{"messages": [{"role": "user", "content": "plain"}, {"role": "assistant", "content": "x"}]}',
        '{"conversations": [{"from": " human", "value": "A\u030a"}, {"from": "gpt", "value": "y"}]}',
        '{"messages": [{"role": 5, "content": "a"}], "messages": [{"role": " user ", "content": "b"}]}',
    ]
)
other_lines = st.one_of(
    st.sampled_from(["", " ", "\t", "\ufeff", "not json", "[1, 2]", '{"a": NaN}', '{"x": "\\ud800"}']),
    st.text(alphabet='{}[]":, \tab\u0301\ufeff\r', max_size=12),
)
endings = st.sampled_from(["\n", "\r\n", "\r", "\r\r\n", "\n\r", "\r\n\r\n"])


@st.composite
def line_mixes(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        parts.append(draw(st.one_of(good_lines, other_lines)))
        parts.append(draw(endings))
    if parts and draw(st.booleans()):
        parts.pop()  # no final line ending
    data = "".join(parts).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" * draw(st.integers(1, 2)) + data
    return data


def _records(data: bytes) -> list[object]:
    """The records of a JSON Lines file: the parsed value of each non-blank line, or its
    bytes when it is not JSON."""
    out: list[object] = []
    while data.startswith(b"\xef\xbb\xbf"):  # byte order marks at the start are not data
        data = data[3:]
    for line in data.split(b"\n"):
        body = line.rstrip(b"\r")
        if not body.strip():
            continue
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            out.append(body.strip())
            continue
        out.append(value)
    return out


def _comparable(value: object) -> object:
    import unicodedata

    if isinstance(value, str):
        return unicodedata.normalize("NFC", value).strip()
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.replace(b"\r", b"")
    return value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line_mixes())
def test_fix_is_a_fixed_point_and_keeps_every_record(data: bytes) -> None:
    fixed, _ = fix_bytes(data)
    again, applied_again = fix_bytes(fixed)
    assert again == fixed
    assert not applied_again
    before, after = _records(data), _records(fixed)
    assert len(after) == len(before)
    assert [_comparable(v) for v in after] == [_comparable(v) for v in before]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["jsonl", "json-array", "json-stream"]))
def test_fix_never_raises_on_any_bytes(data: bytes, container: str) -> None:
    fixed, _ = fix_bytes(data, container=container)
    if unfixable(data) is not None:
        assert fixed == data
    assert fix_bytes(fixed, container=container)[0] == fixed


@pytest.mark.parametrize("ending", [b"\r", b"\r\n", b"\r\r\n", b"\n"])
def test_lint_fix_twice_changes_nothing_the_second_time(tmp_path: Path, ending: bytes) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(ending.join([LINE.encode()] * 3))
    first = run_cli("lint", "--isolated", "--fix", path)
    assert "Traceback" not in first.stderr
    once = path.read_bytes()
    run_cli("lint", "--isolated", "--fix", path)
    assert path.read_bytes() == once
    assert len(_records(once)) == len(_records(ending.join([LINE.encode()] * 3)))
