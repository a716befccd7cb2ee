"""Bad input never crashes the linter, and no rule crashes on any JSON value."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ftdata
from ftdata import registry

CODES = {r.code for r in registry.all_rules()}
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

chunks = st.sampled_from(
    [
        b"{",
        b"}",
        b"[",
        b"]",
        b'"',
        b":",
        b",",
        b"\n",
        b"\r\n",
        b" ",
        b"\\",
        b"\\u",
        b"d800",
        b"NaN",
        b"\xef\xbb\xbf",
        b"\xff",
        b"\xc3",
        b"1e999",
        b'"messages"',
        b'"role"',
        b'"content"',
        b'"user"',
        b'"assistant"',
        b"null",
        b"true",
        b"12345678901234567890",
    ]
)
raw_bytes = st.one_of(st.binary(max_size=300), st.lists(chunks, max_size=60).map(b"".join))

#: Rules that cannot run without a tokenizer (and say so): not part of these runs.
NEEDS_TOKENIZER = ["FT503", "FT504"]


@SETTINGS
@given(data=raw_bytes, suffix=st.sampled_from([".jsonl", ".json"]))
def test_lint_never_raises_on_arbitrary_bytes(tmp_path_factory, data: bytes, suffix: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"data{suffix}"
    path.write_bytes(data)
    report = ftdata.lint(path, select=["ALL"], ignore=NEEDS_TOKENIZER, config=False)
    n_lines = data.count(b"\n") + 1
    for f in report:
        assert f.code in CODES
        assert f.code != "FT000", f.message
        assert f.line is None or 1 <= f.line <= n_lines, (f, n_lines)
        assert f.column is None or f.column >= 1


KEYS = [
    "messages",
    "role",
    "content",
    "conversations",
    "from",
    "value",
    "instruction",
    "input",
    "output",
    "prompt",
    "completion",
    "tool_calls",
    "tool_call_id",
    "function",
    "name",
    "arguments",
    "id",
    "type",
    "weight",
    "tools",
    "system",
    "history",
    "parameters",
]
VALUES = [
    "system",
    "user",
    "assistant",
    "tool",
    "human",
    "gpt",
    "function_call",
    "observation",
    "",
    " ",
    "N/A",
    "```",
    "{}",
    "[1]",
    "x\u0007",
    "User: hi",
]
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(VALUES),
        st.text(max_size=5),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS), children, max_size=5)
    ),
    max_leaves=30,
)


@SETTINGS
@given(st.lists(json_values, min_size=1, max_size=6))
def test_no_rule_crashes_on_any_json_value(records: list) -> None:
    assume(not all(isinstance(r, str) for r in records))  # a list of strings means paths
    report = ftdata.lint(records, select=["ALL"], ignore=NEEDS_TOKENIZER)
    assert not [f for f in report if f.code == "FT000"], [f.message for f in report if f.code == "FT000"]


@SETTINGS
@given(st.lists(json_values, min_size=1, max_size=6), st.sampled_from([".jsonl", ".json"]))
def test_files_and_memory_agree(tmp_path_factory, records: list, suffix: str) -> None:
    path = tmp_path_factory.mktemp("agree") / f"data{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(records, indent=1))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assume(not all(isinstance(r, str) for r in records))
    from_file = ftdata.lint(path, select=["ALL"], ignore=NEEDS_TOKENIZER, config=False)
    from_memory = ftdata.lint(records, select=["ALL"], ignore=NEEDS_TOKENIZER)
    key = lambda f: (f.code, f.index, f.path, f.related)  # noqa: E731 (messages name lines in files, indices in memory)
    assert sorted(map(key, from_file)) == sorted(map(key, from_memory))


turn = st.dictionaries(
    st.sampled_from(
        [
            "role",
            "content",
            "tool_calls",
            "tool_call_id",
            "weight",
            "name",
            "function_call",
            "from",
            "value",
            "type",
            "text",
        ]
    ),
    json_values,
    max_size=5,
)
shaped = st.one_of(
    st.fixed_dictionaries({"messages": st.lists(turn, max_size=5)}, optional={"tools": json_values}),
    st.fixed_dictionaries(
        {"conversations": st.lists(turn, max_size=5)}, optional={"system": json_values, "tools": json_values}
    ),
    st.fixed_dictionaries(
        {"instruction": json_values, "output": json_values},
        optional={"input": json_values, "history": json_values, "system": json_values},
    ),
    st.fixed_dictionaries(
        {"prompt": st.one_of(json_values, st.lists(turn)), "completion": st.one_of(json_values, st.lists(turn))}
    ),
)


@SETTINGS
@given(
    st.lists(shaped, min_size=1, max_size=5),
    st.sampled_from([None, "messages", "sharegpt", "alpaca", "prompt-completion"]),
)
def test_no_rule_crashes_on_chat_shaped_records(records: list, forced: str | None) -> None:
    for profile in (None, "trl", "together"):
        report = ftdata.lint(records, select=["ALL"], ignore=NEEDS_TOKENIZER, format=forced, profile=profile)
        assert not [f for f in report if f.code == "FT000"], [f.message for f in report if f.code == "FT000"]
