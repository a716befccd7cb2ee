"""--fix: idempotent, and it changes nothing in a record beyond the listed safe fixes."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ftdata
from ftdata.curation.fix import FIXABLE, fix_bytes

ROLES = ["system", "user", "assistant"]
texts = st.lists(
    st.sampled_from([*'abc xyz\n\t"\\é', "e\u0301", "\u0301", "\u1100\u1161", "한", "ﬁ", "Å", "A\u030a"]),
    max_size=20,
).map("".join)
padded_roles = st.tuples(
    st.sampled_from(ROLES), st.sampled_from(["", " ", "\t", "\n", "  "]), st.sampled_from(["", " ", "\n"])
)
messages = st.lists(st.tuples(padded_roles, texts), min_size=1, max_size=4)


def _nfc(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    if isinstance(value, dict):
        return {_nfc(k): _nfc(v) for k, v in value.items()}
    return value


@st.composite
def files(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]], list[bool]]:
    records, escaped = [], []
    lines: list[bytes] = []
    for msgs in draw(st.lists(messages, min_size=1, max_size=5)):
        sharegpt = draw(st.booleans())
        if sharegpt:
            names = {"user": "human", "assistant": "gpt"}
            rec = {
                "conversations": [{"from": lead + names.get(r, r) + tail, "value": t} for (r, lead, tail), t in msgs]
            }
        else:
            rec = {"messages": [{"role": lead + r + tail, "content": t} for (r, lead, tail), t in msgs]}
        ensure_ascii = draw(st.booleans())
        records.append(rec)
        escaped.append(ensure_ascii)
        lines.append(json.dumps(rec, ensure_ascii=ensure_ascii).encode())
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from([b"", b"  ", b"\t"])))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = newline.join(lines)
    if draw(st.booleans()):
        data += newline
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, records, escaped


def _expected(rec: dict[str, Any], escaped: bool) -> dict[str, Any]:
    out = json.loads(json.dumps(rec))
    for turn in out.get("messages", []):
        turn["role"] = turn["role"].strip()
    for turn in out.get("conversations", []):
        turn["from"] = turn["from"].strip()
    return _nfc(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_fix_is_idempotent_and_preserves_content(case: tuple[bytes, list[dict[str, Any]], list[bool]]) -> None:
    data, records, escaped = case
    fixed, _applied = fix_bytes(data)
    again, applied_again = fix_bytes(fixed)
    assert again == fixed
    assert not applied_again
    lines = fixed.split(b"\n")
    assert lines[-1] == b""  # ends with exactly one newline
    parsed = [json.loads(line) for line in lines[:-1]]
    assert parsed == [_expected(r, e) for r, e in zip(records, escaped, strict=True)]


@settings(max_examples=60, deadline=None)
@given(files())
def test_nothing_fixable_is_left_after_a_fix(
    tmp_path_factory, case: tuple[bytes, list[dict[str, Any]], list[bool]]
) -> None:
    data, _, _ = case
    path = tmp_path_factory.mktemp("fix") / "data.jsonl"
    path.write_bytes(fix_bytes(data)[0])
    report = ftdata.lint(path, select=sorted(FIXABLE), config=False)
    assert not report.findings, [f.message for f in report]
