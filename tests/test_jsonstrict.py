"""The strict parser: exact problems and offsets, and locating values by path."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftdata import jsonstrict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1, "a": 2}', [("duplicate-key", 9)]),
        ('{"a": NaN}', [("nan-or-infinity", 6)]),
        ('{"a": -Infinity}', [("nan-or-infinity", 6)]),
        ('{"a": "x\\udc00"}', [("lone-surrogate", 8)]),
        ('{"a": 9007199254740993}', [("unsafe-integer", 6)]),
        ('{"a": [1, 2,]}', [("invalid-json", 12)]),
        ('{"a": 01}', [("invalid-json", 7)]),
        ('{"a": "x\ty"}', [("invalid-json", 8)]),
        ("", [("invalid-json", 0)]),
    ],
)
def test_problems_and_offsets(text: str, expected: list[tuple[str, int]]) -> None:
    result = jsonstrict.parse(text)
    assert [(kind, offset) for kind, offset, _ in result.problems] == expected


def test_deep_nesting_is_reported_without_recursing() -> None:
    text = "[" * 100_000 + "]" * 100_000
    result = jsonstrict.parse(text, max_depth=64)
    assert [k for k, _, _ in result.problems] == ["nesting-too-deep"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@given(json_values, st.booleans(), st.sampled_from([None, 2]))
def test_agrees_with_the_standard_parser(value: object, ascii_only: bool, indent: int | None) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    result = jsonstrict.parse(text)
    assert not result.fatal
    assert result.problems == []
    assert result.value == json.loads(text)


def test_locate_finds_values_and_keys() -> None:
    text = '{"messages": [{"role": "user", "content": "Hi"}, {"role": "x", "content": 1}]}'
    spans = jsonstrict.locate(text, [("messages", 1, "role"), ("messages", 1, "content"), ("nope",)])
    key, start, end = spans[("messages", 1, "role")]
    assert text[key : key + 6] == '"role"'
    assert text[start:end] == '"x"'
    assert text[slice(*spans[("messages", 1, "content")][1:])] == "1"
    assert ("nope",) not in spans
