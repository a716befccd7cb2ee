"""``ftdata.dedup``: keep one record per cluster of duplicates, lose nothing.

Kept records are written byte for byte in the input's container (JSON Lines, or a JSON
array for ``.json`` input); every other record goes to ``<out>.rejected.jsonl`` with the
reason (its cluster, representative and similarity, or why it could not be read), and the
clusters to ``<out>.clusters.json``. All three files are written atomically.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ftdata import io
from ftdata.formats import normalise
from ftdata.progress import Progress
from ftdata.records import Record
from ftdata.similarity.clusters import Cluster, build_clusters, exact_clusters
from ftdata.similarity.text import digest_bytes, scope_text

METHODS = ("exact", "minhash", "semantic")
DEFAULT_THRESHOLDS = {"exact": 1.0, "minhash": 0.8, "semantic": 0.95}


@dataclass
class Rejection:
    """A record left out, and why."""

    index: int
    line: int | None
    reason: str  # "duplicate" or "invalid"
    cluster: int | None = None
    representative: int | None = None
    similarity: float | None = None
    detail: str = ""


@dataclass
class DedupResult:
    """What dedup decided: the indices kept, the rejections, and the clusters."""

    records: int
    kept: list[int]
    rejected: list[Rejection]
    clusters: list[Cluster]
    method: str
    threshold: float
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return sum(1 for r in self.rejected if r.reason == "duplicate")

    @property
    def invalid(self) -> int:
        return sum(1 for r in self.rejected if r.reason == "invalid")


def dedup(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    output: str | os.PathLike[str] | None = None,
    *,
    method: str = "exact",
    keep: str = "first",
    threshold: float | None = None,
    scope: str = "conversation",
    casefold: bool = False,
    shingle: str = "word",
    n: int = 5,
    num_perm: int = 128,
    bands: int | None = None,
    seed: int = 0,
    model: str = "sentence-transformers/all-MiniLM-L6-v2",
    format: str | None = None,
    progress: Progress | None = None,
) -> DedupResult:
    """Find clusters of duplicates in ``source`` and keep one record of each.

    ``method`` is ``exact`` (same normalised text: NFC, collapsed whitespace, optional
    case folding), ``minhash`` (Jaccard of shingles >= ``threshold``, verified exactly) or
    ``semantic`` (cosine of sentence embeddings >= ``threshold``). ``keep`` picks the
    representative: ``first`` or ``longest``. ``scope`` compares the ``prompt``, the
    ``answer`` or the whole ``conversation``. With ``output`` (and a file ``source``),
    the kept records, the rejections and the clusters are written next to each other.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (expected one of {', '.join(METHODS)})")
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    path = Path(source) if isinstance(source, str | os.PathLike) else None
    records = list(_records(path, source, format))
    valid = [r for r in records if type(r.data) is dict and r.messages]
    texts = [scope_text(r, scope, casefold=casefold or method != "exact", roles=method == "exact") for r in valid]
    lengths = [len(t) for t in texts]
    if method == "exact":
        keys = [digest_bytes(t.encode("utf-8", "surrogatepass")) for t in texts]
        local = exact_clusters(keys, keep=keep, lengths=lengths)
    elif method == "minhash":
        from ftdata.similarity.minhash import near_duplicate_pairs

        pairs = near_duplicate_pairs(
            texts, threshold=limit, num_perm=num_perm, bands=bands, shingle=shingle, n=n, seed=seed, progress=progress
        )
        local = build_clusters(len(texts), pairs, keep=keep, lengths=lengths)
    else:
        from ftdata.similarity.embeddings import encode, neighbour_pairs

        vectors = encode(texts, model=model, progress=progress)
        local = build_clusters(
            len(texts), neighbour_pairs(vectors, limit, progress=progress), keep=keep, lengths=lengths
        )
    position = [r.index for r in valid]
    clusters = [Cluster(position[c.representative], tuple(position[m] for m in c.members), c.similarity) for c in local]
    lines = {r.index: r.line for r in records}
    rejected: list[Rejection] = []
    for number, cluster in enumerate(clusters):
        for member, sim in zip(cluster.members, cluster.similarity, strict=True):
            if member != cluster.representative:
                rejected.append(Rejection(member, lines[member], "duplicate", number, cluster.representative, sim))
    usable = {r.index for r in valid}
    for r in records:
        if r.index not in usable:
            rejected.append(Rejection(r.index, r.line, "invalid", detail=_why_invalid(r)))
    rejected.sort(key=lambda r: r.index)
    dropped = {r.index for r in rejected}
    kept = [r.index for r in records if r.index not in dropped]
    result = DedupResult(len(records), kept, rejected, clusters, method, limit)
    if output is not None:
        if path is None:
            raise ValueError("writing an output needs a file as the source")
        result.outputs = write_outputs(path, Path(output), result, lines, scope=scope)
    return result


def _records(path: Path | None, source: Any, format: str | None) -> Iterator[Record]:
    if path is None:
        for index, data in enumerate(source):
            rec = Record(index, data)
            if type(data) is dict:
                normalise(rec, format)
            yield rec
        return
    for item in io.read(path, io.ReadStats()):
        if isinstance(item, Record):
            if type(item.data) is dict:
                normalise(item, format)
            yield item


def _why_invalid(rec: Record) -> str:
    for _, _, message, _ in rec.problems:
        return message
    if type(rec.data) is not dict:
        return "not a JSON object"
    return "no turns to compare"


def rejected_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.rejected.jsonl")


def clusters_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.clusters.json")


def write_outputs(
    source: Path, output: Path, result: DedupResult, lines: Mapping[int, int | None], *, scope: str
) -> dict[str, Path]:
    """Write kept records, rejections and clusters (each atomically); a second, streaming
    read of ``source`` copies every record's bytes."""
    container = io.container_of(source)
    output.parent.mkdir(parents=True, exist_ok=True)
    reasons = {r.index: r for r in result.rejected}
    kept_path, rej_path, clu_path = output, rejected_path(output), clusters_path(output)
    with io.atomic_write(kept_path) as kept_file, io.atomic_write(rej_path) as rej_file:
        first = True
        if container != "jsonl":
            kept_file.write(b"[\n")
        for item in io.read(
            source, io.ReadStats()
        ):  # strict: a rejected record is shown as parsed only when nothing was lost
            if not isinstance(item, Record):
                continue
            raw = item.raw if item.raw is not None else b""
            why = reasons.get(item.index)
            if why is None:
                if container == "jsonl":
                    kept_file.write(raw + b"\n")
                else:
                    kept_file.write((b"" if first else b",\n") + raw)
                first = False
                continue
            entry: dict[str, Any] = {
                "index": why.index,
                "line": why.line,
                "reason": why.reason,
            }
            if why.reason == "duplicate":
                entry.update(
                    method=result.method,
                    cluster=why.cluster,
                    representative=why.representative,
                    representative_line=lines.get(why.representative) if why.representative is not None else None,
                    similarity=why.similarity,
                )
            else:
                entry["detail"] = why.detail
            entry.update(_payload(item, raw))
            rej_file.write(orjson.dumps(entry) + b"\n")
        if container != "jsonl":
            kept_file.write(b"\n]\n")
    report = {
        "source": str(source),
        "method": result.method,
        "threshold": result.threshold,
        "scope": scope,
        "records": result.records,
        "kept": len(result.kept),
        "rejected": len(result.rejected),
        "clusters": [
            {
                "representative": {"index": c.representative, "line": lines.get(c.representative)},
                "members": [
                    {"index": m, "line": lines.get(m), "similarity": s}
                    for m, s in zip(c.members, c.similarity, strict=True)
                ],
            }
            for c in result.clusters
        ],
    }
    with io.atomic_write(clu_path) as f:
        f.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    return {"kept": kept_path, "rejected": rej_path, "clusters": clu_path}


def _payload(item: Record, raw: bytes) -> dict[str, Any]:
    """The record itself: parsed when it parsed cleanly, else its exact text, else its
    bytes in base64, so that nothing is lost."""
    if type(item.data) is dict and not any(offset is not None for *_, offset in item.problems):
        try:
            orjson.dumps(item.data)
        except TypeError:
            pass
        else:
            return {"record": item.data}
    try:
        return {"raw": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"raw_base64": base64.b64encode(raw).decode("ascii")}
