"""The reader's fast paths agree with the strict parser they stand in for.

``parse_record`` parses with orjson and only re-parses strictly when cheap tests on the
raw line cannot rule out a duplicate key, deep nesting or an unsafe integer;
``locate_parsed`` finds paths with a tokenizer instead of the strict parser. Both must
give exactly what the strict path gives: the same value, the same problems at the same
offsets, the same spans. Checked on the real files in the tree and on generated lines
aimed at each shortcut (colons and quotes inside strings, ``\\u0022`` escapes, escaped
backslashes, keys written twice at several depths, loose ``"key" :`` separators, long
digit runs inside and outside strings).
"""

from __future__ import annotations

import json
import random
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftdata import jsonstrict
from ftdata.config import Settings
from ftdata.engine.plan import compile_plan
from ftdata.engine.scan import scan_shard, shards
from ftdata.executors.process import ProcessExecutor
from ftdata.executors.serial import SerialExecutor
from ftdata.io import iter_data_files, parse_record
from ftdata.io.parse import _strict
from ftdata.jsonlocate import locate_parsed

ROOT = Path(__file__).resolve().parent.parent
REAL = [ROOT / "tests" / "data", ROOT / "tests" / "rules", ROOT / "ftdata" / "samples"]


def reference(raw: bytes, max_depth: int = 64) -> tuple[Any, list[Any]]:
    """Every line through the strict parser: what the fast path must reproduce."""
    return _strict(raw, max_depth)


def same(a: tuple[Any, list[Any]], b: tuple[Any, list[Any]]) -> bool:
    # repr, so that NaN (never equal to itself) compares as written
    return repr(a) == repr(b)


def real_lines() -> list[bytes]:
    lines = []
    for path in iter_data_files(REAL):
        if path.suffix == ".jsonl":
            for line in path.read_bytes().split(b"\n"):
                body = line.removesuffix(b"\r").removeprefix(b"\xef\xbb\xbf")
                if body.strip():
                    lines.append(body)
    return lines


def paths_of(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if type(value) is dict:
        for k, v in value.items():
            found += paths_of(v, (*path, k))
    elif type(value) is list:
        for i, v in enumerate(value):
            found += paths_of(v, (*path, i))
    return found


def test_real_files_parse_as_the_strict_parser_says() -> None:
    lines = real_lines()
    assert len(lines) > 1000
    shortcut = 0
    for raw in lines:
        fast = parse_record(raw)
        assert same(fast, reference(raw)), raw[:200]
        shortcut += type(fast[0]) is dict and not fast[1]
    assert shortcut > 1000  # the comparison covers the fast path, not only the fallback


def test_real_files_locate_as_the_strict_parser_says() -> None:
    rng = random.Random(7)
    checked = 0
    for raw in real_lines():
        value, _ = reference(raw)
        if type(value) is not dict:
            continue
        text = raw.decode("utf-8", "replace")
        paths = [*paths_of(value)[1:], ("nowhere",), ("messages", 10000, "content")]
        for _ in range(3):
            wanted = rng.sample(paths, min(len(paths), rng.randint(1, 8)))
            assert locate_parsed(text, wanted) == jsonstrict.locate(text, wanted), (text[:200], wanted)
            checked += 1
    assert checked > 3000


# Generated lines: objects are lists of (key, value) pairs, so a key may be written twice.
class Obj(list):  # type: ignore[type-arg]
    pass


KEYS = st.sampled_from(["a", "b", "role", "content", 'q"', "c:d", 'e":', "\\", 'f\\"', "é", "1"])
TEXT = st.text(alphabet=st.sampled_from([*list('ab :"\\0123456789{}[],é\n\t/u'), "\u2028", "😀"]), max_size=24)
INTS = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**53, 2**53 + 1, -(2**53), -(2**53) - 1, 2**64, 10**20, 1234567890123456]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), INTS, st.floats(allow_nan=False, allow_infinity=False), TEXT, st.just("1" * 20)
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(st.tuples(st.one_of(KEYS, TEXT), inner), max_size=4).map(Obj),
    ),
    max_leaves=24,
)
DOCS = st.lists(st.tuples(st.one_of(KEYS, TEXT), TREES), max_size=6).map(Obj)


def write(node: Any, rng: random.Random) -> str:
    """``node`` as JSON, in one of the many spellings JSON allows."""
    if type(node) is Obj:
        colon = rng.choice([":", ": ", " : ", "\t:"])
        comma = rng.choice([",", ", "])
        return "{" + comma.join(write_string(k, rng) + colon + write(v, rng) for k, v in node) + "}"
    if type(node) is list:
        return "[" + rng.choice([",", ", "]).join(write(v, rng) for v in node) + "]"
    if type(node) is str:
        return write_string(node, rng)
    if type(node) is float:
        return repr(node)
    return json.dumps(node)


def write_string(text: str, rng: random.Random) -> str:
    out = ['"']
    for c in text:
        if c == '"':
            out.append(rng.choice(['\\"', "\\u0022"]))
        elif c == "\\":
            out.append(rng.choice(["\\\\", "\\u005c"]))
        elif c == ":":
            out.append(rng.choice([":", ":", "\\u003a"]))
        elif c < " " or c == "\u2028":
            out.append(json.dumps(c)[1:-1])
        elif c > "\x7f":
            out.append(rng.choice([c, json.dumps(c)[1:-1]]))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS, seed=st.integers(0, 2**32))
def test_generated_lines_parse_as_the_strict_parser_says(doc: Obj, seed: int) -> None:
    raw = write(doc, random.Random(seed)).encode("utf-8")
    assert same(parse_record(raw), reference(raw)), raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS, seed=st.integers(0, 2**32))
def test_generated_lines_locate_as_the_strict_parser_says(doc: Obj, seed: int) -> None:
    rng = random.Random(seed)
    text = write(doc, rng)
    value = jsonstrict.parse(text).value
    paths = [*paths_of(value)[1:], ("a", 0), ("nowhere",)]
    wanted = rng.sample(paths, min(len(paths), rng.randint(1, 6)))
    assert locate_parsed(text, wanted) == jsonstrict.locate(text, wanted), (text, wanted)


@pytest.mark.parametrize("depth", [1, 30, 62, 63, 64, 65, 66, 200])
@pytest.mark.parametrize("braces_in_text", [0, 70])
@pytest.mark.parametrize("opener", ["[", '{"k": ', '[{"k": '])
def test_depth_limits_agree(depth: int, braces_in_text: int, opener: str) -> None:
    """Nesting around the reader's limit (arrays, objects and both in turn), with
    brackets inside strings that the cheap bracket count cannot tell from structure."""
    inner = json.dumps({"text": "{[" * braces_in_text, "n": 2**60 if braces_in_text else 1})
    closer = {"[": "]", '{"k": ': "}", '[{"k": ': "}]"}[opener]
    levels = (depth - 1) // (2 if opener.startswith("[{") else 1)
    raw = ('{"a": ' + opener * levels + inner + closer * levels + ', "b": "c:d"}').encode()
    for max_depth in (64, 300):
        assert same(parse_record(raw, max_depth=max_depth), reference(raw, max_depth)), (depth, max_depth)
    text = raw.decode()
    value = orjson.loads(raw)
    for wanted in (paths_of(value)[1:], [("b",)], [max(paths_of(value), key=len)]):
        assert locate_parsed(text, wanted) == jsonstrict.locate(text, wanted)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": {"b": 1, "b": 2}}',
        b'{"a": [{"b": "x:y", "b": "z"}]}',
        b'{"a" : 1, "b": "\\":", "a": 2}',
        b'{"\\u0022": 1, "\\"": 2}',
        b'{"a": "\\u0022", "a": 1}',
        b'{"a": "\\\\u0022", "b": 1}',
        b'{"a": "\\\\", "a": "\\\\"}',
        b'{"n": 9007199254740993}',
        b'{"n": -9007199254740993, "s": "9007199254740993"}',
        b'{"n": 123456789012345678901234567890}',
        b'{"s": "12345678901234567890"}',
        b'{"a": NaN}',
        b'{"a": "\\ud800"}',
        b'{"a": 1e400}',
        b'{"a": 1}{"b": 2}',
        b"[1, 2]",
        b'"text"',
    ],
)
def test_each_shortcut_on_its_own_case(raw: bytes) -> None:
    assert same(parse_record(raw), reference(raw))


def test_the_process_pool_runs_the_plan_it_was_given_once(tmp_path: Path) -> None:
    """Workers receive the shard function (with its plan) when they start; each shard's
    result is what the same function gives in this process."""
    source = ROOT / "ftdata" / "samples" / "support_chat.jsonl"
    path = tmp_path / "chat.jsonl"
    path.write_bytes(source.read_bytes() * 20)
    plan = compile_plan(Settings())
    parts = shards(path, str(path), path.stat().st_size, 6)
    assert len(parts) == 6
    scan = partial(scan_shard, plan=plan)
    here = list(SerialExecutor().map(scan, parts))
    there = list(ProcessExecutor(2).map(scan, parts))
    assert [r.findings for r in there] == [r.findings for r in here]
    assert [r.formats for r in there] == [r.formats for r in here]
    assert [r.stats for r in there] == [r.stats for r in here]
    assert sum(len(r.findings) for r in here) > 0
