"""``ftdata dedup --method minhash`` on Ray applies FT404's reply check as the local run
does: different questions over one long shared document, answered differently, are no
duplicates; the bytes of both runs are the same for every ``answer_threshold``."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

from ftdata.curation.dedup import dedup as local_dedup
from ftdata.distributed import dedup
from ftdata.distributed.workdir import WorkDirError
from ftdata.executors.ray import RayExecutor
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
#: 299 lines of the SDG mix: the ``SHARED`` records, every 97th and the first eight with a
#: long document (tests/data/real/instructlab_training-0.16.2/SOURCES.md).
SDG = ROOT / "tests/data/real/instructlab_training-0.16.2/train_all_pruned_SDG_sample.jsonl"
#: Records of the SDG file that share a long document with another and answer another
#: question about it: near duplicates of the conversation, not of the reply.
SHARED = (
    749, 750, 751, 1002, 1003, 1023, 5764, 5766, 6026, 6028, 10085, 11492, 11522, 13275, 13306, 13525, 13615,
    14055, 14154, 14818, 14819, 15027, 15029, 15037, 15054, 15084, 15116, 16028, 16032, 16036, 16049, 16115,
    16279, 16286, 16331, 17037, 17142, 23542, 23580,
)  # fmt: skip
NAMES = ("kept", "rejected", "clusters", "manifest")


def _words(row: dict[str, Any], role: str) -> list[str]:
    return " ".join(m["content"] for m in row["messages"] if m["role"] == role).split()


def _with_reply(row: dict[str, Any], reply: str | None) -> dict[str, Any]:
    messages = [m for m in row["messages"] if m["role"] != "assistant"]
    if reply is not None:
        messages.append({"role": "assistant", "content": reply})
    return {**row, "messages": messages}


def _long_document(row: dict[str, Any]) -> bool:
    """A reply of 40 words or more to a question four times as long: its near copies stay
    near copies of the conversation."""
    reply = len(_words(row, "assistant"))
    return reply >= 40 and len(_words(row, "user")) >= 4 * reply


def shared_document_file(path: Path) -> Path:
    """Real SDG records (the sample: the ``SHARED`` ones, every 97th and the first eight
    with a long document) and near copies of those eight: one reply word changed, a reply
    grown by a third of another record's reply, and the question without its reply."""
    every = [json.loads(line) for line in SDG.read_bytes().splitlines()]
    indices = json.loads(SDG.with_name("train_all_pruned_SDG_sample.indices.txt").read_text())
    assert set(SHARED) <= set(indices)
    long = [k for k, row in enumerate(every) if _long_document(row)][:8]
    assert len(long) == 8  # the file still has what the copies are made from
    rows = list(every)
    sources = [every[k] for k in long]
    planted = []
    for k, row in enumerate(sources):
        reply = _words(row, "assistant")
        other = _words(sources[-1 - k], "assistant")
        changed = [*reply[: len(reply) // 2], "notably", *reply[len(reply) // 2 + 1 :]]
        planted.append(_with_reply(row, " ".join(changed)))
        planted.append(_with_reply(row, " ".join([*reply, *other[: len(reply) // 3]])))
        planted.append(_with_reply(row, None))
    for k, row in enumerate(planted):  # spread over the blocks
        rows.insert((k * 53) % len(rows), row)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_document_file(tmp_path_factory.mktemp("shared") / "shared.jsonl")


def _outputs(result: Any) -> dict[str, bytes]:
    return {name: Path(result.outputs[name]).read_bytes() for name in NAMES}


def _duplicates(outputs: dict[str, bytes]) -> set[int]:
    return {json.loads(line)["index"] for line in outputs["rejected"].splitlines()}


def test_the_reply_check_decides_on_this_file(shared: Path, tmp_path: Path) -> None:
    found = {}
    for answer in (0.0, 0.5, 0.9):
        (tmp_path / str(answer)).mkdir()
        out = tmp_path / str(answer) / "out.jsonl"
        found[answer] = _duplicates(_outputs(local_dedup(shared, out, method="minhash", answer_threshold=answer)))
    # Off, the shared documents join; each stricter threshold leaves fewer duplicates.
    assert found[0.0] > found[0.5] > found[0.9], {k: len(v) for k, v in found.items()}
    assert len(found[0.0] - found[0.5]) >= 20
    assert found[0.9]  # copies without a reply, and identical ones, stay duplicates


@pytest.mark.parametrize("answer", [0.5, 0.0, 0.9])
def test_ray_dedup_with_the_reply_check_is_byte_identical(
    cluster: Any, shared: Path, tmp_path: Path, answer: float
) -> None:
    options: dict[str, Any] = (
        {"method": "minhash"} if answer == 0.5 else {"method": "minhash", "answer_threshold": answer}
    )
    (tmp_path / "local").mkdir()
    expected = _outputs(local_dedup(shared, tmp_path / "local" / "out.jsonl", **options))
    assert json.loads(expected["manifest"])["options"]["answer_threshold"] == answer
    for blocks in (1, 2, 4):
        (tmp_path / f"ray{blocks}").mkdir()
        result = dedup(
            shared, tmp_path / f"ray{blocks}" / "out.jsonl", executor=RayExecutor(), blocks=blocks, **options
        )
        assert _outputs(result) == expected, blocks


def test_a_work_dir_of_another_answer_threshold_is_refused(cluster: Any, shared: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    run = partial(
        dedup, shared, tmp_path / "a" / "out.jsonl", executor=RayExecutor(), method="minhash", blocks=2,
        work_dir=tmp_path / "work",
    )  # fmt: skip
    first = _outputs(run())
    with pytest.raises(WorkDirError, match="another input or other options"):
        run(answer_threshold=0.9)
    assert _outputs(run(answer_threshold=0.5)) == first  # the same options resume


def test_an_answer_threshold_out_of_range_is_refused_as_locally(cluster: Any, shared: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"option 'answer_threshold' of rule FT404 \(near-duplicate\) must be in 0 to 1"
    ):
        dedup(shared, tmp_path / "out.jsonl", executor=RayExecutor(), method="minhash", answer_threshold=1.5)
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_dedup_answer_threshold_on_ray(cluster: Any, shared: Path, tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    options = ("--method", "minhash", "--answer-threshold", "0.9", "-q")
    local = run_cli("dedup", shared, "-o", tmp_path / "local" / "out.jsonl", *options)
    remote = run_cli(
        "dedup", shared, "-o", tmp_path / "ray" / "out.jsonl", *options, "--engine", "ray", "--address", address,
        "--blocks", "3",
    )  # fmt: skip
    assert (remote.returncode, remote.stdout) == (local.returncode, local.stdout)
    for name in ("out.jsonl", "out.rejected.jsonl", "out.clusters.json", "out.manifest.json"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert json.loads((tmp_path / "ray" / "out.manifest.json").read_bytes())["options"]["answer_threshold"] == 0.9
