"""The audit's preference figures: how often the chosen reply of a pair is the longer one
(FT706's measure) and the label balance of KTO data with the weights TRL asks for (FT705's),
checked through `ftdata audit` on real LLaMA-Factory files against counts made here with
plain Python over the JSON, and gathered in the one lint pass."""

from __future__ import annotations

import dataclasses
import json
import statistics
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftdata
from ftdata.auditing import audit
from ftdata.config import Settings
from ftdata.engine.plan import compile_plan
from ftdata.engine.run import lint_file
from ftdata.engine.scan import shards
from ftdata.rules.preference import LabelBalance, PairFigures
from tests.conftest import REAL, TOKENIZER_DIR, run_cli
from tests.test_audit_one_pass import _Opens, _reread

DPO_ZH = REAL / "dpo_zh_demo.json"


def _text(value: Any) -> str:
    """A turn's text as written: a string, or typed parts holding ``value``/``text``."""
    if isinstance(value, str):
        return value
    return "".join(part.get("value", part.get("text", "")) for part in value)


def _replies(path: Path) -> list[tuple[str, str]]:
    """(chosen, rejected) reply texts of every pair, read straight from the JSON: LLaMA-Factory's
    ShareGPT turns (`chosen`/`rejected` objects) or its `chosen_messages`/`rejected_messages`
    conversations (the reply is the last turn)."""
    text = path.read_text(encoding="utf-8")
    rows = json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines() if line]
    out = []
    for row in rows:
        if "chosen_messages" in row:
            out.append((_text(row["chosen_messages"][-1]["content"]), _text(row["rejected_messages"][-1]["content"])))
        else:
            out.append((row["chosen"]["value"], row["rejected"]["value"]))
    return out


def _expected_bias(lengths: list[tuple[int, int]]) -> dict[str, Any]:
    differ = [(c, r) for c, r in lengths if c != r]
    return {
        "pairs": len(lengths),
        "equal_length": len(lengths) - len(differ),
        "chosen_longer": sum(c > r for c, r in differ),
        "chosen_longer_share": round(sum(c > r for c, r in differ) / len(differ), 4),
        "median_length_ratio": round(statistics.median(c / max(r, 1) for c, r in differ), 4),
    }


def _audit(path: Path, tmp_path: Path, *args: str) -> tuple[dict[str, Any], str, str]:
    """Run `ftdata audit` on ``path``: its JSON figures of the file, the HTML page, the terminal."""
    out, page = tmp_path / "audit.json", tmp_path / "audit.html"
    done = run_cli("audit", path, "--json", out, "--html", page, *args)
    assert done.returncode == 0, done.stderr
    [stats] = json.loads(out.read_text(encoding="utf-8"))["stats"]
    return stats, page.read_text(encoding="utf-8"), done.stdout


PAIRS = [REAL / "dpo_en_demo.json", DPO_ZH, REAL / "v1_dpo_demo.jsonl"]


@pytest.mark.parametrize("path", PAIRS, ids=lambda p: p.name)
def test_the_audit_measures_the_length_bias_of_real_preference_files(path: Path, tmp_path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.name} is not in tests/data/real (copy it from the llamafactory-0.9.5 sdist)")
    replies = _replies(path)
    stats, page, terminal = _audit(path, tmp_path)
    figures = stats["preference"]
    assert figures == {
        **_expected_bias([(len(c), len(r)) for c, r in replies]),
        "tokens": None,
        "warning": None,
    }
    assert "kto" not in stats
    assert "<h3>Preference pairs: length bias</h3>" in page
    assert "Unpaired preference (KTO)" not in page
    shown = figures["pairs"] - figures["equal_length"]
    assert f"{figures['chosen_longer']:,} of {shown:,} pairs ({figures['chosen_longer_share']:.0%})" in terminal


def test_with_a_tokenizer_the_bias_is_measured_in_tokens_too(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    path = REAL / "dpo_en_demo.json"
    tok = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    count = lambda text: len(tok(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    stats, page, terminal = _audit(path, tmp_path, "--tokenizer", str(TOKENIZER_DIR), "--show-labels", "0")
    tokens = stats["preference"]["tokens"]
    assert tokens == _expected_bias([(count(c), count(r)) for c, r in _replies(path)])
    assert tokens != {k: stats["preference"][k] for k in tokens}  # another figure than by characters
    assert "<th>tokens</th>" in page
    assert f"by tokens {tokens['chosen_longer_share']:.0%}" in terminal


def test_the_audit_counts_the_labels_of_a_real_kto_file(tmp_path: Path) -> None:
    path = REAL / "kto_en_demo.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    good = sum(1 for r in rows if r["label"] is True)
    bad = sum(1 for r in rows if r["label"] is False)
    stats, page, terminal = _audit(path, tmp_path)
    assert (good, bad) == (150, 150)
    assert stats["kto"] == {
        "desirable": good,
        "undesirable": bad,
        "ratio": 1.0,
        "desirable_weight": 1.0,
        "undesirable_weight": 1.0,
        "weighted_ratio": 1.0,
        "not_boolean": 0,
        "warning": None,
    }
    assert "preference" not in stats
    assert "<h3>Unpaired preference (KTO): labels</h3>" in page
    assert "Preference pairs: length bias" not in page
    assert f"{good:,} desirable, {bad:,} undesirable; desirable_weight=1, undesirable_weight=1" in terminal


def test_files_of_other_types_show_neither_section(tmp_path: Path) -> None:
    stats, page, terminal = _audit(REAL / "alpaca_en_demo.json", tmp_path)
    assert "preference" not in stats
    assert "kto" not in stats
    assert "length bias" not in page
    assert "Unpaired preference (KTO)" not in page
    assert "chosen reply longer" not in terminal
    assert "KTO labels" not in terminal


def _pairs(n_longer: int, n_shorter: int) -> list[dict[str, Any]]:
    """TRL preference rows built from real replies: the first ``n_longer`` with the longer
    reply chosen."""
    replies = [(c, r) for c, r in _replies(REAL / "dpo_en_demo.json") if len(c) != len(r)]
    rows = []
    for i, (a, b) in enumerate(replies[: n_longer + n_shorter]):
        long, short = (a, b) if len(a) > len(b) else (b, a)
        chosen, rejected = (long, short) if i < n_longer else (short, long)
        rows.append({"prompt": f"Question {i}?", "chosen": chosen, "rejected": rejected})
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_chosen_longer_in_95_percent_of_pairs_gives_ft706s_warning(tmp_path: Path) -> None:
    path = _write(tmp_path / "biased.jsonl", _pairs(38, 2))
    stats, page, terminal = _audit(path, tmp_path)
    figures = stats["preference"]
    assert (figures["pairs"], figures["chosen_longer"], figures["chosen_longer_share"]) == (40, 38, 0.95)
    [lint] = [f for f in ftdata.lint(path, config=False).findings if f.code == "FT706"]
    assert figures["warning"] == lint.message
    assert "(95%)" in lint.message
    assert f"FT706: {lint.message}" in page
    assert "(95%), median length ratio" in terminal
    assert "(FT706)" in terminal

    # FT706's own options decide: a higher threshold in the configuration, no warning.
    (tmp_path / "pyproject.toml").write_text("[tool.ftdata.rules.FT706]\nmax_share = 0.96\n", encoding="utf-8")
    stats, page, terminal = _audit(path, tmp_path)
    assert stats["preference"]["warning"] is None
    assert stats["preference"]["chosen_longer"] == 38
    assert "FT706" not in page
    assert "(FT706)" not in terminal


def _trl_accepts(desirable: int, undesirable: int, d_weight: float, u_weight: float) -> bool:
    """Whether TRL's KTOTrainer takes these weights without its warning: its own check
    (Eq. 8 of the KTO paper), as it computes it: a weighted ratio of 1 to 1.33 reached by
    either weight, with the bounds rounded to two decimals."""
    if desirable == undesirable:
        return True
    d_low = round(undesirable * u_weight / desirable, 2)
    d_high = round(undesirable * u_weight / desirable * 1.33, 2)
    u_low = round(desirable * d_weight / undesirable / 1.33, 2)
    u_high = round(desirable * d_weight / undesirable, 2)
    return d_low <= d_weight <= d_high or u_low <= u_weight <= u_high


@pytest.mark.parametrize(("good", "bad"), [(45, 5), (5, 45), (60, 7)])
def test_an_unbalanced_kto_file_gets_the_weights_trl_asks_for(tmp_path: Path, good: int, bad: int) -> None:
    rows = [{"prompt": f"Q{i}?", "completion": f"A{i}.", "label": i < good} for i in range(good + bad)]
    rows += [{"prompt": "Q?", "completion": "A.", "label": "false"}, {"prompt": "Q?", "completion": "B.", "label": 1}]
    path = _write(tmp_path / "kto.jsonl", rows)
    stats, page, terminal = _audit(path, tmp_path)
    kto = stats["kto"]
    assert (kto["desirable"], kto["undesirable"], kto["not_boolean"]) == (good, bad, 2)
    assert kto["ratio"] == round(good / bad, 4)
    assert not _trl_accepts(good, bad, 1, 1)
    assert _trl_accepts(good, bad, kto["desirable_weight"], kto["undesirable_weight"])
    # The rarer kind's weight is raised; the other stays 1.
    assert (kto["desirable_weight"] == 1) == (good > bad)
    assert (kto["undesirable_weight"] == 1) == (good < bad)
    [lint] = [f for f in ftdata.lint(path, config=False).findings if f.code == "FT705"]
    assert kto["warning"] == lint.message
    rare = "undesirable_weight" if good > bad else "desirable_weight"
    assert f"{rare}={kto[rare]:g}" in lint.message
    assert f"FT705: {lint.message}" in page
    assert "label not a boolean" in page
    assert "2 not a boolean" in terminal
    assert "(FT705)" in terminal


@given(st.integers(1, 10**6), st.integers(1, 10**6), st.booleans())
def test_the_recommended_weights_always_satisfy_trl(good: int, bad: int, raise_rarer: bool) -> None:
    weights = LabelBalance(good, bad).weights(raise_rarer=raise_rarer)
    assert weights is not None
    assert _trl_accepts(good, bad, *weights)
    exact = Fraction(weights[0]).limit_denominator(10**9) * good / (Fraction(weights[1]).limit_denominator(10**9) * bad)
    assert 1 <= exact <= Fraction(4, 3)  # the paper's range, the two-digit weights read as written
    assert (weights == (1.0, 1.0)) == (1 <= Fraction(good, bad) <= Fraction(4, 3))


def test_the_audit_reads_a_preference_file_no_more_often_than_lint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "pairs.jsonl", _pairs(30, 10))
    opens = _Opens(monkeypatch, path)
    linted = opens.during(lambda: ftdata.lint(path, config=False))
    audited = opens.during(lambda: audit(path, config=False))
    assert linted >= 1
    assert audited == linted
    assert audit(path, config=False).pairs[str(path)]["preference"]["chosen_longer"] == 30


@pytest.mark.parametrize("tokenizer", [None, str(TOKENIZER_DIR)], ids=["characters", "tokens"])
def test_figures_of_shards_equal_those_of_the_whole_file(tmp_path: Path, tokenizer: str | None) -> None:
    rows: list[dict[str, Any]] = _pairs(60, 40)
    rows += [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}], "label": k}
        for k in (True, False, True, "false")
    ]
    path = _write(tmp_path / "mixed.jsonl", [*rows, {"odd": 1}])
    assert len(shards(path, str(path), path.stat().st_size, 8)) > 1, "the file must be cut into shards"
    plan = dataclasses.replace(compile_plan(Settings()), folds=(partial(PairFigures, tokenizer),))
    _, stats = lint_file(path, plan, jobs=2, parallel_min_bytes=0)
    [sharded] = stats.folds
    whole = PairFigures(tokenizer)
    for rec in _reread(path):
        whole.add(rec)
    assert sharded.figures({}) == whole.figures({})
    assert sharded.figures({})["kto"]["not_boolean"] == 1
    assert (sharded.figures({})["preference"]["tokens"] is None) == (tokenizer is None)
