"""What every stage of a distributed dedup is told: the input, the options, the work
directory and, once the scan has counted them, where each block's records start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True)
class Block:
    """Block ``number`` of the input: the byte range ``[start, end)`` of a JSON Lines file
    (``end`` None: to the end); a JSON array is one block, the whole file. ``path`` is the
    file when a run reads several (blocks are numbered across them, file after file);
    empty: the job's own ``path``. ``stamp`` is the file's (size, mtime, inode) when the
    run started: a task that reads the block refuses a file that no longer has it."""

    number: int
    start: int = 0
    end: int | None = None
    path: str = ""
    stamp: tuple[int, ...] = ()


def stamp_of(path: Path) -> tuple[int, ...]:
    """What identifies the version of ``path`` on disk now (see :class:`Block`)."""
    from ftdata.engine.run import FileStamp

    found = FileStamp.of(path)
    return (found.size, found.mtime_ns, found.inode)


def check_stamp(path: Path, stamp: tuple[int, ...]) -> None:
    """Raise :class:`~ftdata.outputs.InputChangedError` when ``path`` is no longer the
    version ``stamp`` names, as the local engine refuses a file changed between reads
    (no stamp: nothing to check)."""
    if not stamp:
        return
    from ftdata.engine.run import FileStamp

    size, mtime_ns, inode = stamp
    FileStamp(size, mtime_ns, inode).check(path)


@dataclass(frozen=True, slots=True)
class Job:
    """The options of one run, picklable and small (sent to the object store once)."""

    path: str
    work: str
    method: str
    scope: str
    keep: str
    casefold: bool
    shingle: str
    n: int
    num_perm: int
    seed: int
    threshold: float
    bands: int
    rows: int
    format: str | None
    blocks: int
    partitions: int
    #: The global index of each block's first record (filled after the scan).
    offsets: tuple[int, ...] = ()
    #: exact: the rule whose ``collect`` gives the comparison key, and its options
    #: (empty: FT401's, with ``casefold`` and ``scope``).
    key_rule: str = "FT401"
    key_options: tuple[tuple[str, object], ...] = ()
    #: MinHash over the whole conversation: the smallest Jaccard similarity of the replies
    #: of a verified pair (FT404's ``answer_threshold``); 0: replies are not compared.
    answer_threshold: float = 0.0

    @property
    def replies(self) -> bool:
        """Whether the scan keeps each record's reply shingles and verify compares them."""
        return self.method == "minhash" and self.scope == "conversation" and self.answer_threshold > 0

    @property
    def scan_dir(self) -> Path:
        return Path(self.work) / "scan"

    def global_index(self, block: np.ndarray, local: np.ndarray) -> np.ndarray:
        """Record indices in the whole file from (block, index inside the block)."""
        return np.asarray(self.offsets, dtype=np.int64)[block] + local

    def block_of(self, index: np.ndarray) -> np.ndarray:
        """The block holding each global record index."""
        return np.searchsorted(np.asarray(self.offsets, dtype=np.int64), index, side="right") - 1
