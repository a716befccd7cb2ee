"""convert: every record ends in the output or the rejects, outputs are byte-stable and
golden, messages -> messages is the identity on content, messages -> prompt-completion ->
messages keeps the turns, and converting LLaMA-Factory's own files adds no finding."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ftdata
from ftdata.curation.convert import convert
from ftdata.outputs import OutputError
from tests.conftest import GOLDEN_DIR, check_golden, run_cli
from tests.conftest import REAL as TESTS_REAL

GOLDEN = GOLDEN_DIR / "convert"
SOURCE = GOLDEN / "source.jsonl"
TARGETS = ("messages", "prompt-completion", "preference", "text")
REAL = TESTS_REAL
LAYOUTS = TESTS_REAL
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _lines(path: Path) -> list[Any]:
    # split on newlines only: U+0085 and U+2028 are allowed raw inside JSON strings
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


# --- golden output of the CLI --------------------------------------------------------


@pytest.mark.parametrize("to", TARGETS)
def test_cli_outputs_golden(tmp_path: Path, to: str) -> None:
    shutil.copy(SOURCE, tmp_path / "source.jsonl")
    (tmp_path / "out").mkdir()
    result = run_cli("convert", "source.jsonl", "-o", f"out/{to}.jsonl", "--to", to, cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # the fixture holds records no shape can take
    assert result.stdout == ""
    assert "could not be converted" in result.stderr
    out, rejects = tmp_path / "out" / f"{to}.jsonl", tmp_path / "out" / f"{to}.rejected.jsonl"
    check_golden(GOLDEN / f"{to}.jsonl", out.read_text(encoding="utf-8"))
    check_golden(GOLDEN / f"{to}.rejected.jsonl", rejects.read_text(encoding="utf-8"))
    manifest = json.loads((tmp_path / "out" / f"{to}.manifest.json").read_text())
    source_lines = SOURCE.read_bytes().split(b"\n")[:-1]
    assert manifest["schema"] == "ftdata.manifest/1"
    assert manifest["command"] == "convert"
    assert manifest["inputs"] == [
        {
            "path": "source.jsonl",
            "size": SOURCE.stat().st_size,
            "sha256": hashlib.sha256(SOURCE.read_bytes()).hexdigest(),
            "records": len(source_lines),
        }
    ]
    counts = manifest["counts"]
    assert counts["converted"] + counts["rejected"] == counts["records"] == len(source_lines)
    assert counts["converted"] == len(_lines(out)) == manifest["outputs"]["converted"]["records"]
    assert sum(counts["reasons"].values()) == counts["rejected"] == len(_lines(rejects))
    assert manifest["formats"]["out"] == to
    assert sum(manifest["formats"]["in"].values()) == len(source_lines)
    assert manifest["options"]["to"] == to
    # each reject holds its record's exact bytes and line
    for entry in _lines(rejects):
        assert entry["raw"].encode() == source_lines[entry["line"] - 1]


def test_golden_messages_carry_system_tools_calls_and_weights() -> None:
    rows = _lines(GOLDEN / "messages.jsonl")
    alpaca, sharegpt, openai, typed = rows[:4]
    assert alpaca["messages"][0] == {"role": "system", "content": "You do arithmetic."}
    assert alpaca["messages"][3]["content"] == "Add the numbers.\n2 and 2"
    assert alpaca["id"] == "a1"
    call = sharegpt["messages"][2]["tool_calls"][0]
    assert call == {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    assert sharegpt["messages"][3] == {"role": "tool", "content": '{"temp": 21}', "name": "get_weather"}
    assert sharegpt["messages"][4]["weight"] == 1
    assert sharegpt["tools"][0]["type"] == "function"
    assert sharegpt["tools"][0]["function"]["name"] == "get_weather"
    assert openai["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Rome"}
    assert typed["messages"][1]["reasoning_content"] == "pi r squared"
    assert typed["messages"][1]["tool_calls"][0]["function"]["name"] == "circle_area"
    assert [m.get("loss_weight") for m in typed["messages"]] == [0.0, 1.0, None, 1.0]


def test_the_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        convert(SOURCE, tmp_path / run / "out.jsonl", to="messages")
    for name in ("out.jsonl", "out.rejected.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_json_output_is_an_array(tmp_path: Path) -> None:
    result = convert(SOURCE, tmp_path / "out.json", to="messages")
    rows = json.loads((tmp_path / "out.json").read_text())
    assert rows == _lines(GOLDEN / "messages.jsonl")
    assert result.converted == len(rows)
    empty = convert(SOURCE, tmp_path / "none.json", to="text", format="messages")
    assert empty.converted == 0
    assert json.loads((tmp_path / "none.json").read_text()) == []


def test_cli_errors_are_usage_errors(tmp_path: Path) -> None:
    shutil.copy(SOURCE, tmp_path / "source.jsonl")
    before = (tmp_path / "source.jsonl").read_bytes()
    same = run_cli("convert", "source.jsonl", "-o", "source.jsonl", "--to", "messages", cwd=tmp_path)
    assert same.returncode == 2
    assert "refusing to overwrite" in same.stderr
    assert (tmp_path / "source.jsonl").read_bytes() == before
    (tmp_path / "other").mkdir()
    apart = run_cli(
        "convert", "source.jsonl", "-o", "out.jsonl", "--to", "messages", "--rejects", "other/r.jsonl", cwd=tmp_path
    )
    assert apart.returncode == 2
    assert "must be in the folder of the output" in apart.stderr
    no_target = run_cli("convert", "source.jsonl", "-o", "out.jsonl", cwd=tmp_path)
    assert no_target.returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "source.jsonl"]


def test_cli_named_rejects_and_a_clean_run(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"prompt": "Hi", "completion": "Hello"}\n', encoding="utf-8")
    result = run_cli(
        "convert", "in.jsonl", "-o", "out.jsonl", "--to", "messages", "--rejects", "bad.jsonl", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Converted 1 of 1 record" in result.stderr
    assert (tmp_path / "bad.jsonl").read_bytes() == b""
    assert _lines(tmp_path / "out.jsonl") == [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    ]
    quiet = run_cli("convert", "in.jsonl", "-o", "q.jsonl", "--to", "messages", "-q", cwd=tmp_path)
    assert quiet.returncode == 0
    assert quiet.stderr == ""


def test_cli_map_reads_the_files_own_keys(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"question": "2+2?", "answer": "4"}\n', encoding="utf-8")
    result = run_cli(
        "convert", "in.jsonl", "-o", "out.jsonl", "--to", "prompt-completion", "--map", "question=prompt,answer=completion",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _lines(tmp_path / "out.jsonl") == [
        {"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "4"}]}
    ]
    library = convert([{"q": "2+2?", "a": "4"}], to="messages", fields={"q": "prompt", "a": "completion"})
    assert library.rows == [{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}]


# --- the library in memory ------------------------------------------------------------


def test_in_memory_rows_and_reasons() -> None:
    rows = [
        {"instruction": "Hi", "output": "Hello"},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        {"text": "plain"},
        {"chosen": "The sky is blue.", "rejected": "The sky is green."},
        {"conversations": [{"from": "human", "value": "x"}, {"from": "function_call", "value": "not json"}]},
        {"chosen": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "1"}],
         "rejected": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "2"}]},
        "not an object",
    ]  # fmt: skip
    result = ftdata.convert(rows, to="messages")
    assert result.rows[0] == result.rows[1]
    assert [(r.index, r.reason, r.rule) for r in result.rejected] == [
        (2, "no-turns", None),
        (3, "type-mismatch", None),
        (4, "unconvertible-tool-call", "FT116"),
        (5, "type-mismatch", None),
        (6, "unreadable", None),
    ]
    pairs = ftdata.convert(rows[3:6], to="preference")
    assert [(r.index, r.reason) for r in pairs.rejected] == [
        (0, "no-prompt"),
        (1, "not-preference"),
        (2, "prompt-mismatch"),
    ]
    with pytest.raises(ValueError, match="unknown target"):
        convert(rows, to="chat")
    with pytest.raises(ValueError, match="needs a file"):
        convert(rows, "out.jsonl", to="messages")


def test_a_rejects_file_elsewhere_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(OutputError):
        convert(SOURCE, tmp_path / "out.jsonl", to="messages", rejects=tmp_path / "elsewhere" / "r.jsonl")


# --- properties -----------------------------------------------------------------------

TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
CALL = st.builds(
    lambda name, value: {"type": "function", "function": {"name": name, "arguments": {"x": value}}},
    st.sampled_from(["lookup", "add"]),
    st.integers(-5, 5),
)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A conversation that ends with an assistant reply after a prompt, maybe with calls."""
    out: list[dict[str, Any]] = []
    if draw(st.booleans()):
        out.append({"role": "system", "content": draw(TEXTS)})
    for _ in range(draw(st.integers(1, 3))):
        out.append({"role": "user", "content": draw(TEXTS)})
        if draw(st.booleans()):
            call = draw(CALL)
            out.append({"role": "assistant", "tool_calls": [call]})
            out.append({"role": "tool", "content": draw(TEXTS), "name": call["function"]["name"]})
        out.append({"role": "assistant", "content": draw(TEXTS)})
    return out


ANY_RECORD = st.one_of(
    st.builds(lambda m: {"messages": m}, conversations()),
    st.builds(lambda i, o: {"instruction": i, "input": "", "output": o}, TEXTS, TEXTS),
    st.builds(lambda p, c, r: {"prompt": p, "chosen": c, "rejected": r}, TEXTS, TEXTS, TEXTS),
    st.builds(lambda m, b: {"messages": m, "label": b}, conversations(), st.booleans()),
    st.builds(lambda t: {"text": t}, TEXTS),
    st.builds(lambda t: {"messages": [{"role": "user", "content": t}]}, TEXTS),
    st.builds(lambda k: {k: 1}, st.sampled_from(["question", "chosen", "messages", "conversations"])),
    st.just("[1, 2]"),
    st.just('{"messages": [oops]}'),
)


def _line(record: Any) -> bytes:
    return (record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)).encode()


@SETTINGS
@given(records=st.lists(ANY_RECORD, min_size=1, max_size=15), to=st.sampled_from(TARGETS))
def test_every_record_ends_in_the_output_or_the_rejects(
    tmp_path_factory: pytest.TempPathFactory, records: list[Any], to: str
) -> None:
    folder = tmp_path_factory.mktemp("convert")
    lines = [_line(r) for r in records]
    (folder / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    result = convert(folder / "in.jsonl", folder / "out.jsonl", to=to)
    rejected = _lines(folder / "out.rejected.jsonl")
    written = _lines(folder / "out.jsonl")
    assert result.records == len(records)
    assert result.converted == len(written)
    assert len(written) + len(rejected) == len(records)
    assert [r["index"] for r in rejected] == sorted({r.index for r in result.rejected})
    assert all(lines[r["index"]] == r["raw"].encode() for r in rejected)
    # whatever was written is read back as the shape it was written as, and never rejected again
    again = convert(written, to=to)
    assert again.rejected == []
    assert again.rows == written


@SETTINGS
@given(convos=st.lists(conversations(), min_size=1, max_size=8))
def test_messages_to_messages_is_the_identity(tmp_path_factory: pytest.TempPathFactory, convos: list[Any]) -> None:
    folder = tmp_path_factory.mktemp("identity")
    source = b"".join(json.dumps({"messages": c}).encode() + b"\n" for c in convos)
    (folder / "in.jsonl").write_bytes(source)
    convert(folder / "in.jsonl", folder / "out.jsonl", to="messages")
    assert _lines(folder / "out.jsonl") == [{"messages": c} for c in convos]
    convert(folder / "out.jsonl", folder / "again.jsonl", to="messages")
    assert (folder / "again.jsonl").read_bytes() == (folder / "out.jsonl").read_bytes()


@SETTINGS
@given(convos=st.lists(conversations(), min_size=1, max_size=8))
def test_messages_to_prompt_completion_and_back_keeps_the_turns(convos: list[Any]) -> None:
    halves = convert([{"messages": c} for c in convos], to="prompt-completion")
    assert halves.rejected == []
    assert all(row["completion"][-1]["role"] == "assistant" for row in halves.rows)
    back = convert(halves.rows, to="messages")
    assert back.rows == [{"messages": c} for c in convos]


# --- LLaMA-Factory's own files --------------------------------------------------------

#: Each real file, and the shapes every one of its records converts to.
REAL_FILES = {
    REAL / "alpaca_en_demo.json": ("messages", "prompt-completion"),
    REAL / "alpaca_zh_demo.json": ("messages", "prompt-completion"),
    REAL / "glaive_toolcall_en_demo.json": ("messages", "prompt-completion"),
    REAL / "glaive_toolcall_zh_demo.json": ("messages", "prompt-completion"),
    REAL / "identity.json": ("messages", "prompt-completion"),
    REAL / "mllm_demo.json": ("messages", "prompt-completion"),
    REAL / "reason_tool_use_demo_50.jsonl": ("messages", "prompt-completion"),
    REAL / "v1_sft_demo.jsonl": ("messages", "prompt-completion"),
    LAYOUTS / "c4_demo.jsonl": ("text",),
    LAYOUTS / "dpo_en_demo.json": ("preference",),
    LAYOUTS / "kto_en_demo.json": ("messages", "prompt-completion", "preference"),
    LAYOUTS / "v1_dpo_demo.jsonl": ("preference",),
}
#: Files whose converted records hold tool calls with object arguments or reasoning: the
#: shapes TRL's chat templates take, which the default (OpenAI) rules reject.
TRL_ONLY = {"glaive_toolcall_en_demo.json", "glaive_toolcall_zh_demo.json", "reason_tool_use_demo_50.jsonl"}


def _codes(path: Path, profile: str | None) -> Counter[str]:
    return Counter(f.code for f in ftdata.lint(path, profile=profile, config=False).findings)


@pytest.mark.parametrize("path", list(REAL_FILES), ids=lambda p: p.name)
def test_real_files_convert_whole_and_lint_no_worse(tmp_path: Path, path: Path) -> None:
    profiles = ("trl",) if path.name in TRL_ONLY else (None, "trl")
    before = {profile: _codes(path, profile) for profile in profiles}
    if (path.parent / "mllm_demo_data").is_dir() and path.name.startswith("mllm"):
        # Relative media references are carried as written: beside the output they name
        # the same files only where the media are there too.
        shutil.copytree(path.parent / "mllm_demo_data", tmp_path / "mllm_demo_data")
    for to in REAL_FILES[path]:
        out = tmp_path / f"{to}.jsonl"
        result = convert(path, out, to=to)
        assert (result.records, result.converted, result.rejected) == (result.records, result.records, [])
        assert result.records == len(_lines(out)) > 0
        for profile, found in before.items():
            new = _codes(out, profile) - found
            assert new == Counter(), (to, profile)
    for to in set(TARGETS) - set(REAL_FILES[path]):
        result = convert(path, tmp_path / f"{to}.jsonl", to=to)
        assert result.converted == 0
        assert len(result.rejected) == result.records


def test_llamafactory_tool_files_become_trl_tool_calls(tmp_path: Path) -> None:
    path = REAL / "reason_tool_use_demo_50.jsonl"
    convert(path, tmp_path / "out.jsonl", to="messages")
    rows = _lines(tmp_path / "out.jsonl")
    source = _lines(path)
    calls = results = 0
    for row, original in zip(rows, source, strict=True):
        declared = json.loads(original["tools"])  # a JSON string in the source, a list here
        assert row.get("tools", []) == declared  # (entries already {"type": "function", ...}); none: no key
        messages = row["messages"]
        for k, m in enumerate(messages):
            assert all(isinstance(p, dict) for p in m.get("tool_calls", []))
            if m.get("tool_calls"):
                answers = [t for t in messages[k + 1 : k + 1 + len(m["tool_calls"])] if t["role"] == "tool"]
                # one result per call, in order, named after it (split out of one message in the source)
                if answers and len(answers) == len(m["tool_calls"]):
                    assert [t["name"] for t in answers] == [c["function"]["name"] for c in m["tool_calls"]]
                calls += len(m["tool_calls"])
            results += m["role"] == "tool"
        typed = [p for m in original["messages"] for p in m["content"] if p["type"] == "tool_call"]
        assert sum(len(m.get("tool_calls", [])) for m in messages) == len(typed)
        reasoning = [p for m in original["messages"] for p in m["content"] if p["type"] == "reasoning"]
        assert sum("reasoning_content" in m for m in messages) == len(reasoning)
    assert calls == 68
    assert results > 42  # 42 tool messages in the source, some holding several results


KEYS = st.sampled_from(
    ["messages", "conversations", "role", "content", "from", "value", "tool_calls", "function", "name",
     "arguments", "type", "text", "prompt", "completion", "chosen", "rejected", "label", "kto_tag",
     "instruction", "input", "output", "history", "system", "tools", "chosen_messages", "weight"]
)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(["", "x", "user", "gpt", "[]", '{"name": "f"}']),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


ROLES = st.sampled_from(["user", "assistant", "system", "tool", "gpt", "human", "function_call", "observation", "x"])
LEAF = st.one_of(TEXTS, JSON, st.just('{"name": "f", "arguments": {"a": 1}}'), st.just('[{"content": "r"}]'))
MESSAGE = st.fixed_dictionaries(
    {"role": ROLES, "content": LEAF},
    optional={"tool_calls": st.lists(st.one_of(CALL, JSON), max_size=2), "weight": JSON},
)
TURN = st.fixed_dictionaries({"from": ROLES, "value": LEAF}, optional={"weight": JSON})
SIDE = st.one_of(TEXTS, TURN, st.lists(st.one_of(MESSAGE, TURN), max_size=3), JSON)
NEAR_VALID = st.one_of(
    st.fixed_dictionaries({"messages": st.lists(MESSAGE, max_size=4)}, optional={"tools": JSON, "label": JSON}),
    st.fixed_dictionaries({"conversations": st.lists(st.one_of(TURN, MESSAGE), max_size=4)}, optional={"system": LEAF, "tools": LEAF}),
    st.fixed_dictionaries({"chosen": SIDE, "rejected": SIDE}, optional={"prompt": SIDE, "conversations": st.lists(TURN, max_size=2)}),
    st.fixed_dictionaries({"chosen_messages": SIDE, "rejected_messages": SIDE}),
    st.fixed_dictionaries({"instruction": LEAF, "output": LEAF}, optional={"input": LEAF, "history": JSON, "kto_tag": JSON}),
    st.fixed_dictionaries({"prompt": SIDE, "completion": SIDE}, optional={"label": JSON}),
    st.dictionaries(KEYS, JSON, max_size=5),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(rows=st.lists(NEAR_VALID, min_size=1, max_size=5), to=st.sampled_from(TARGETS))
def test_bad_input_never_crashes(rows: list[dict[str, Any]], to: str) -> None:
    result = convert(rows, to=to)
    assert result.converted + len(result.rejected) == len(rows)
    assert result.converted == len(result.rows)
    again = convert(result.rows, to=to)
    assert again.rejected == []
    assert again.rows == result.rows


def test_a_record_that_would_lose_its_only_text_is_rejected() -> None:
    """A lone ShareGPT function_call turn reads as text, but as messages it is a tool call
    with no text: converting it would write a record ftdata could not read back."""
    row = {"conversations": [{"from": "function_call", "value": '{"name": "f", "arguments": {"a": 1}}'}]}
    result = convert([row], to="messages")
    assert [(r.reason, r.detail) for r in result.rejected] == [
        ("unreadable", "the converted record would hold no text")
    ]
