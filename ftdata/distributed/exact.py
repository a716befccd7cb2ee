"""Exact duplicates, stage two: group the keys of one partition (from every block) and
write its clusters. Equal keys always meet in one partition, so the clusters of all
partitions together are those of the whole file; each is built by
:func:`~ftdata.similarity.clusters.exact_clusters`, as FT401 builds them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ftdata.distributed.job import Job
from ftdata.distributed.workdir import read_table, write_table
from ftdata.similarity.clusters import Cluster, exact_clusters


def groups_path(job: Job, partition: int) -> Path:
    return Path(job.work) / "groups" / f"p{partition}.parquet"


def group_partition(partition: int, job: Job) -> int:
    """Write the clusters of ``partition`` (one row per member) and return how many."""
    out = groups_path(job, partition)
    if out.exists():
        return -1
    table = read_table(sorted(job.scan_dir.glob(f"b*.p{partition}.keys.parquet")))
    keys = table.column("key").to_numpy()
    index = job.global_index(table.column("block").to_numpy(), table.column("index").to_numpy())
    order = np.argsort(index, kind="stable")
    index, keys = index[order], keys[order]
    lengths = None
    if job.keep != "first":
        lengths = _lengths(job, index).tolist()
    local = exact_clusters(keys.tolist(), keep=job.keep, lengths=lengths)
    write_table(out, member_rows([_reindexed(c, index) for c in local]))
    return len(local)


def _reindexed(cluster: Cluster, index: np.ndarray) -> Cluster:
    """A cluster over positions, renumbered as record indices (positions are in index
    order, so representatives and ties are unchanged)."""
    return Cluster(
        int(index[cluster.representative]), tuple(int(index[m]) for m in cluster.members), cluster.similarity
    )


def _lengths(job: Job, index: np.ndarray) -> np.ndarray:
    """The length ``keep="longest"`` weighs of each record of ``index`` (sorted)."""
    found = np.zeros(index.size, dtype=np.int64)
    blocks = job.block_of(index)
    for b in np.unique(blocks):
        rows = read_table([job.scan_dir / f"b{b}.rows.parquet"], ["index", "length"])
        local = rows.column("index").to_numpy()
        at = np.searchsorted(local, index[blocks == b] - job.offsets[b])
        found[blocks == b] = rows.column("length").to_numpy()[at]
    return found


def member_rows(clusters: list[Cluster]) -> dict[str, np.ndarray]:
    """Clusters as columns, one row per member: the cluster's first member, the member,
    the representative and the member's similarity."""
    first, member, rep, sim = [], [], [], []
    for c in clusters:
        for m, s in zip(c.members, c.similarity, strict=True):
            first.append(c.members[0])
            member.append(m)
            rep.append(c.representative)
            sim.append(s)
    return {
        "first": np.asarray(first, dtype=np.int64),
        "member": np.asarray(member, dtype=np.int64),
        "representative": np.asarray(rep, dtype=np.int64),
        "similarity": np.asarray(sim, dtype=np.float64),
    }


def read_clusters(paths: list[Path]) -> list[Cluster]:
    """The clusters written by :func:`member_rows`, in order of their first member."""
    table = read_table(paths)
    if table is None or table.num_rows == 0:
        return []
    first = table.column("first").to_numpy()
    member = table.column("member").to_numpy()
    rep = table.column("representative").to_numpy()
    sim = table.column("similarity").to_numpy()
    order = np.lexsort((member, first))
    clusters: list[Cluster] = []
    start = 0
    first, member, rep, sim = first[order], member[order], rep[order], sim[order]
    bounds = [*np.flatnonzero(first[1:] != first[:-1]) + 1, first.size]
    for end in bounds:
        clusters.append(
            Cluster(
                int(rep[start]),
                tuple(int(m) for m in member[start:end]),
                tuple(float(s) for s in sim[start:end]),
            )
        )
        start = end
    return clusters
