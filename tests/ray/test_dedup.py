"""``ftdata dedup`` on Ray writes the bytes of a local run: for 1, 2 and 4 blocks, after
an interruption, and when a worker dies mid-stage."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

from ftdata.curation.dedup import dedup as local_dedup
from ftdata.distributed import dedup
from ftdata.distributed.workdir import WorkDirError
from ftdata.executors.ray import RayExecutor
from tests.conftest import REAL, run_cli

NAMES = ("kept", "rejected", "clusters", "manifest")


def _outputs(result: Any) -> dict[str, bytes]:
    return {name: Path(result.outputs[name]).read_bytes() for name in NAMES}


def _kept(source: Path, folder: Path) -> Path:
    """The kept records' file, named for the input's layout (a JSON array stays one)."""
    folder.mkdir()
    return folder / ("out.json" if source.suffix == ".json" else "out.jsonl")


def _local(source: Path, folder: Path, **options: Any) -> dict[str, bytes]:
    return _outputs(local_dedup(source, _kept(source, folder), **options))


def _ray(source: Path, folder: Path, **options: Any) -> dict[str, bytes]:
    return _outputs(dedup(source, _kept(source, folder), executor=RayExecutor(), **options))


CASES = [
    {"method": "exact"},
    {"method": "exact", "keep": "longest", "scope": "answer", "unreadable": "reject"},
    {"method": "minhash"},
    {
        "method": "minhash",
        "keep": "longest",
        "threshold": 0.6,
        "scope": "prompt",
        "shingle": "char",
        "n": 4,
        "unreadable": "reject",
    },
]


@pytest.mark.parametrize("options", CASES, ids=lambda o: "-".join(map(str, o.values())))
def test_dedup_on_ray_is_byte_identical_for_any_number_of_blocks(
    cluster: Any, planted: Path, tmp_path: Path, options: dict[str, Any]
) -> None:
    expected = _local(planted, tmp_path / "local", **options)
    assert expected["rejected"].count(b'"reason":"duplicate"') >= 20  # the corpus has duplicates to find
    for blocks in (1, 2, 4):
        assert _ray(planted, tmp_path / f"ray{blocks}", blocks=blocks, **options) == expected, blocks


@pytest.mark.parametrize("name", ["v1_sft_demo.jsonl", "alpaca_en_demo.json"])
@pytest.mark.parametrize("method", ["exact", "minhash"])
def test_dedup_on_ray_of_real_files(cluster: Any, tmp_path: Path, name: str, method: str) -> None:
    source = REAL / name
    expected = _local(source, tmp_path / "local", method=method, threshold=0.5 if method == "minhash" else None)
    got = _ray(source, tmp_path / "ray", method=method, threshold=0.5 if method == "minhash" else None, blocks=3)
    assert got == expected


class _Stop(Exception):
    pass


def _stop_at(stage: str, seen: str) -> None:
    if seen == stage:
        raise _Stop(stage)


@pytest.mark.parametrize(("method", "stage"), [("exact", "scan"), ("minhash", "buckets")])
def test_interrupted_dedup_resumes_from_its_last_finished_stage(
    cluster: Any, planted: Path, tmp_path: Path, method: str, stage: str
) -> None:
    expected = _local(planted, tmp_path / "local", method=method)
    work = tmp_path / "work"
    (tmp_path / "ray").mkdir()
    out = tmp_path / "ray" / "out.jsonl"
    run = partial(dedup, planted, out, executor=RayExecutor(), method=method, blocks=4, work_dir=work)
    with pytest.raises(_Stop):
        run(after_stage=partial(_stop_at, stage))
    assert not out.exists()
    assert (work / stage / "_SUCCESS").exists()
    scanned = {p.name: p.stat().st_mtime_ns for p in (work / "scan").iterdir()}
    result = run()
    assert _outputs(result) == expected
    assert {p.name: p.stat().st_mtime_ns for p in (work / "scan").iterdir()} == scanned  # not read again


def test_a_work_dir_of_another_run_is_refused(cluster: Any, planted: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (tmp_path / "a").mkdir()
    dedup(planted, tmp_path / "a" / "out.jsonl", executor=RayExecutor(), blocks=2, work_dir=work)
    with pytest.raises(WorkDirError, match="another input or other options"):
        dedup(planted, tmp_path / "a" / "out.jsonl", executor=RayExecutor(), blocks=2, work_dir=work, casefold=True)


class _KillFirstAttempt:
    """Runs ``fn`` on Ray, except that the first attempt at each item kills its own
    worker process (a marker file per item says whether it was tried), so Ray must retry."""

    def __init__(self, markers: Path) -> None:
        self.markers = markers
        self.inner = RayExecutor()

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        markers = str(self.markers)

        def die_once(item: Any) -> Any:
            import os
            import signal

            marker = os.path.join(markers, f"{fn.func.__name__}-{item if isinstance(item, int) else item.number}")
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return fn(item)
            os.kill(os.getpid(), signal.SIGKILL)
            raise AssertionError("unreachable")

        return self.inner.map(die_once, items)


def test_a_worker_killed_mid_stage_is_retried(cluster: Any, planted: Path, tmp_path: Path) -> None:
    expected = _local(planted, tmp_path / "local", method="minhash")
    markers = tmp_path / "markers"
    markers.mkdir()
    (tmp_path / "ray").mkdir()
    result = dedup(
        planted, tmp_path / "ray" / "out.jsonl", executor=_KillFirstAttempt(markers), method="minhash", blocks=2
    )
    assert _outputs(result) == expected
    assert sorted(os.listdir(markers)) == [
        "bucket_partition-0",
        "bucket_partition-1",
        "scan_block-0",
        "scan_block-1",
        "verify_block-0",
        "verify_block-1",
    ]


def test_cli_dedup_engine_ray(cluster: Any, planted: Path, tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local = run_cli("dedup", planted, "-o", tmp_path / "local" / "out.jsonl", "--method", "minhash", "-q")
    remote = run_cli(
        "dedup", planted, "-o", tmp_path / "ray" / "out.jsonl", "--method", "minhash", "-q",
        "--engine", "ray", "--address", address, "--blocks", "3", "--work-dir", tmp_path / "work",
    )  # fmt: skip
    assert (remote.returncode, remote.stdout) == (local.returncode, local.stdout)
    assert local.returncode == 1  # the unreadable records are kept, and said so
    for name in ("out.jsonl", "out.rejected.jsonl", "out.clusters.json", "out.manifest.json"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
