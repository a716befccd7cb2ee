"""dedup: a partition of the input (kept + rejected = input), one record kept per cluster,
outputs byte for byte in the input's container, and the CLI's files as golden files."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ftdata.curation.dedup as dd
from ftdata.similarity.text import normalise_text
from tests.conftest import GOLDEN_DIR, TESTS, check_golden, run_cli

POOL = [
    ("How do I reset my password?", "Open Settings and choose Reset."),
    ("How do I  reset my password? ", "Open Settings and choose Reset."),
    ("Is there a dark mode?", "Yes, in Settings > Appearance."),
    ("Can I export to PDF?", "Yes, from Share > Export."),
    ("Café?", "Coffee."),
    ("Cafe\u0301?", "Coffee."),
]


@st.composite
def datasets(draw: st.DrawFn) -> list[bytes]:
    lines = []
    for _ in range(draw(st.integers(1, 25))):
        if draw(st.integers(0, 9)) == 0:
            lines.append(b'{"messages": [broken]}')  # balanced, so a JSON array still has its elements
            continue
        q, a = draw(st.sampled_from(POOL))
        record = {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        lines.append(json.dumps(record, ensure_ascii=draw(st.booleans())).encode())
    return lines


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("method", ["exact", "minhash"])
@SETTINGS
@given(lines=datasets(), suffix=st.sampled_from([".jsonl", ".json"]))
def test_dedup_partitions_the_input(
    tmp_path_factory: pytest.TempPathFactory, method: str, lines: list[bytes], suffix: str
) -> None:
    folder = tmp_path_factory.mktemp("dedup")
    source = folder / f"in{suffix}"
    if suffix == ".json":
        source.write_bytes(b"[\n" + b",\n".join(lines) + b"\n]\n")
    else:
        source.write_bytes(b"\n".join(lines) + b"\n")
    result = dd.dedup(source, folder / f"out{suffix}", method=method, threshold=0.9 if method == "minhash" else None)
    n = len(lines)
    rejected = [r.index for r in result.rejected]
    assert sorted(result.kept + rejected) == list(range(n))
    assert not set(result.kept) & set(rejected)
    for cluster in result.clusters:
        assert sum(1 for m in cluster.members if m in result.kept) == 1
        assert cluster.representative in result.kept
    kept_out = result.outputs["kept"].read_bytes()
    if suffix == ".json":
        assert kept_out == b"[\n" + b",\n".join(lines[i] for i in result.kept) + b"\n]\n"
    else:
        assert kept_out.split(b"\n")[:-1] == [lines[i] for i in result.kept]
    rejections = [json.loads(x) for x in result.outputs["rejected"].read_bytes().splitlines()]
    assert [r["index"] for r in rejections] == rejected
    for r in rejections:
        assert r["schema"] == "ftdata.rejects/1"
        assert r["reason"] == "duplicate"
        assert r["raw"].encode() == lines[r["index"]]
    if method == "exact":
        keys = Counter(
            tuple(normalise_text(m["content"]) for m in json.loads(lines[i])["messages"])
            for i in result.kept
            if b"broken" not in lines[i]
        )
        assert max(keys.values(), default=1) == 1


def test_json_array_output_keeps_element_bytes(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(
        '[\n  {"prompt": "a",   "completion": "b"},\n  {"prompt": "a", "completion": "b"},\n  {"prompt": "c", "completion": "d"}\n]\n'
    )
    result = dd.dedup(source, tmp_path / "out.json")
    assert result.kept == [0, 2]
    assert (
        tmp_path / "out.json"
    ).read_text() == '[\n{"prompt": "a",   "completion": "b"},\n{"prompt": "c", "completion": "d"}\n]\n'


def test_in_memory_records_without_output() -> None:
    records = [{"prompt": "a", "completion": "b"}, {"prompt": "a ", "completion": "b"}, {"nope": 1}]
    result = dd.dedup(records)
    assert (result.kept, [(r.index, r.reason) for r in result.rejected]) == ([0, 2], [(1, "duplicate")])
    assert [(u.index, u.rule) for u in result.unreadable] == [(2, "FT100")]
    rejecting = dd.dedup(records, unreadable="reject")
    assert [(r.index, r.reason, r.rule) for r in rejecting.rejected] == [
        (1, "duplicate", "FT401"),
        (2, "unreadable", "FT100"),
    ]
    with pytest.raises(ValueError, match="needs a file"):
        dd.dedup(records, "out.jsonl")


@pytest.mark.parametrize("method", ["exact", "minhash", "semantic"])
def test_cli_outputs_golden(tmp_path: Path, method: str) -> None:
    shutil.copy(TESTS / "data" / "dups.jsonl", tmp_path / "dups.jsonl")
    # the reference model: its similarities are what the golden files hold
    extra = ["--threshold", "0.9", "--model", "sentence-transformers/all-MiniLM-L6-v2"] if method == "semantic" else []
    (tmp_path / "out").mkdir()
    result = run_cli("dedup", "dups.jsonl", "-o", "out/dedup.jsonl", "--method", method, *extra, cwd=tmp_path)
    # dups.jsonl holds one broken line: kept unchanged, never compared, and the exit status says so
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Kept" in result.stderr
    assert " of 7 records" in result.stderr
    assert "1 record could not be read" in result.stderr
    assert "line 5" in result.stderr
    manifest = json.loads((tmp_path / "out" / "dedup.manifest.json").read_text())
    assert manifest["schema"] == "ftdata.manifest/1"
    assert manifest["command"] == "dedup"
    assert manifest["counts"]["unreadable"] == 1
    for name in ("dedup.jsonl", "dedup.rejected.jsonl", "dedup.clusters.json"):
        check_golden(GOLDEN_DIR / f"dedup-{method}" / name, (tmp_path / "out" / name).read_text())


def test_cli_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    shutil.copy(TESTS / "data" / "dups.jsonl", tmp_path / "dups.jsonl")
    before = (tmp_path / "dups.jsonl").read_bytes()
    result = run_cli("dedup", "dups.jsonl", "-o", "dups.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert "is the input" in result.stderr
    assert (tmp_path / "dups.jsonl").read_bytes() == before


def _lint_groups(folder: Path, name: str, *args: str) -> set[tuple[int, ...]]:
    """The duplicate groups ``ftdata lint --output-format json`` reports for ``name``."""
    result = run_cli("lint", name, *args, "--output-format", "json", cwd=folder)
    # 2: the broken record makes the verdict incomplete; the findings are still printed.
    assert result.returncode in (0, 1, 2), result.stderr
    return {tuple(sorted({f["index"], *f["related"]})) for f in json.loads(result.stdout)}


@pytest.mark.parametrize(("method", "args"), [("exact", ["--select", "FT401"]), ("minhash", ["--select", "FT404"])])
def test_dedup_clusters_are_the_rules_groups(tmp_path: Path, method: str, args: list[str]) -> None:
    shutil.copy(TESTS / "data" / "dups.jsonl", tmp_path / "dups.jsonl")
    result = dd.dedup(tmp_path / "dups.jsonl", tmp_path / "out.jsonl", method=method)
    groups = _lint_groups(tmp_path, "dups.jsonl", *args)
    assert groups, "the fixture holds duplicates"
    assert {c.members for c in result.clusters} == groups
    # The broken line (index 4) is never in a group, and is kept unchanged.
    assert [u.index for u in result.unreadable] == [4]
    assert all(4 not in c.members for c in result.clusters)
    assert 4 in result.kept


@pytest.mark.parametrize("scope", ["prompt", "answer", "conversation"])
@pytest.mark.parametrize("keep", ["first", "longest"])
def test_dedup_options_reach_the_rule(tmp_path: Path, scope: str, keep: str) -> None:
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Hi there, how do I reset it?"},
                {"role": "assistant", "content": "Open Settings."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Hi there, how do I reset it?"},
                {"role": "assistant", "content": "Open Settings, then Reset."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Something else entirely?"},
                {"role": "assistant", "content": "Open Settings."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Hi there, how do I reset it?"},
                {"role": "assistant", "content": "Open Settings."},
            ]
        },
        "not an object",
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = dd.dedup(source, tmp_path / "out.jsonl", scope=scope, keep=keep)
    expected = {"prompt": {(0, 1, 3)}, "answer": {(0, 2, 3)}, "conversation": {(0, 3)}}[scope]
    assert {c.members for c in result.clusters} == expected
    lint = _lint_groups(tmp_path, "in.jsonl", "--select", "FT401", "--config", str(_config(tmp_path, scope, keep)))
    assert lint == expected
    # Exact copies have texts of one length, so "longest" ties and the first is kept too.
    assert [c.representative for c in result.clusters] == [0]
    assert all(4 not in c.members for c in result.clusters)


def _config(folder: Path, scope: str, keep: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(f'[tool.ftdata.rules.FT401]\nscope = "{scope}"\nkeep = "{keep}"\n')
    return path


def test_similarities_are_the_rules_scores(tmp_path: Path) -> None:
    """The rejects' similarity is the score FT404 put on its finding, not a second comparison."""
    shutil.copy(TESTS / "data" / "dups.jsonl", tmp_path / "dups.jsonl")
    result = dd.dedup(tmp_path / "dups.jsonl", tmp_path / "out.jsonl", method="minhash")
    lint = run_cli("lint", "dups.jsonl", "--select", "FT404", "--output-format", "json", cwd=tmp_path)
    scores = {f["index"]: f["score"] for f in json.loads(lint.stdout) if f["code"] == "FT404"}
    assert scores, "the fixture holds near duplicates"
    assert all(0.8 <= s <= 1.0 for s in scores.values())
    assert {r.index: r.similarity for r in result.rejected if r.reason == "duplicate"} == scores
    exact = run_cli("lint", "dups.jsonl", "--select", "FT401", "--output-format", "json", cwd=tmp_path)
    assert all("score" not in f and "other" not in f for f in json.loads(exact.stdout)), "exact: no score"


def test_one_finding_per_duplicated_record(tmp_path: Path) -> None:
    from ftdata.api import lint

    shutil.copy(TESTS / "data" / "dups.jsonl", tmp_path / "dups.jsonl")
    near = {"FT404": {"threshold": 0.6}}
    # Run alone, each rule sees records 1 and 2 (copies of record 0); only FT404 sees record 5.
    exact = lint(tmp_path / "dups.jsonl", select=["FT401"], config=False)
    alone = lint(tmp_path / "dups.jsonl", select=["FT404"], options=near, config=False)
    assert sorted(f.index for f in exact.findings) == [1, 2]
    assert sorted(f.index for f in alone.findings) == [1, 2, 5]
    # Together, the exact duplicates are reported once, by FT401.
    once = lint(tmp_path / "dups.jsonl", select=["FT401", "FT404"], options=near, config=False).findings
    assert sorted((f.code, f.index) for f in once) == [("FT401", 1), ("FT401", 2), ("FT404", 5)]
    assert all("FT401" not in f.message for f in once)  # record 5's group holds no exact duplicate
    # dedup runs one rule alone and keeps all its findings: its clusters do not change.
    assert [c.members for c in dd.clusters_of(alone.findings, "FT404")] == [(0, 1, 2), (3, 5)]


def test_weaker_group_names_the_stronger_rule(tmp_path: Path) -> None:
    from ftdata.api import lint

    base = "Open Settings, then Account, then Security, and choose Reset password to get a link by email."
    rows = [
        {
            "messages": [
                {"role": "user", "content": "How do I reset my password?"},
                {"role": "assistant", "content": base},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "How do I reset my password?"},
                {"role": "assistant", "content": base},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "How do I reset my password?"},
                {"role": "assistant", "content": base + " Thanks."},
            ]
        },
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    once = lint(path, select=["FT401", "FT404"], config=False).findings
    assert sorted((f.code, f.index) for f in once) == [("FT401", 1), ("FT404", 2)]
    near = next(f for f in once if f.code == "FT404")
    assert near.message.endswith("(1 of them reported by FT401)")


def _expected_copy(source: Path, result: dd.DedupResult) -> tuple[bytes, list[bytes]]:
    """What the kept file and the rejects' raw bytes hold, from the full reader: each kept
    record's ``Record.raw`` (nothing for a line too long) and a newline."""
    from ftdata import io
    from ftdata.records import Record

    raws = {r.index: r.raw or b"" for r in io.read(source, io.ReadStats(), parse="none") if type(r) is Record}
    kept = b"".join(raws[i] + b"\n" for i in result.kept)
    return kept, [raws[r.index] for r in result.rejected]


LAYOUT_PIECES = [
    b'{"prompt": "How do I reset my password?", "completion": "Open Settings."}',
    b'{"prompt": "How do I reset my password?",  "completion": "Open Settings."}',
    b'{"prompt": "Is there a dark mode?", "completion": "Yes."}',
    b'{"prompt": "Is there a dark mode?", "completion": "Yes."}\r',
    b"",
    b"   ",
    b"\r",
    b'{"prompt": broken',
    b"[1, 2]",
]


@pytest.mark.parametrize("method", ["exact", "minhash"])
@SETTINGS
@given(
    pieces=st.lists(st.sampled_from(LAYOUT_PIECES), min_size=1, max_size=20),
    bom=st.booleans(),
    ending=st.sampled_from([b"", b"\n", b"\r\n"]),
)
def test_jsonl_outputs_copy_what_the_reader_reads(
    tmp_path_factory: pytest.TempPathFactory, method: str, pieces: list[bytes], bom: bool, ending: bytes
) -> None:
    folder = tmp_path_factory.mktemp("layout")
    source = folder / "in.jsonl"
    source.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"\n".join(pieces) + ending)
    result = dd.dedup(source, folder / "out.jsonl", method=method, threshold=0.9 if method == "minhash" else None)
    kept, rejected = _expected_copy(source, result)
    assert result.outputs["kept"].read_bytes() == kept
    rejects = [json.loads(x) for x in result.outputs["rejected"].read_bytes().splitlines()]
    assert [r["raw"].encode() for r in rejects] == rejected


def test_jsonl_outputs_keep_a_line_too_long_as_the_reader_reads_it(tmp_path: Path) -> None:
    from ftdata.io.parse import DEFAULT_MAX_LINE_BYTES

    record = b'{"prompt": "Is there a dark mode?", "completion": "Yes."}'
    long = b'{"prompt": "' + b"x" * DEFAULT_MAX_LINE_BYTES + b'"}'
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join([record, long, record, b"", long, record]) + b"\n")
    for unreadable in ("keep", "reject"):
        result = dd.dedup(source, tmp_path / f"out-{unreadable}.jsonl", unreadable=unreadable)
        assert [u.index for u in result.unreadable] == [1, 3]
        kept, rejected = _expected_copy(source, result)
        assert result.outputs["kept"].read_bytes() == kept
        rejects = [json.loads(x) for x in result.outputs["rejected"].read_bytes().splitlines()]
        assert [r["raw"].encode() for r in rejects] == rejected
        assert len(rejects) == (4 if unreadable == "reject" else 2)


def test_an_input_written_to_after_its_fingerprint_is_refused(tmp_path: Path) -> None:
    """The fingerprint taken beside the copy must match the first one, and the file must
    not change after it was taken."""
    from ftdata.curation.dedup_write import check_fingerprint, fingerprint_later
    from ftdata.outputs import Fingerprint, InputChangedError

    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "a b c", "completion": "d e f"}\n')
    first = Fingerprint.of(src)
    check_fingerprint(first, fingerprint_later(src), src)
    later = fingerprint_later(src)
    later.result()
    with open(src, "a") as f:
        f.write('{"prompt": "g", "completion": "h"}\n')
    with pytest.raises(InputChangedError, match="changed between two reads"):
        check_fingerprint(first, later, src)
    with pytest.raises(InputChangedError, match="changed between two reads"):
        check_fingerprint(first, fingerprint_later(src), src)
    src.unlink()
    with pytest.raises(InputChangedError, match="was removed"):
        check_fingerprint(first, fingerprint_later(src), src)
