"""The work directory of a distributed run: one folder per stage, each file written
atomically (a temporary name, then a rename), and a ``_SUCCESS`` marker once every task
of a stage has finished, so that a run started again on the same input with the same
options resumes after the last finished stage (and, inside a stage, after its finished
tasks). ``job.json`` names the input and options the directory belongs to: a directory
of another run is refused rather than mixed in."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ftdata.engine.plan import Plan
    from ftdata.engine.scan import Shard

SUCCESS = "_SUCCESS"
JOB = "job.json"
#: The first bytes of a result file (:func:`write_result`).
RESULT_MAGIC = b"FTDR\x01"


class WorkDirError(ValueError):
    """The work directory belongs to another input or other options."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the whole file or none of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_table(path: Path, columns: Mapping[str, Any]) -> None:
    """Write named columns (numpy arrays or pyarrow arrays) as one Parquet file, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(dict(columns))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_result(path: Path, value: Any, key: bytes) -> None:
    """Write ``value`` (any picklable result) to ``path`` atomically, under ``key``: the
    stamp of what produced it, so that :func:`read_result` never hands it to another run.
    Pickle, because a shard's result holds findings, enums and per-rule columns of any
    Python values (what Ray itself pickles to send it to the driver); the file is
    run-local, written and read by the same ftdata version (its stamp is in ``key``)."""
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.blake2b(payload, digest_size=16).digest()
    write_atomic(path, RESULT_MAGIC + len(key).to_bytes(2, "big") + key + digest + payload)


def result_ready(path: Path, key: bytes) -> bool:
    """Whether ``path`` is a result written under ``key`` (reads its header only)."""
    head = RESULT_MAGIC + len(key).to_bytes(2, "big") + key
    try:
        with open(path, "rb") as f:
            return f.read(len(head)) == head
    except OSError:
        return False


def read_result(path: Path, key: bytes) -> tuple[bool, Any]:
    """``(True, value)`` for the result :func:`write_result` wrote under ``key``, else
    ``(False, None)``: missing, cut short, corrupt or another run's."""
    head = RESULT_MAGIC + len(key).to_bytes(2, "big") + key
    try:
        data = path.read_bytes()
    except OSError:
        return False, None
    digest, payload = data[len(head) : len(head) + 16], data[len(head) + 16 :]
    if not data.startswith(head) or hashlib.blake2b(payload, digest_size=16).digest() != digest:
        return False, None
    try:
        return True, pickle.loads(payload)  # our own run-local file, its digest checked above
    except Exception:  # an unpicklable leftover (a module since renamed) is no result
        return False, None


def remove_temporaries(folder: Path) -> None:
    """Remove the half-written files (``.NAME.PID.tmp``) a killed task left under ``folder``."""
    for leftover in folder.rglob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def read_table(paths: Iterable[Path], columns: list[str] | None = None) -> Any:
    """The rows of several Parquet files as one pyarrow table (empty files allowed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p, columns=columns) for p in paths]
    if not tables:
        return None
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


class WorkDir:
    """Stage folders under ``root`` for the run identified by ``job``."""

    def __init__(self, root: Path, job: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / JOB
        wanted = orjson.dumps(dict(job), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        if marker.exists():
            if marker.read_bytes() != wanted:
                raise WorkDirError(
                    f"the work directory {self.root} holds intermediates of another input or other options; "
                    "use an empty folder (or remove it)"
                )
        else:
            if any(self.root.iterdir()):
                raise WorkDirError(f"the work directory {self.root} is not empty and holds no ftdata run")
            write_atomic(marker, wanted)

    def stage(self, name: str) -> Path:
        """The folder of stage ``name``, created when missing."""
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        return folder

    def done(self, name: str) -> bool:
        """Whether every task of stage ``name`` finished in this or an earlier run."""
        return (self.root / name / SUCCESS).exists()

    def finish(self, name: str) -> None:
        write_atomic(self.stage(name) / SUCCESS, b"")


def lint_folder(work_dir: Path, plan: Plan, shard: Shard, job: object) -> tuple[Path, dict[str, Any]]:
    """The folder of a resumable lint under ``work_dir`` and what it belongs to (the
    ``identity`` of its :class:`WorkDir`): one folder per input, named by the stamp of
    everything that decides its results (``job``'s repr: the rules staged and the cut). The folders of the
    same input under another stamp (changed since, or other settings) are removed."""
    from ftdata._version import __version__
    from ftdata.engine.cache_keys import plan_key
    from ftdata.outputs import Fingerprint

    fingerprint = Fingerprint.of(shard.path)
    h = hashlib.blake2b(plan_key(plan), digest_size=32)
    for part in (__version__, fingerprint.sha256, shard.source, repr(job)):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    key = h.hexdigest()
    name = hashlib.blake2b(f"{shard.path}\0{shard.source}".encode("utf-8", "surrogateescape"), digest_size=8)
    prefix = f"ftdata-lint-{name.hexdigest()}-"
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob(prefix + "*"):
        if stale.name != prefix + key[:32]:
            shutil.rmtree(stale, ignore_errors=True)
    identity = {"path": shard.path, "source": shard.source, "sha256": fingerprint.sha256, "key": key}
    return work_dir / (prefix + key[:32]), identity
