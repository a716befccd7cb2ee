"""The fast MinHash paths agree with the reference ones: FT404's batched collector with its
one-record-at-a-time form on real files, the byte shingler with ``record_shingles``, the
signatures the pass computes with those FT404 computes itself, a JSON Lines read of a few
wanted records and the unparsed blocks of records with a full read. FT404 leaves out pairs
that only share a long context."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdata import io
from ftdata.curation.dedup import read_records
from ftdata.records import Record
from ftdata.rules.duplicates import _near_shingles
from ftdata.similarity.shingles import record_shingles, shingle_set_bytes

REAL = Path(__file__).parent / "data" / "real"
REAL_FILES = sorted(p for p in REAL.rglob("*") if p.suffix in (".json", ".jsonl"))
TEXT = st.text(alphabet=st.sampled_from([*"ab cd\n\tx", "数", "据", "é", "🙂", "ไ", "\u3000"]), max_size=60)


def _records(path: Path) -> list[Record]:
    return list(read_records(path, None, None))


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize(
    ("scope", "kind", "n"), [("conversation", "word", 5), ("prompt", "char", 3), ("answer", "word", 2)]
)
def test_batched_collector_equals_one_at_a_time_on_real_files(path: Path, scope: str, kind: str, n: int) -> None:
    records = _records(path)
    one = [_near_shingles(r, scope=scope, shingle=kind, n=n) for r in records]
    batched: list[bytes | None] = []
    for k in range(0, len(records), 64):
        batched.extend(_near_shingles.batch(records[k : k + 64], scope=scope, shingle=kind, n=n))
    assert batched == one
    if scope == "conversation":  # every real file has text to compare
        assert any(v is not None for v in one)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(TEXT, max_size=8), kind=st.sampled_from(["word", "char"]), n=st.integers(1, 6))
def test_shingle_set_bytes_equal_record_shingles(texts: list[str], kind: str, n: int) -> None:
    found = shingle_set_bytes([t.encode("utf-8", "surrogatepass") for t in texts], kind=kind, n=n)
    assert len(found) == len(texts)
    for text, data in zip(texts, found, strict=True):
        assert np.array_equal(np.frombuffer(data, dtype=np.uint32), record_shingles(text, kind=kind, n=n))


def test_wanted_records_read_as_a_full_read_reads_them(tmp_path: Path) -> None:
    lines = [
        b'\xef\xbb\xbf{"text": "first"}',
        b"",
        b"   ",
        b'{"text": "' + b"x" * 300 + b'"}',
        b"[1, 2]",
        b'{"text": "broken"',
        b'{"text": "crlf"}\r',
        b'{"text": "last"}',
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    full = [r for r in io.read(path, io.ReadStats(), max_line_bytes=200) if type(r) is Record]
    for wanted in ({0}, {1, 3}, {2, 4}, set(range(len(full))), {len(full) + 3}):
        some = io.records_at(io.read(path, io.ReadStats(), max_line_bytes=200, wanted=wanted), wanted)
        expected = {r.index: r for r in full if r.index in wanted}
        assert sorted(some) == sorted(expected)
        for index, rec in some.items():
            ref = expected[index]
            assert (rec.data, rec.raw, rec.line, rec.offset, rec.problems) == (
                ref.data,
                ref.raw,
                ref.line,
                ref.offset,
                ref.problems,
            )


DOCUMENT = " ".join(f"the committee reviewed finding {k} of the audit and recorded its outcome" for k in range(60))


def _chat(question: str, answer: str) -> dict:
    return {
        "messages": [
            {"role": "user", "content": f"{question}\n{DOCUMENT}"},
            {"role": "assistant", "content": answer},
        ]
    }


def _ft404(path: Path, *options: str) -> list[dict]:
    cmd = [sys.executable, "-m", "ftdata", "lint", str(path), "--isolated", "--select", "FT404"]
    cmd += [a for o in options for a in ("--option", o)]
    done = subprocess.run([*cmd, "--output-format", "json", "--no-cache"], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_shared_document_with_different_questions_and_answers_is_no_near_duplicate(tmp_path: Path) -> None:
    reply = " ".join(f"step {k} of the reply explains the outcome of finding {k} in plain words" for k in range(20))
    rows = [
        _chat("Which finding did the committee review first?", "Finding 0 was reviewed first, before the rest."),
        _chat("How many findings were recorded in all?", "Sixty findings were recorded, one per review."),
        _chat("Summarise the audit.", reply),
        _chat("Summarise the audit.", reply.replace("plain", "simple", 1)),
    ]
    path = tmp_path / "shared.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = _ft404(path)
    assert [(f["index"], sorted(f["related"])) for f in found] == [(3, [2])]
    off = _ft404(path, "FT404.answer_threshold=0")
    assert sorted(f["index"] for f in off) == [1, 3]  # the two short answers join again


def _kept_by_reference(
    pairs: list[tuple[int, int, float]], replies: dict[int, str], threshold: float, kind: str, n: int
) -> list[tuple[int, int, float]]:
    """FT404's reply check as its options document it: a pair of the same shingles, or one
    with a side whose reply is blank, is kept; else the replies' Jaccard must reach it."""
    from ftdata.similarity.minhash import jaccard

    def reply(k: int) -> np.ndarray | None:
        text = replies.get(k, "")
        return record_shingles(text, kind=kind, n=n) if text.strip() else None

    kept = []
    for i, j, sim in pairs:
        a, b = reply(i), reply(j)
        if sim >= 1.0 or a is None or b is None or jaccard(a, b) >= threshold:
            kept.append((i, j, sim))
    return kept


def _near_replies_of(
    pairs: list[tuple[int, int, float]], replies: dict[int, str], threshold: float, kind: str, n: int
) -> list[tuple[int, int, float]]:
    from ftdata.similarity.minhash import near_replies, reply_shingles

    texts = {k: text.encode("utf-8") for k, text in replies.items()}
    sets = dict(zip(texts, reply_shingles(list(texts.values()), shingle=kind, n=n), strict=True))
    return near_replies(pairs, sets.get, threshold)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(alphabet=st.sampled_from([*"ab cd x ", "数", "é", " "]), max_size=30), min_size=2, max_size=90),
    st.lists(st.tuples(st.integers(0, 89), st.integers(0, 89), st.sampled_from([0.8, 0.9, 1.0])), max_size=40),
    st.sampled_from([0.0, 0.3, 0.5, 1.0]),
    st.sampled_from(["word", "char"]),
    st.integers(1, 4),
)
def test_near_replies_keeps_the_pairs_ft404_keeps(
    texts: list[str], pairs: list[tuple[int, int, float]], threshold: float, kind: str, n: int
) -> None:
    # More texts than a batch of the shingler, records without a reply (no entry, blank).
    replies = {k: text for k, text in enumerate(texts * 2) if k % 7}
    wanted = [(i, j, sim) for i, j, sim in pairs if i < j]
    assert _near_replies_of(wanted, replies, threshold, kind, n) == _kept_by_reference(
        wanted, replies, threshold, kind, n
    )


#: 299 lines of InstructLab's SDG mix (tests/data/real/instructlab_training-0.16.2/SOURCES.md).
SDG = REAL / "instructlab_training-0.16.2" / "train_all_pruned_SDG_sample.jsonl"
SDG_INDICES = SDG.with_name("train_all_pruned_SDG_sample.indices.txt")


def test_near_replies_on_real_records_sharing_a_document() -> None:
    from ftdata.similarity.minhash import jaccard, reply_bytes
    from ftdata.similarity.text import scope_text

    every = _records(SDG)
    at = {index: k for k, index in enumerate(json.loads(SDG_INDICES.read_text()))}  # line of the whole file -> here
    # Three groups of questions, each group over one document, answered differently.
    chosen = (749, 750, 751, 1002, 1003, 1023, 13275, 15027, 15029, 15054, 15084, 15116, 23542)
    records = [every[at[k]] for k in chosen]
    sets = [record_shingles(scope_text(r, "conversation", casefold=True)) for r in records]
    pairs = [
        (i, j, sim)
        for i in range(len(sets))
        for j in range(i + 1, len(sets))
        if (sim := jaccard(sets[i], sets[j])) >= 0.8
    ]
    assert len(pairs) >= 10  # questions over shared documents, as the file has them
    replies = {k: reply_bytes(r).decode() for k, r in enumerate(records)}
    # A near copy of a reply, a copy without one, and an identical conversation.
    words = replies[3].split()
    replies[100] = " ".join([*words[:-1], "instead"])
    replies[102] = "a reply that shares nothing with the other"
    planted = [(3, 100, 0.95), (4, 101, 0.9), (5, 102, 1.0)]
    for threshold in (0.0, 0.5, 0.9):
        got = _near_replies_of(pairs + planted, replies, threshold, "word", 5)
        assert got == _kept_by_reference(pairs + planted, replies, threshold, "word", 5)
    assert _near_replies_of(pairs + planted, replies, 0.5, "word", 5) == planted
    assert _near_replies_of(pairs, replies, 0.0, "word", 5) == pairs


@pytest.mark.parametrize(("num_perm", "seed"), [(128, 0), (37, 5)])
def test_finished_values_carry_the_signatures_ft404_computes(num_perm: int, seed: int) -> None:
    from ftdata.rules.duplicates import _Sets
    from ftdata.similarity.minhash import set_signatures

    records = _records(REAL / "llamafactory-0.9.5" / "alpaca_en_demo.json")
    values = [v for k in range(0, len(records), 64) for v in _near_shingles.batch(records[k : k + 64]) if v]
    reference = _Sets(values)
    finished = _near_shingles.finish(values, num_perm=num_perm, seed=seed)
    assert len(finished) == len(values) > 500
    signed = _Sets(finished)
    expected = set_signatures([reference[k] for k in range(len(values))], num_perm=num_perm, seed=seed)
    assert np.array_equal(signed.signatures(num_perm, seed), expected)
    assert np.array_equal(reference.signatures(num_perm, seed), expected)
    assert all(np.array_equal(signed[k], reference[k]) for k in range(len(values)))
    # Some signed and some not, as a finish stage that failed on one shard leaves them.
    mixed = _Sets(finished[::2] + values[1::2])
    order = [*range(0, len(values), 2), *range(1, len(values), 2)]
    assert np.array_equal(mixed.signatures(num_perm, seed), expected[order])
    assert all(np.array_equal(mixed[k], reference[i]) for k, i in enumerate(order))
    assert _near_shingles.finish(finished, num_perm=num_perm, seed=seed) == finished


def test_the_pass_signs_ft404_values_where_the_shard_is_read() -> None:
    from ftdata.config import Settings
    from ftdata.engine.plan import compile_plan
    from ftdata.engine.scan import Shard, cut, scan_shard

    plan = compile_plan(Settings(select=["FT404"], options={"FT404": {"num_perm": 64, "seed": 3}}))
    offsets = cut(SDG, SDG.stat().st_size, 2)
    shards = [Shard(str(SDG), "sdg", a, b) for a, b in zip(offsets, [*offsets[1:], None], strict=True)]
    values = [v for shard in shards for v in scan_shard(shard, plan).collected["FT404"].values]
    records = _records(SDG)
    unsigned = [v for k in range(0, len(records), 64) for v in _near_shingles.batch(records[k : k + 64]) if v]
    assert len(values) == len(unsigned) > 250
    assert values == _near_shingles.finish(unsigned, num_perm=64, seed=3)
    assert all(v != u for v, u in zip(values, unsigned, strict=True))


def _ft404_jobs(path: Path, jobs: int) -> list[dict]:
    cmd = [sys.executable, "-m", "ftdata", "lint", str(path), "--isolated", "--select", "FT404", "--jobs", str(jobs)]
    cmd += ["--option", "FT404.num_perm=96", "--option", "FT404.keep=longest", "--output-format", "json"]
    done = subprocess.run([*cmd, "--no-cache"], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_ft404_findings_do_not_depend_on_where_signatures_are_computed(tmp_path: Path) -> None:
    # Large enough to be read in shards by worker processes with two jobs.
    big = tmp_path / "big.jsonl"
    big.write_bytes(SDG.read_bytes() * 70)  # real records, each 70 times
    assert big.stat().st_size > 33 * 1024 * 1024  # read in shards by two worker processes
    found = _ft404_jobs(big, 1)
    assert len(found) > 12_000
    assert _ft404_jobs(big, 2) == found


LINE_PIECES = [b'{"a": 1}', b"", b"   ", b"\r", b'{"b": "x"}\r', b"\xef\xbb\xbf", b"x" * 40, b" [1]", b"\t", b"z\r\r"]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.sampled_from(LINE_PIECES), max_size=12),
    bom=st.booleans(),
    ending=st.sampled_from([b"", b"\n", b"\r\n"]),
    max_line_bytes=st.sampled_from([4, 8, 39, 40, 41, 1000]),
    block_bytes=st.sampled_from([1, 2, 5, 64, 1 << 20]),
)
def test_record_blocks_hold_the_records_the_reader_reads(
    lines: list[bytes], bom: bool, ending: bytes, max_line_bytes: int, block_bytes: int
) -> None:
    from ftdata.io.jsonl import record_blocks

    data = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + ending
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lines.jsonl"
        path.write_bytes(data)
        read = io.read_jsonl(path, io.ReadStats(), source="x", max_line_bytes=max_line_bytes, parse="none")
        expected = [r.raw or b"" for r in read if type(r) is Record]
        found = []
        for block, starts, ends in record_blocks(path, max_line_bytes=max_line_bytes, block_bytes=block_bytes):
            found += [block[a:b] for a, b in zip(starts, ends, strict=True)]
    assert found == expected


def _assert_same_records(got: dict[int, Record], expected: dict[int, Record]) -> None:
    """Each record read as the full read gave it: value, bytes, place and problems."""
    for index, rec in got.items():
        other = expected[index]
        assert (rec.data, rec.raw, rec.line, rec.offset, rec.problems) == (
            other.data, other.raw, other.line, other.offset, other.problems,
        )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.sampled_from([*LINE_PIECES, b'{"text": "crlf"}\r', b'{"text": broken', b"[1, 2]"]), max_size=12),
    bom=st.booleans(),
    ending=st.sampled_from([b"", b"\n", b"\r\n"]),
    max_line_bytes=st.sampled_from([4, 8, 39, 40, 41, 1000]),
    wanted=st.sets(st.integers(0, 14), max_size=5),
)
def test_wanted_reads_give_what_a_full_read_gives(
    lines: list[bytes], bom: bool, ending: bytes, max_line_bytes: int, wanted: set[int]
) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + ending
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lines.jsonl"
        path.write_bytes(data)
        full = [r for r in io.read(path, io.ReadStats(), max_line_bytes=max_line_bytes) if type(r) is Record]
        some = io.records_at(io.read(path, io.ReadStats(), max_line_bytes=max_line_bytes, wanted=wanted), wanted)
    expected = {r.index: r for r in full if r.index in wanted}
    assert sorted(some) == sorted(expected)
    _assert_same_records(some, expected)


def test_wanted_reads_across_blocks_give_what_a_full_read_gives(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    pieces = [*LINE_PIECES, b'{"text": "crlf"}\r', b'{"text": broken', b'{"t": "' + b"y" * 5000 + b'"}']
    lines = [b'{"n": %d}' % k if k % 3 else rng.choice(pieces) for k in range(120_000)]
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines))  # a few MB: records cross the blocks read
    full = [r for r in io.read(path, io.ReadStats(), max_line_bytes=1000) if type(r) is Record]
    wanted = set(rng.sample(range(len(full)), 300)) | {0, len(full) - 1}
    some = io.records_at(io.read(path, io.ReadStats(), max_line_bytes=1000, wanted=wanted), wanted)
    assert sorted(some) == sorted(wanted)
    _assert_same_records(some, {index: full[index] for index in some})
    assert any(r.problems for r in some.values())
