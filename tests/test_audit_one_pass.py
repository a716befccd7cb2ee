"""The audit's figures are gathered in the lint pass: they equal the figures of a fresh
read of the file, whole or cut into shards; the audit opens no file more often than the
lint with the same rules; with a token rule and a tokenizer, tokens are counted once."""

from __future__ import annotations

import builtins
import dataclasses
import io as stdio
import itertools
import json
import os
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ftdata
from ftdata import io
from ftdata.auditing import FirstReadable, _with_lines, audit
from ftdata.config import Settings
from ftdata.engine.plan import compile_plan
from ftdata.engine.run import lint_file
from ftdata.engine.scan import shards
from ftdata.findings import Finding
from ftdata.formats import normalise
from ftdata.labels import label_records
from ftdata.measure import Figures, measure
from ftdata.records import Record
from ftdata.tokens import load_tokenizer, shared_counts
from tests.conftest import ROOT, TOKENIZER_DIR

SAMPLE = ROOT / "ftdata" / "samples" / "support_chat.jsonl"
REAL = [*sorted(p for p in (ROOT / "tests" / "data" / "real").rglob("*") if p.suffix in (".json", ".jsonl")), SAMPLE]
JSONL = [p for p in REAL if p.suffix == ".jsonl"]
TOKENS = [SAMPLE, ROOT / "tests" / "data" / "real" / "llamafactory-0.9.5" / "reason_tool_use_demo_50.jsonl"]
# Set by lint and findings, not by measuring records.
FROM_FINDINGS = ("duplicate_clusters", "cause_code", "cause_message", "cause_count", "warning")


def _reread(path: Path) -> list[Record]:
    """The records of ``path`` as a fresh read normalises them."""
    out = []
    for item in io.read(path, io.ReadStats()):
        if isinstance(item, Record):
            if type(item.data) is dict:
                normalise(item, None)
            out.append(item)
    return out


def _figures(stats: Any) -> dict[str, Any]:
    out = {k: v for k, v in stats.to_dict().items() if k not in FROM_FINDINGS}
    out["tokens_total"], out["tokens_by_role"] = stats.tokens_total, stats.tokens_by_role
    return out


def _sharded(path: Path, *folds: Any, **options: Any) -> Any:
    """Lint ``path`` cut into shards run by two worker processes, with ``folds``."""
    assert len(shards(path, str(path), path.stat().st_size, 8)) > 1, "the file must be cut into shards"
    plan = dataclasses.replace(compile_plan(Settings(**options)), folds=folds)
    return lint_file(path, plan, jobs=2, parallel_min_bytes=0)


def _mixed(tmp_path: Path) -> Path:
    """The sample with unreadable records and blank lines spread through it."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i % 9 == 0:
            out.append(json.dumps({"dialogue": [{"speaker": "A", "utterance": f"odd {i}"}]}))
        if i % 31 == 0:
            out.append("")
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_audit_figures_equal_measuring_a_fresh_read(path: Path) -> None:
    found = audit(path, max_length=100, stratify_by="metadata.category", config=False).stats[0]
    unreadable: list[int] = []
    expected = measure(_reread(path), str(path), max_length=100, stratify_by="metadata.category", unreadable=unreadable)
    assert found.records > 0
    assert _figures(found) == _figures(expected)


@pytest.mark.parametrize("path", JSONL, ids=lambda p: p.name)
def test_figures_of_shards_equal_those_of_the_whole_file(path: Path) -> None:
    _, stats = _sharded(path, partial(Figures, max_length=100, stratify_by="metadata.category"))
    [figures] = stats.folds
    unreadable: list[int] = []
    expected = measure(_reread(path), str(path), max_length=100, stratify_by="metadata.category", unreadable=unreadable)
    assert _figures(figures.stats(str(path))) == _figures(expected)
    assert figures.unreadable == unreadable


def test_unreadable_records_of_later_shards_keep_their_index(tmp_path: Path) -> None:
    path = _mixed(tmp_path)
    _, stats = _sharded(path, Figures)
    [figures] = stats.folds
    unreadable: list[int] = []
    expected = measure(_reread(path), str(path), unreadable=unreadable)
    assert len(unreadable) > 10
    assert figures.unreadable == unreadable
    assert _figures(figures.stats(str(path))) == _figures(expected)
    whole = audit(path, config=False).stats[0]
    assert (whole.cause_code, whole.cause_count) != (None, 0)
    assert whole.unreadable == len(unreadable)


@pytest.mark.parametrize("path", TOKENS, ids=lambda p: p.name)
def test_exact_token_figures_of_shards_equal_a_fresh_count(path: Path) -> None:
    tok = str(TOKENIZER_DIR)
    _, stats = _sharded(path, partial(Figures, tokenizer=tok, max_length=64))
    expected = measure(_reread(path), str(path), tokenizer=tok, max_length=64)
    assert not expected.tokens_estimated
    assert _figures(stats.folds[0].stats(str(path))) == _figures(expected)
    assert _figures(audit(path, tokenizer=tok, max_length=64, config=False).stats[0]) == _figures(expected)


def test_label_view_comes_from_the_pass_even_past_the_first_shard(tmp_path: Path) -> None:
    # The first shards hold no readable record: the view's records come from later ones.
    good = SAMPLE.read_text(encoding="utf-8").splitlines()
    odd = [json.dumps({"dialogue": [{"speaker": "A", "utterance": "x" * 200}]})] * 60
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join([*odd, "", *good]) + "\n", encoding="utf-8")
    _, stats = _sharded(path, partial(FirstReadable, 5))
    kept = _with_lines(stats.folds[0], str(path))
    expected = [r for r in _reread(path) if r.readable][:5]
    assert [(r.index, r.line) for r in kept] == [(r.index, r.line) for r in expected]
    assert kept[0].line == 62  # after 60 unreadable lines and a blank one
    tok = load_tokenizer(str(TOKENIZER_DIR))
    assert label_records(kept, tok, 5, max_length=64) == label_records(expected, tok, 5, max_length=64)


class _Opens:
    """Counts the opens of one file through Python's ``open`` (not ftdata's code)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.path, self.count, real = os.path.realpath(path), 0, stdio.open

        def counting(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, str | os.PathLike) and os.path.realpath(file) == self.path:
                self.count += 1
            return real(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", counting)
        monkeypatch.setattr(stdio, "open", counting)

    def during(self, run: Any) -> int:
        self.count = 0
        run()
        return self.count


@pytest.mark.parametrize(
    "options",
    [{}, {"tokenizer": str(TOKENIZER_DIR), "max_length": 64, "extend_select": ["FT501", "FT502", "FT503"]}],
    ids=["default-rules", "token-rules"],
)
def test_the_audit_reads_a_file_no_more_often_than_lint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    path = _mixed(tmp_path)
    opens = _Opens(monkeypatch, path)
    linted = opens.during(lambda: ftdata.lint(path, config=False, **options))
    audited = opens.during(lambda: audit(path, config=False, show_labels=3, **options))
    assert linted >= 1
    assert audited == linted


def test_tokens_are_counted_once_with_a_token_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    tok = str(TOKENIZER_DIR)
    cls = type(load_tokenizer(tok))
    encoded = [0]
    real = cls.__call__

    def counting(self: Any, text: Any, *args: Any, **kwargs: Any) -> Any:
        encoded[0] += len(text) if isinstance(text, list) else 1
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(cls, "__call__", counting)  # the tokenizer's class, not ftdata's code
    rules = ["FT501", "FT502", "FT503"]

    def texts(run: Any) -> tuple[int, Any]:
        encoded[0] = 0
        result = run()
        return encoded[0], result

    alone, linted = texts(lambda: ftdata.lint(SAMPLE, tokenizer=tok, max_length=64, extend_select=rules, config=False))
    figures, _ = texts(lambda: audit(SAMPLE, tokenizer=tok, max_length=64, config=False, show_labels=0))
    both, audited = texts(
        lambda: audit(SAMPLE, tokenizer=tok, max_length=64, extend_select=rules, config=False, show_labels=0)
    )
    assert alone > 0
    assert both == figures <= alone
    assert [f for f in audited.findings if f.code in rules] == [f for f in linted.findings if f.code in rules]
    assert any(f.code == "FT501" for f in audited.findings)

    # In shards, the counts made in the workers come back with the figures: the rule
    # in this process encodes nothing.
    encoded[0] = 0
    with shared_counts():
        found, _ = _sharded(
            SAMPLE,
            partial(Figures, tokenizer=tok, home=os.getpid()),
            tokenizer=tok,
            max_length=64,
            extend_select=tuple(rules),
        )
    assert encoded[0] == 0
    assert sorted((f for f in found if f.code in rules), key=Finding.sort_key) == [
        f for f in linted.findings if f.code in rules
    ]


_ROWS = st.lists(
    st.one_of(
        st.builds(
            lambda q, a, s: {
                "messages": [
                    *([{"role": "system", "content": s}] if s else []),
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": a},
                ]
            },
            st.text(min_size=1, max_size=30),
            st.text(min_size=1, max_size=30),
            st.sampled_from(["", "Be brief.", "Be kind."]),
        ),
        st.just({"dialogue": []}),
        st.just([1, 2]),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(_ROWS, st.lists(st.integers(0, 40), max_size=4))
def test_merged_shards_give_the_figures_of_one_pass(rows: list[Any], cuts: list[int]) -> None:
    def fold(start: int, end: int) -> Figures:
        figures = Figures(max_length=20)
        for i in range(start, end):  # a shard counts its records from 0
            rec = Record(i - start, rows[i])
            if type(rows[i]) is dict:
                normalise(rec, None)
            figures.add(rec)
        return figures

    bounds = [0, *sorted(min(c, len(rows)) for c in cuts), len(rows)]
    parts = [fold(a, b) for a, b in itertools.pairwise(bounds)]
    total = parts[0]
    for part in parts[1:]:
        total.merge(part)
    whole = fold(0, len(rows))
    assert total.unreadable == whole.unreadable
    assert _figures(total.stats("x")) == _figures(whole.stats("x"))
