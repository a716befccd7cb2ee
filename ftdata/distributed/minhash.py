"""MinHash near duplicates, stages two and three.

``bucket_partition`` groups one partition's band rows (from every block) by band and key:
each bucket of two or more records gives its candidate pairs exactly as
:func:`~ftdata.similarity.minhash.candidate_pairs` does (every pair of a small bucket, a
star around the smallest member of a large one), written by the block of the pair's
first record. ``verify_block`` then checks the candidate pairs of one block against the
exact Jaccard similarity of their shingle sets, read where the records live (the block's
own rows and just the rows it needs of the others), keeps, over the whole conversation,
only the pairs whose replies are near each other too (FT404's reply check, on the reply
shingle sets of the verified pairs' records alone), and writes the verified edges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ftdata.distributed.job import Job
from ftdata.distributed.workdir import read_table, write_table

#: Buckets up to this size give all their pairs, larger ones a star (as ``candidate_pairs``).
MAX_ALL_PAIRS = 64
#: The reply shingle sets of the records at some global indices (see :func:`verify_block`).
Replies = Callable[[np.ndarray], Mapping[int, "np.ndarray | None"]]


def buckets_dir(job: Job) -> Path:
    return Path(job.work) / "buckets"


def verify_path(job: Job, block: int) -> Path:
    return Path(job.work) / "verify" / f"b{block}.parquet"


def _pairs_of(members: np.ndarray) -> np.ndarray:
    """The candidate pairs of one bucket (members sorted), as rows (i, j) with i < j."""
    if members.size <= MAX_ALL_PAIRS:
        i, j = np.triu_indices(members.size, k=1)
        return np.stack((members[i], members[j]), axis=1)
    return np.stack((np.full(members.size - 1, members[0]), members[1:]), axis=1)


def bucket_partition(partition: int, job: Job) -> int:
    """Write the candidate pairs of ``partition``, one file per block of the pairs' first
    record; returns how many pairs (-1 when an earlier run finished it)."""
    folder = buckets_dir(job)
    done = folder / f"p{partition}.done"
    if done.exists():
        return -1
    table = read_table(sorted(job.scan_dir.glob(f"b*.p{partition}.bands.parquet")))
    band = table.column("band").to_numpy()
    key = table.column("key").to_numpy()
    index = job.global_index(table.column("block").to_numpy(), table.column("index").to_numpy())
    order = np.lexsort((index, key, band))
    band, key, index = band[order], key[order], index[order]
    change = np.flatnonzero((band[1:] != band[:-1]) | (key[1:] != key[:-1])) + 1
    bounds = np.concatenate(([0], change, [index.size])).astype(np.int64)
    sizes = np.diff(bounds)
    found = [_pairs_of(index[bounds[g] : bounds[g + 1]]) for g in np.flatnonzero(sizes >= 2)]
    pairs = np.unique(np.concatenate(found), axis=0) if found else np.zeros((0, 2), dtype=np.int64)
    owner = job.block_of(pairs[:, 0]) if pairs.size else np.zeros(0, dtype=np.int64)
    for b in range(job.blocks):
        mine = pairs[owner == b]
        write_table(folder / f"p{partition}.b{b}.parquet", {"i": mine[:, 0].copy(), "j": mine[:, 1].copy()})
    done.write_bytes(b"")
    return int(pairs.shape[0])


def _sets(job: Job, block: int, wanted: np.ndarray, column: str = "shingles") -> dict[int, np.ndarray]:
    """The sets of ``column`` (``shingles``, or ``replies``: a record without a reply is
    left out) of the records ``wanted`` (global indices) of ``block``."""
    rows = read_table([job.scan_dir / f"b{block}.rows.parquet"], ["index", column])
    local = rows.column("index").to_numpy()
    at = np.searchsorted(local, wanted - job.offsets[block])
    sets = rows.column(column)
    found: dict[int, np.ndarray] = {}
    for w, k in zip(wanted.tolist(), at.tolist(), strict=True):
        value = sets[k]
        if value.is_valid:
            found[w] = value.values.to_numpy()
    return found


def _read_sets(job: Job, wanted: np.ndarray, column: str = "shingles") -> dict[int, np.ndarray]:
    """The sets of ``column`` of the records ``wanted`` (global indices, sorted unique),
    each read from the block that holds it."""
    found: dict[int, np.ndarray] = {}
    owners = job.block_of(wanted)
    for b in np.unique(owners).tolist():
        found.update(_sets(job, b, wanted[owners == b], column))
    return found


def verify_block(block: int, job: Job, *, replies: Replies | None = None) -> int:
    """Write the candidate pairs of ``block`` whose exact Jaccard similarity reaches the
    threshold (i, j, similarity), less those whose replies are not near each other when
    ``job`` compares them (:func:`~ftdata.similarity.minhash.near_replies`); returns how
    many (-1 when an earlier run finished it). ``replies`` gives the reply shingle sets
    of the records wanted (global indices; None or left out: no reply); default: the
    ``replies`` column of the scan rows (a lint reads the records again instead)."""
    from ftdata.similarity.minhash import jaccard, near_replies

    out = verify_path(job, block)
    if out.exists():
        return -1
    table = read_table(sorted(buckets_dir(job).glob(f"p*.b{block}.parquet")))
    pairs = np.stack((table.column("i").to_numpy(), table.column("j").to_numpy()), axis=1)
    pairs = np.unique(pairs, axis=0) if pairs.size else pairs.reshape(0, 2)
    sets = _read_sets(job, np.unique(pairs))
    threshold = job.threshold
    verified = []
    for i, j in pairs.tolist():
        a, b = sets[i], sets[j]
        small, large = sorted((a.size, b.size))
        if large == 0 or small / large < threshold:  # Jaccard <= |A|/|B|: cannot reach it
            continue
        sim = jaccard(a, b)
        if sim >= threshold:
            verified.append((i, j, sim))
    del sets
    if job.replies and verified:
        # Only the records of pairs that are not identical are compared by their replies.
        wanted = np.unique(np.asarray([k for i, j, sim in verified if sim < 1.0 for k in (i, j)], dtype=np.int64))
        found = _read_sets(job, wanted, "replies") if replies is None else replies(wanted)
        verified = near_replies(verified, found.get, job.answer_threshold)
    write_table(
        out,
        {
            "i": np.asarray([i for i, _, _ in verified], dtype=np.int64),
            "j": np.asarray([j for _, j, _ in verified], dtype=np.int64),
            "similarity": np.asarray([sim for _, _, sim in verified], dtype=np.float64),
        },
    )
    return len(verified)
