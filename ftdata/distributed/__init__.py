"""Dataset stages that need every record, distributed over an executor (a Ray cluster):
pure functions over blocks and partitions with their intermediates in a work directory,
giving the same bytes as the local commands: ``dedup`` (exact and MinHash),
``leakage`` (FT601 and FT602 between files), ``split_columns`` (the reading of a
split, placed by the local split) and, for ``ftdata lint`` on a cluster, FT402 and
FT403's conflict groups (:mod:`ftdata.distributed.conflicts`)."""

from __future__ import annotations

from ftdata.distributed.dedup import METHODS, dedup, on_cluster
from ftdata.distributed.leakage import leakage
from ftdata.distributed.leakage import on_cluster as leak_on_cluster
from ftdata.distributed.split import split_columns

__all__ = ["METHODS", "dedup", "leak_on_cluster", "leakage", "on_cluster", "split_columns"]
