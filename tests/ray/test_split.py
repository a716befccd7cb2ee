"""``ftdata split`` on Ray writes the split files and manifest of a local run, byte for
byte, for 1, 2 and 4 blocks; a block whose file changed is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

from ftdata.curation.grouping import stratum_key
from ftdata.curation.split import split
from ftdata.distributed.job import Block, stamp_of
from ftdata.distributed.split import Reading, read_block
from ftdata.outputs import InputChangedError
from tests.conftest import REAL, run_cli


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _write(source: Path, folder: Path, **options: Any) -> dict[str, bytes]:
    split(source, **options).write(folder)
    return _files(folder)


CASES = [
    {},
    {"group_by": ["duplicates", "near-duplicates"], "stratify_by": "system", "seed": 7, "threshold": 0.6},
    {"group_by": "none", "stratify_by": "format", "sizes": {"train": 0.7, "eval": 0.2, "test": 0.1}, "seed": 3},
]


@pytest.mark.parametrize("options", CASES, ids=["default", "near-duplicates", "three-way"])
def test_split_on_ray_is_byte_identical_for_any_number_of_blocks(
    cluster: Any, planted: Path, tmp_path: Path, options: dict[str, Any]
) -> None:
    expected = _write(planted, tmp_path / "local", **options)
    assert json.loads(expected["manifest.json"])["counts"]["rejected"] == 3  # the unreadable lines
    assert expected["eval.jsonl"]
    for blocks in (1, 2, 4):
        got = _write(planted, tmp_path / f"ray{blocks}", engine="ray", blocks=blocks, **options)
        assert got == expected, blocks


def _metadata_file(path: Path) -> Path:
    """Conversations of several turns with a numeric stratum, a blank line and a bad record."""
    lines = []
    for k in range(300):
        conversation = k // 3
        record = {
            "messages": [
                {"role": "user", "content": f"question {k % 40} of topic {conversation % 7}"},
                {"role": "assistant", "content": f"answer {k}"},
            ],
            "metadata": {"conversation": conversation, "length": (k * 37) % 101},
        }
        lines.append(json.dumps(record))
        if k == 150:
            lines.extend(["", '{"messages": "not a list"}'])
    path.write_text("\n".join(lines) + "\n")
    return path


def test_split_on_ray_with_field_groups_numeric_strata_and_labels(cluster: Any, tmp_path: Path) -> None:
    source = _metadata_file(tmp_path / "meta.jsonl")
    labels = [k % 17 for k in range(301)]
    cases = [
        {"group_by": "metadata.conversation", "stratify_by": "metadata.length", "bins": 4},
        {"group_by": ["prompt", "metadata.conversation"], "seed": 11, "min_per_stratum": 5},
        {"group_by": labels, "stratify_by": "metadata.length"},
        {
            "group_by": lambda rec: len(rec.messages[0].text) % 5,
            "stratify_by": lambda rec: rec.data["metadata"]["length"] % 3,
        },
    ]
    for n, options in enumerate(cases):
        expected = _write(source, tmp_path / f"local{n}", **options)
        for blocks in (2, 4):
            got = _write(source, tmp_path / f"ray{n}-{blocks}", engine="ray", blocks=blocks, **options)
            assert got == expected, (n, blocks)


@pytest.mark.parametrize("name", ["v1_sft_demo.jsonl", "alpaca_en_demo.json"])
def test_split_on_ray_of_real_files(cluster: Any, tmp_path: Path, name: str) -> None:
    source = REAL / name
    expected = _write(source, tmp_path / "local", seed=5)
    assert _write(source, tmp_path / "ray", seed=5, engine="ray", blocks=3) == expected


def test_cli_split_engine_ray_writes_the_local_files(cluster: Any, planted: Path, tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    args = ("split", planted, "--eval-size", "0.2", "--group-by", "duplicates", "--seed", "2")
    local = run_cli(*args, "-o", tmp_path / "local")
    remote = run_cli(*args, "-o", tmp_path / "ray", "--engine", "ray", "--address", address, "--blocks", "3")
    assert remote.returncode == local.returncode == 1  # the unreadable lines
    assert remote.stderr.replace(str(tmp_path / "ray"), "OUT") == local.stderr.replace(str(tmp_path / "local"), "OUT")
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")


def test_a_block_of_a_file_changed_since_the_run_started_is_refused(tmp_path: Path) -> None:
    source = _metadata_file(tmp_path / "meta.jsonl")
    reading = Reading(str(source), None, ("prompt",), stratum_key("metadata.length"), 0, "prompt")
    block = Block(0, 0, None, stamp=stamp_of(source))
    columns, lines = read_block(block, reading)
    assert (len(columns.lines), lines) == (301, 302)
    with source.open("ab") as f:
        f.write(b'{"messages": [{"role": "user", "content": "late"}]}\n')
    os.utime(source, ns=(0, 0))  # a new version even where mtimes are coarse
    with pytest.raises(InputChangedError, match="changed"):
        read_block(block, reading)


def test_split_on_ray_needs_a_file(cluster: Any) -> None:
    with pytest.raises(ValueError, match="reads a file"):
        split([{"messages": [{"role": "user", "content": "hi"}]}], engine="ray")
