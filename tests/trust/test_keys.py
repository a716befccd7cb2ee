"""Duplicate and leak keys cover what is trained on, and unreadable records are never compared.

Each pair of records below differs in one thing that changes what a model learns from it;
FT401 must not call them duplicates, nor FT601 a leak when one is in train and the other in
eval. The controls differ only in what does not change training (call ids, the key order
and spacing of JSON arguments) and must be found.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ftdata
from ftdata.formats import normalise
from ftdata.records import Record
from ftdata.similarity.keys import answer_key, canonical_json, conversation_key, prompt_key, scope_key
from tests.conftest import run_cli


def _call(name: str, arguments: Any, ident: str = "call_1") -> dict[str, Any]:
    return {"id": ident, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tool_chat(arguments: Any, ident: str = "call_1", result: str = "18C") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": "What is the weather in Paris today?"},
            {"role": "assistant", "content": None, "tool_calls": [_call("get_weather", arguments, ident)]},
            {"role": "tool", "tool_call_id": ident, "content": result},
            {"role": "assistant", "content": "It is 18C in Paris."},
        ]
    }


def _chat(**extra: Any) -> dict[str, Any]:
    record = {
        "messages": [
            {"role": "user", "content": "Can you order a pizza for me tonight?"},
            {"role": "assistant", "content": "I cannot place orders."},
        ]
    }
    record.update(extra)
    return record


def _weighted(weight: int) -> dict[str, Any]:
    record = _chat()
    record["messages"][1]["weight"] = weight
    return record


def _preference(rejected: str) -> dict[str, Any]:
    return {
        "conversations": [{"from": "human", "value": "Which colour is the sky on a clear day?"}],
        "chosen": {"from": "gpt", "value": "Blue."},
        "rejected": {"from": "gpt", "value": rejected},
    }


def _image(url: str) -> dict[str, Any]:
    return {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture, please?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            },
            {"role": "assistant", "content": "A cat."},
        ]
    }


def _tools(name: str) -> dict[str, Any]:
    return _chat(tools=[{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}])


#: (what differs, record a, record b, whether the prompts differ too)
DIFFERENT = [
    ("tool-call arguments", _tool_chat({"city": "Paris"}), _tool_chat({"city": "Paris, Texas"}), False),
    ("tool result", _tool_chat({"city": "Paris"}, result="18C"), _tool_chat({"city": "Paris"}, result="25C"), False),
    ("tools offered", _tools("convert_currency"), _tools("get_stock_price"), True),
    ("loss weight", _weighted(0), _weighted(1), False),
    ("second preference pair", _preference("Green."), _preference("Red."), False),
    ("label", _chat(label=True), _chat(label=False), False),
    ("image reference", _image("https://example.com/cat.png"), _image("https://example.com/dog.png"), True),
    (
        "ShareGPT tools",
        {"conversations": [{"from": "human", "value": "Order me a pizza now please."}], "tools": '[{"name": "a"}]'},
        {"conversations": [{"from": "human", "value": "Order me a pizza now please."}], "tools": '[{"name": "b"}]'},
        True,
    ),
]

#: Pairs that differ only in what does not change training: they are duplicates.
SAME = [
    ("call id", _tool_chat({"city": "Paris"}, "call_1"), _tool_chat({"city": "Paris"}, "zz_42")),
    (
        "arguments as text or object, other key order",
        _tool_chat('{"city": "Paris", "unit": "C"}'),
        _tool_chat({"unit": "C", "city": "Paris"}),
    ),
    ("tools key order", _tools("lookup"), json.loads(json.dumps(_tools("lookup"), sort_keys=True))),
]


def _write(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _record(data: Any) -> Record:
    rec = Record(0, data)
    if type(data) is dict:
        normalise(rec)
    return rec


@pytest.mark.parametrize(("what", "a", "b", "prompts_differ"), DIFFERENT, ids=[d[0] for d in DIFFERENT])
def test_records_differing_in_what_is_trained_on_are_not_duplicates(
    tmp_path: Path, what: str, a: dict[str, Any], b: dict[str, Any], prompts_differ: bool
) -> None:
    assert _record(a).readable
    assert _record(b).readable
    path = _write(tmp_path / "data.jsonl", [a, b, a])
    report = ftdata.lint(path, select=["FT401"], config=False)
    # The third record is a's copy and must be found; b is a duplicate of neither.
    assert [(f.code, f.line) for f in report] == [("FT401", 3)], what


@pytest.mark.parametrize(("what", "a", "b", "prompts_differ"), DIFFERENT, ids=[d[0] for d in DIFFERENT])
def test_records_differing_in_their_prompt_are_not_leaks(
    tmp_path: Path, what: str, a: dict[str, Any], b: dict[str, Any], prompts_differ: bool
) -> None:
    train = _write(tmp_path / "train.jsonl", [a])
    valid = _write(tmp_path / "eval.jsonl", [b, a])
    report = ftdata.lint([train, valid], select=["FT601"], config=False)
    leaks = [(Path(f.source).name, f.line) for f in report if f.code == "FT601"]
    expected = [("eval.jsonl", 2)] if prompts_differ else [("eval.jsonl", 1), ("eval.jsonl", 2)]
    assert leaks == expected, what
    conversation = ftdata.lint(
        [train, valid], select=["FT601"], options={"FT601": {"scope": "conversation"}}, config=False
    )
    assert [(Path(f.source).name, f.line) for f in conversation] == [("eval.jsonl", 2)], what


@pytest.mark.parametrize(("what", "a", "b"), SAME, ids=[s[0] for s in SAME])
def test_records_differing_in_labels_only_are_duplicates(tmp_path: Path, what: str, a: Any, b: Any) -> None:
    path = _write(tmp_path / "data.jsonl", [a, b])
    report = ftdata.lint(path, select=["FT401"], config=False)
    assert [(f.code, f.line) for f in report] == [("FT401", 2)], what
    assert conversation_key(_record(a)) == conversation_key(_record(b))


def test_conflicts_depend_on_the_tools_offered(tmp_path: Path) -> None:
    """glaive_toolcall: a refusal explains whichever tool the record offers."""

    def refusal(tool: str, answer: str) -> dict[str, Any]:
        return {
            "conversations": [
                {"from": "human", "value": "Can you order a pizza for me?"},
                {"from": "gpt", "value": answer},
            ],
            "tools": json.dumps([{"name": tool}]),
        }

    records = [
        refusal("order_food", "Yes, I have placed the order for you."),
        refusal("get_stock_price", "No, I cannot: my only function looks up stock prices."),
    ]
    path = _write(tmp_path / "data.json", [])
    path.write_text(json.dumps(records), encoding="utf-8")
    assert not ftdata.lint(path, select=["FT402", "FT403"], config=False).findings
    same_tools = [records[0], {**records[1], "tools": records[0]["tools"]}]
    path.write_text(json.dumps(same_tools), encoding="utf-8")
    assert [f.code for f in ftdata.lint(path, select=["FT402", "FT403"], config=False)] == ["FT403"]


def _unknown_layout(k: int) -> dict[str, Any]:
    """A tool-calling conversation in a layout ftdata does not read (turns nested in an object)."""
    return {
        "dialogue": {
            "turns": [
                {"speaker": "user", "text": f"Question {k}: what is {k} squared?"},
                {"speaker": "assistant", "call": {"name": "square", "arguments": k}},
            ]
        }
    }


def test_unreadable_records_form_no_cluster(tmp_path: Path) -> None:
    records = [_unknown_layout(k) for k in range(1024)]
    assert not any(_record(r).readable for r in records[:5])
    path = _write(tmp_path / "data.jsonl", records)
    report = ftdata.lint(path, select=["FT401", "FT402", "FT403", "FT404"], config=False)
    assert not report.findings
    # The same records read as text are distinct, and a real copy among them is found.
    readable = [{"prompt": f"Question {k}: what is {k} squared?", "completion": str(k * k)} for k in range(1024)]
    path = _write(tmp_path / "readable.jsonl", [*records, *readable, readable[7]])
    assert [(f.code, f.line) for f in ftdata.lint(path, select=["FT404"], config=False)] == [("FT404", 2049)]
    # With both rules, the copy is reported once, by the stronger one.
    report = ftdata.lint(path, select=["FT401", "FT404"], config=False)
    assert sorted((f.code, f.line) for f in report) == [("FT401", 2049)]


def test_unreadable_records_are_not_counted_by_dataset_rules(tmp_path: Path) -> None:
    system = {"role": "system", "content": "You are a helpful assistant."}
    good = [
        {
            "category": "greeting",
            "messages": [system, {"role": "user", "content": f"Hi {k}"}, {"role": "assistant", "content": "Hello"}],
        }
        for k in range(10)
    ]
    unreadable = [_unknown_layout(k) for k in range(3)]
    path = _write(tmp_path / "data.jsonl", [*good, *unreadable])
    # Counted, the unreadable records would lack the system prompt and the category.
    options = {"FT207": {"field": "category"}}
    assert not ftdata.lint(path, select=["FT201", "FT207"], options=options, config=False).findings
    result = run_cli("lint", path.name, "--select", "FT401,FT201", "--isolated", cwd=tmp_path)
    assert "FT401" not in result.stdout, result.stdout + result.stderr
    assert "FT201" not in result.stdout, result.stdout + result.stderr
    # A readable record without the system prompt is still reported.
    bare = {
        "category": "greeting",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    }
    _write(path, [*good, *unreadable, bare])
    assert [(f.code, f.line) for f in ftdata.lint(path, select=["FT201"], config=False)] == [("FT201", 14)]


def test_unreadable_records_are_not_leaks(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.jsonl", [_unknown_layout(k) for k in range(20)])
    valid = _write(tmp_path / "eval.jsonl", [_unknown_layout(k + 100) for k in range(5)])
    report = ftdata.lint([train, valid], select=["FT601", "FT602"], config=False)
    assert not [f for f in report if f.code in ("FT601", "FT602")]


def test_keys_of_unreadable_records_are_none() -> None:
    for data in ({"text": 3}, {"text": None}, _unknown_layout(1), {"messages": []}, {"prompt": "Q", "chosen": 1}):
        rec = _record(data)
        assert not rec.readable
        assert conversation_key(rec) is None
        assert prompt_key(rec) is None
        assert answer_key(rec) is None


def test_keys_are_stable_across_processes(tmp_path: Path) -> None:
    """Keys are content hashes, not Python's salted ``hash``: another interpreter agrees."""
    import subprocess

    record = _tool_chat({"city": "Paris"})
    code = (
        "import json,sys\n"
        "from ftdata.records import Record\nfrom ftdata.formats import normalise\n"
        "from ftdata.similarity.keys import conversation_key\n"
        "r = Record(0, json.loads(sys.argv[1])); normalise(r); print(conversation_key(r))\n"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code, json.dumps(record)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
            cwd=Path(__file__).resolve().parents[2],
        ).stdout.strip()
        for seed in (1, 2)
    }
    assert runs == {str(conversation_key(_record(record)))}


# Hypothesis: JSON values as tool arguments, written with any key order and spacing.
_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def _shuffled(value: Any, order: list[int]) -> Any:
    """``value`` with the keys of every object in another order (``order`` drives it)."""
    if type(value) is dict:
        items = list(value.items())
        k = order[len(items) % len(order)] if order else 0
        items = items[k % len(items) :] + items[: k % len(items)] if items else items
        items.reverse()
        return {key: _shuffled(v, order) for key, v in items}
    if type(value) is list:
        return [_shuffled(v, order) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(
    arguments=st.dictionaries(st.text(min_size=1, max_size=6), _json, min_size=1, max_size=5),
    order=st.lists(st.integers(0, 7), min_size=1, max_size=4),
    indent=st.sampled_from([None, 0, 1, 4]),
    as_text=st.booleans(),
    sharegpt=st.booleans(),
)
def test_key_ignores_key_order_and_spacing_of_arguments(
    arguments: dict[str, Any], order: list[int], indent: int | None, as_text: bool, sharegpt: bool
) -> None:
    other = _shuffled(arguments, order)
    spaced = json.dumps(other, indent=indent, separators=(", ", ": ") if indent is None else None)
    if sharegpt:

        def record(args: Any) -> dict[str, Any]:
            call = json.dumps({"name": "f", "arguments": args}, indent=indent)
            return {
                "conversations": [
                    {"from": "human", "value": "Call f, please, with these arguments."},
                    {"from": "function_call", "value": call},
                ]
            }

        a, b = record(arguments), record(json.loads(spaced) if not as_text else spaced)
    else:
        a, b = _tool_chat(arguments), _tool_chat(spaced if as_text else other)
    ra, rb = _record(a), _record(b)
    assert conversation_key(ra) == conversation_key(rb)
    assert scope_key(ra, "answer") == scope_key(rb, "answer")
    assert canonical_json(arguments) == canonical_json(other)
    if not sharegpt:
        changed = _tool_chat({**arguments, "\x00extra!": 1})
        assert conversation_key(_record(changed)) != conversation_key(ra)


@settings(max_examples=100, deadline=None)
@given(value=_json)
def test_canonical_json_never_raises_and_round_trips(value: Any) -> None:
    data = canonical_json(value)
    assert json.loads(data) == value
    assert data == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") or (
        data == json.dumps(value, sort_keys=True, separators=(",", ":")).encode("ascii")  # the slow writer's escapes
    )


def test_answers_with_different_labels_do_not_conflict(tmp_path: Path) -> None:
    """KTO data pairs a desirable and an undesirable answer to one prompt on purpose."""

    def kto(answer: str, label: bool) -> dict[str, Any]:
        prompt = {"role": "user", "content": "Is the Earth round?"}
        return {"messages": [prompt, {"role": "assistant", "content": answer}], "label": label}

    path = _write(tmp_path / "data.jsonl", [kto("Yes, it is round.", True), kto("No, flat as a pancake.", False)])
    assert not ftdata.lint(path, select=["FT403"], config=False).findings
    _write(path, [kto("Yes, it is round.", True), kto("No, flat as a pancake.", True)])
    assert [f.code for f in ftdata.lint(path, select=["FT403"], config=False)] == ["FT403"]


def test_a_preference_pair_is_keyed_by_both_replies(tmp_path: Path) -> None:
    def pair(rejected: str) -> dict[str, Any]:
        def side(reply: str) -> list[dict[str, str]]:
            return [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": reply}]

        return {"chosen_messages": side("Paris."), "rejected_messages": side(rejected)}

    a, b, c = _record(pair("Lyon.")), _record(pair("Nice.")), _record(pair("Lyon."))
    assert a.readable
    assert b.readable
    assert conversation_key(a) != conversation_key(b)
    assert answer_key(a) != answer_key(b)
    assert conversation_key(a) == conversation_key(c)
    explicit = [{"prompt": "Capital of France?", "chosen": "Paris.", "rejected": r} for r in ("Lyon.", "Nice.")]
    path = _write(tmp_path / "pairs.jsonl", [*explicit, explicit[0], pair("Lyon."), pair("Nice.")])
    report = ftdata.lint(path, select=["FT401"], config=False)
    # Only the true copy is a duplicate: a pair with another rejected reply is another pair.
    assert [(f.line, f.related) for f in report] == [(3, (0,))]
