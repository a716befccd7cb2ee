"""One local Ray cluster for the whole session, started by the tests themselves."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Why every test here is skipped when Ray is missing.
NO_RAY = "the 'ray' extra is not installed: pip install 'ftdata[ray]'"

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """The ``ray`` module, joined to a two-CPU local cluster with a small object store."""
    import logging

    ray = pytest.importorskip("ray", exc_type=ImportError, reason=NO_RAY)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A benchmark corpus with planted exact and near duplicates, and unreadable lines."""
    import corpus

    path = tmp_path_factory.mktemp("corpus") / "planted.jsonl"
    corpus.write_planted(path, 1500, seed=3)
    lines = path.read_bytes().splitlines(keepends=True)
    broken = [b'{"messages": [{"role": "user", "content": "hi"},]}\n', b"[1, 2]\n", b'{"prompt": 3}\n', b"\n"]
    for k, line in enumerate(broken):  # records that cannot be read, spread over the blocks
        lines.insert(1 + k * 400, line)
    path.write_bytes(b"".join(lines))
    return path
