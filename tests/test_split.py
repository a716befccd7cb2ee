"""Splits: a partition of the input, deterministic, groups kept whole, sizes met by records,
rare strata handled; the leakage audit; the CLI; interop with datasets and pandas."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ftdata
from ftdata.curation.split import split, write_split
from ftdata.outputs import TEMP_PREFIX, OutputSet
from tests.conftest import GOLDEN_DIR, ROOT, check_golden, run_cli

SAMPLE = ROOT / "ftdata" / "samples" / "support_chat.jsonl"
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _record(conversation: int, turn: int, category: str) -> dict:
    return {
        "messages": [
            {"role": "user", "content": f"conversation {conversation} question {turn}"},
            {"role": "assistant", "content": f"answer {turn} for conversation {conversation}"},
        ],
        "metadata": {"conversation": conversation, "category": category},
    }


@st.composite
def datasets(draw: st.DrawFn) -> list[bytes]:
    lines = []
    for k in range(draw(st.integers(1, 80))):
        if draw(st.integers(0, 20)) == 0:
            lines.append(b'{"messages": [oops]}')
            continue
        conversation = draw(st.integers(0, 25))
        category = draw(st.sampled_from(["a", "a", "a", "b", "b", "c"]))
        lines.append(json.dumps(_record(conversation, k, category)).encode())
    return lines


@SETTINGS
@given(lines=datasets(), seed=st.integers(0, 3), test=st.booleans())
def test_a_split_is_a_deterministic_partition_that_keeps_groups_whole(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], seed: int, test: bool
) -> None:
    folder = tmp_path_factory.mktemp("split")
    source = folder / "data.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    sizes = {"train": 0.7, "eval": 0.15, "test": 0.15} if test else {"train": 0.85, "eval": 0.15}
    kwargs = {"sizes": sizes, "seed": seed, "stratify_by": "metadata.category", "group_by": "metadata.conversation"}
    result = split(source, **kwargs)
    paths = write_split(result, folder / "out")
    # a partition: every record exactly once, in a split or in rejected.jsonl
    outputs = {name: paths[name].read_bytes().split(b"\n")[:-1] for name in result.names}
    rejected = [json.loads(x) for x in paths["rejected"].read_bytes().splitlines()]
    assert all(r["schema"] == "ftdata.rejects/1" and r["reason"] == "unreadable" for r in rejected)
    placed = [line for name in result.names for line in outputs[name]] + [r["raw"].encode() for r in rejected]
    assert Counter(placed) == Counter(lines)
    # groups never straddle splits
    where: dict[int, set[str]] = {}
    for name in result.names:
        for line in outputs[name]:
            where.setdefault(json.loads(line)["metadata"]["conversation"], set()).add(name)
    assert all(len(names) == 1 for names in where.values())
    # deterministic: the same input, options and seed give the same bytes
    again = write_split(split(source, **kwargs), folder / "again")
    for name in [*result.names, "rejected", "manifest"]:
        if name == "manifest":
            continue
        assert again[name].read_bytes() == paths[name].read_bytes()
    # sizes within one group of target, per stratum
    biggest = max(
        Counter(json.loads(x)["metadata"]["conversation"] for x in lines if b"oops" not in x).values(), default=0
    )
    for stratum, placed_counts in result.strata.items():
        n = sum(placed_counts.values())
        if n >= len(result.names):
            for name, share in sizes.items():
                assert abs(placed_counts[name] - share * n) <= biggest + 1, (stratum, placed_counts)


def test_rare_strata_go_to_train_with_a_warning() -> None:
    records = [_record(i, i, "common") for i in range(40)] + [_record(100, 0, "rare")]
    result = split(records, stratify_by="metadata.category")
    rare = [i for i, r in enumerate(records) if r["metadata"]["category"] == "rare"]
    assert [result.assignment[i] for i in rare] == ["train"]
    assert any("'rare' has 1 record(s), too few to split" in w for w in result.warnings)
    assert "eval: metadata.category values in train but not in this file: 'rare' (FT606)" in result.warnings


def test_numbers_are_binned_and_callables_stratify() -> None:
    records = [{"prompt": f"q{i}", "completion": "x" * i, "score": i} for i in range(100)]
    result = split(records, stratify_by="score", bins=4)
    assert sorted(result.strata) == ["q1", "q2", "q3", "q4"]
    assert all(counts["eval"] > 0 for counts in result.strata.values())
    by_length = split(records, stratify_by=lambda r: len(r.data["completion"]) > 50)
    assert sorted(by_length.strata) == ["False", "True"]


def test_the_eval_share_and_small_eval_warnings() -> None:
    records = [_record(i, i, "a") for i in range(50)]
    result = split(records, sizes={"train": 0.5, "eval": 0.5})
    assert any(w.startswith("eval: this evaluation file holds 50.0% of the 50 records") for w in result.warnings)
    assert "eval: this held-out file has 25 records, fewer than 100 (FT605)" in result.warnings
    with pytest.raises(ValueError, match="add up to 1"):
        split(records, sizes={"train": 0.5, "eval": 0.2})


def test_near_duplicate_groups_make_a_split_without_leaks(tmp_path: Path) -> None:
    result = split(SAMPLE, stratify_by="metadata.category", group_by=["prompt", "near-duplicates"], seed=0)
    paths = write_split(result, tmp_path)
    report = ftdata.leakage([paths["train"], paths["eval"]])
    assert not report.failed(), report.to_dicts()
    random = split(SAMPLE, seed=0, group_by="none")
    assert any("eval may share prompts with train" in w for w in random.warnings)
    paths = write_split(random, tmp_path / "random")
    assert ftdata.leakage([paths["train"], paths["eval"]]).failed()
    assert random.leaks, "the split's own audit reports the leaks it wrote"
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["leakage"]["pairs"] == len(random.leaks) > 0


def test_the_default_grouping_is_by_prompt(tmp_path: Path) -> None:
    result = split(SAMPLE, seed=0)
    assert result.options["group_by"] == "prompt"
    paths = write_split(result, tmp_path)
    assert result.leaks == []
    assert not ftdata.leakage([paths["train"], paths["eval"]], methods=["exact"]).failed()


def test_manifest_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(SAMPLE, tmp_path / "support_chat.jsonl")
    monkeypatch.chdir(tmp_path)
    result = split(
        "support_chat.jsonl",
        sizes={"train": 0.8, "eval": 0.1, "test": 0.1},
        stratify_by="metadata.category",
        group_by="prompt",
        seed=7,
    )
    paths = write_split(result, "out")
    check_golden(GOLDEN_DIR / "split-manifest.json", paths["manifest"].read_text())


def test_an_interrupted_write_leaves_no_partial_output(tmp_path: Path) -> None:
    targets = {"train": tmp_path / "train.jsonl", "eval": tmp_path / "eval.jsonl"}

    def interrupted() -> None:
        with OutputSet(targets, tmp_path / "manifest.json") as out:
            out.write("train", b"half written\n")
            assert any(p.name.startswith(TEMP_PREFIX) for p in tmp_path.iterdir())
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted()
    assert list(tmp_path.iterdir()) == []


def test_cli_split_and_leak(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "data.jsonl")
    made = run_cli(
        "split",
        "data.jsonl",
        "-o",
        "out",
        "--eval-size",
        "0.15",
        "--test-size",
        "0.1",
        "--stratify-by",
        "metadata.category",
        "--group-by",
        "prompt",
        "--group-by",
        "near-duplicates",
        cwd=tmp_path,
    )
    assert made.returncode == 1, made.stderr  # the sample's one unreadable record is rejected, not split
    assert "1 records could not be read" in made.stderr
    assert "Split 109 records" in made.stderr
    assert "warning: eval: this held-out file has" in made.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert set(manifest["outputs"]) == {"train", "eval", "test", "rejected"}
    assert manifest["outputs"]["rejected"]["records"] == 1
    clean = run_cli("leak", "out/train.jsonl", "out/eval.jsonl", "out/test.jsonl", cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout
    assert clean.stdout.strip() == "No leaks."
    every = (tmp_path / "data.jsonl").read_text().splitlines()
    (tmp_path / "train.jsonl").write_text("\n".join(every[:80]) + "\n")
    (tmp_path / "eval.jsonl").write_text("\n".join(every[80:]) + "\n")
    incomplete = run_cli("leak", "train.jsonl", "eval.jsonl", cwd=tmp_path)
    assert incomplete.returncode == 2, "a broken line in train: the audit could not see every record"
    assert "No leaks." not in incomplete.stdout
    assert "could not be read" in incomplete.stderr
    assert "FT001" in incomplete.stderr
    lines = [line for line in every if _parses(line)]
    assert len(lines) == len(every) - 1
    (tmp_path / "train.jsonl").write_text("\n".join(lines[:79]) + "\n")
    (tmp_path / "eval.jsonl").write_text("\n".join(lines[79:] + lines[:3]) + "\n")
    leaked = run_cli("leak", "train.jsonl", "eval.jsonl", "--output-format", "json", cwd=tmp_path)
    assert leaked.returncode == 1
    pairs = json.loads(leaked.stdout)["leaks"]
    assert {(p["b"]["line"], p["a"]["line"], p["method"]) for p in pairs} >= {
        (31, 1, "exact"),
        (32, 2, "exact"),
        (33, 3, "exact"),
    }
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ftdata.splits]\nfiles = ["train.jsonl", "eval.jsonl"]\nmethods = ["exact"]\n'
    )
    configured = run_cli("leak", cwd=tmp_path)
    assert configured.returncode == 1
    assert "exact" in configured.stdout


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def test_datasets_and_pandas_interop() -> None:
    import pandas as pd
    from datasets import Dataset

    rows = [_record(i, i, "a" if i % 3 else "b") for i in range(60)]
    frame = pd.DataFrame(rows)
    from_pandas = split(frame, stratify_by="metadata.category")
    from_datasets = split(Dataset.from_list(rows), stratify_by="metadata.category")
    from_list = split(rows, stratify_by="metadata.category")
    assert from_pandas.assignment == from_list.assignment == from_datasets.assignment
    dd = from_list.to_datasets()
    assert sorted(dd) == ["eval", "train"]
    assert dd["train"].num_rows + dd["eval"].num_rows == 60
    assert dd["eval"][0]["messages"][0]["role"] == "user"


def test_cli_split_of_a_file_with_no_readable_record_rejects_them_all(tmp_path: Path) -> None:
    """GSM8K's question/answer layout is no supported format without --map: every record
    goes to the rejects with its reason, the splits are empty, and the run exits 1."""
    source = ROOT / "tests" / "data" / "layouts" / "gsm8k_train.jsonl"
    made = run_cli("split", str(source), "-o", "out", cwd=tmp_path)
    assert made.returncode == 1, made.stderr
    assert "Split 0 records in 0 groups: train 0 (0.0%, target 85%)" in made.stderr
    lines = source.read_text(encoding="utf-8").splitlines()
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejected] == list(range(1, len(lines) + 1))
    assert (tmp_path / "out" / "train.jsonl").read_bytes() == b""
