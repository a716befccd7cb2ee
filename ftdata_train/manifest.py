"""What a run trains on, on record: per-split statistics (:class:`SplitStats`), the records left
out and why (:class:`Dropped`) and the data manifest saved beside every checkpoint
(:class:`DataManifest`, schema ``ftdata_train.data/1``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

#: The schema name of :class:`DataManifest`.
MANIFEST_SCHEMA = "ftdata_train.data/1"
MANIFEST_NAME = "data-manifest.json"

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Dropped:
    """An input record left out of the datasets, and why."""

    split: str
    source: str
    line: int | None
    index: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "source": self.source,
            "line": self.line,
            "index": self.index,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class SplitStats:
    """What one split holds after the gate. ``tokens`` and ``trained_tokens`` count the kept
    examples after truncation (what the model is fed and what carries a label); the length
    percentiles are of the examples before truncation, so ``length_p99 > max_length`` says
    truncation is common. ``fully_masked_lines`` are the input lines of the examples
    truncation left untrained (refused or dropped, by policy); ``no_target_lines`` those with
    nothing to train on at all (always dropped)."""

    records: int
    tokens: int
    trained_tokens: int
    truncated: int
    fully_masked: int
    fully_masked_lines: tuple[int | None, ...]
    no_target_lines: tuple[int | None, ...]
    dropped: int
    length_p50: int
    length_p95: int
    length_p99: int
    length_max: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "tokens": self.tokens,
            "trained_tokens": self.trained_tokens,
            "truncated": self.truncated,
            "fully_masked": self.fully_masked,
            "fully_masked_lines": list(self.fully_masked_lines),
            "no_target_lines": list(self.no_target_lines),
            "dropped": self.dropped,
            "length": {"p50": self.length_p50, "p95": self.length_p95, "p99": self.length_p99, "max": self.length_max},
        }


@dataclass
class DataManifest:
    """Provenance of the data a run trains on (schema ``ftdata_train.data/1``): the inputs'
    sizes and sha256s, the split made (if any), records per split, what was dropped and why,
    the ftdata version, the rules run, the findings let through by code, the tokenizer and
    ``max_length``. The trainer saves it beside every checkpoint and adapter."""

    inputs: list[dict[str, Any]]
    records: dict[str, int]
    dropped: list[Dropped]
    rules: list[str]
    allowed: dict[str, int]
    warnings: dict[str, int]
    tokenizer: str
    max_length: int
    kind: str
    loss: str
    fully_masked: str
    split: dict[str, Any] | None = None
    leakage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data."""
        from ftdata import __version__ as ftdata_version

        return {
            "schema": MANIFEST_SCHEMA,
            "ftdata": ftdata_version,
            "inputs": [dict(i) for i in self.inputs],
            "split": self.split,
            "records": dict(self.records),
            "dropped": [d.to_dict() for d in self.dropped],
            "rules": list(self.rules),
            "allowed": dict(self.allowed),
            "warnings": dict(self.warnings),
            "leakage": dict(self.leakage),
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "kind": self.kind,
            "loss": self.loss,
            "fully_masked": self.fully_masked,
        }

    def save(self, directory: PathLike) -> Path:
        """Write ``data-manifest.json`` into ``directory`` (created if missing), atomically."""
        from ftdata.io import atomic_write

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / MANIFEST_NAME
        with atomic_write(path) as fh:
            fh.write(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        return path


def percentile(ordered: list[int], p: float) -> int:
    """Nearest-rank percentile of sorted values (0 for none)."""
    if not ordered:
        return 0
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


__all__ = ["MANIFEST_NAME", "MANIFEST_SCHEMA", "DataManifest", "Dropped", "SplitStats", "percentile"]
