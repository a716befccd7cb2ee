"""Dataset stages that need every record, distributed over an executor (a Ray cluster):
pure functions over blocks and partitions with their intermediates in a work directory,
giving the same bytes as the local commands."""

from __future__ import annotations

from ftdata.distributed.dedup import METHODS, dedup, on_cluster

__all__ = ["METHODS", "dedup", "on_cluster"]
