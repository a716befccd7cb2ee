"""``ftdata.dedup``: keep one record per cluster of duplicates, lose nothing.

Only records ftdata can read (:attr:`Record.readable`) are compared. Kept records are
written byte for byte in the input's container (JSON Lines, or a JSON array for ``.json``
input); by default that includes every record that could not be read, unchanged (with
``unreadable="reject"`` they go to the rejects instead, with the rule that explains why).
Duplicates go to ``<out>.rejected.jsonl`` (schema ``ftdata.rejects/1``, see
:mod:`ftdata.outputs`), the clusters to ``<out>.clusters.json`` and the manifest
(``ftdata.manifest/1``) to ``<out>.manifest.json``; the four files are committed as one
set, after checking that the input did not change between the two reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ftdata import io
from ftdata.findings import Finding
from ftdata.formats import normalise
from ftdata.outputs import Fingerprint, InputChangedError, OutputSet, check_outputs, manifest, reject_line
from ftdata.progress import Progress
from ftdata.records import Record
from ftdata.similarity.clusters import Cluster

METHODS = ("exact", "minhash", "semantic")
UNREADABLE = ("keep", "reject")
DEFAULT_THRESHOLDS = {"exact": 1.0, "minhash": 0.8, "semantic": 0.95}
#: The rule that asks each method's question.
RULE_OF_METHOD = {"exact": "FT401", "minhash": "FT404", "semantic": "FT405"}


@dataclass
class Rejection:
    """A record left out, and why (``reason`` is ``duplicate`` or ``unreadable``)."""

    index: int
    line: int | None
    reason: str
    cluster: int | None = None
    representative: int | None = None
    similarity: float | None = None
    detail: str = ""
    rule: str | None = None


@dataclass(frozen=True)
class Unreadable:
    """A record that could not be read, so was not compared: where, and the rule that
    explains why (None when no rule does)."""

    index: int
    line: int | None
    rule: str | None
    detail: str


@dataclass
class DedupResult:
    """What dedup decided: the indices kept, the rejections, the clusters, and the
    records that could not be read (kept or rejected as ``unreadable`` says)."""

    records: int
    kept: list[int]
    rejected: list[Rejection]
    clusters: list[Cluster]
    method: str
    threshold: float
    unreadable: list[Unreadable] = field(default_factory=list)
    unreadable_policy: str = "keep"
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return sum(1 for r in self.rejected if r.reason == "duplicate")

    @property
    def invalid(self) -> int:
        """Records rejected because they could not be read."""
        return sum(1 for r in self.rejected if r.reason == "unreadable")

    @property
    def complete(self) -> bool:
        """True when every record kept was compared (none unreadable, or all rejected)."""
        return not self.unreadable or self.unreadable_policy == "reject"


def why_unreadable(rec: Record) -> tuple[str | None, str]:
    """The rule code and message that explain why ``rec`` is not readable: its first
    problem of error severity (else its first problem), else a description."""
    from ftdata import registry

    first: tuple[str | None, str] | None = None
    for kind, _, message, _ in rec.problems:
        name = str(getattr(kind, "value", kind))
        try:
            found = registry.get(name)
        except KeyError:
            code, severe = None, False
        else:
            code, severe = found.code, int(found.severity) >= 30
        if severe:
            return code, message
        if first is None:
            first = (code, message)
    if first is not None:
        return first
    if type(rec.data) is not dict:
        return None, "not a JSON object"
    return None, "no text to compare"


def output_paths(output: str | os.PathLike[str]) -> dict[str, Path]:
    """The files one dedup writes: ``kept`` (``output``) and, beside it, ``rejected``,
    ``clusters`` and ``manifest``."""
    out = Path(output)
    return {
        "kept": out,
        "rejected": out.with_name(f"{out.stem}.rejected.jsonl"),
        "clusters": out.with_name(f"{out.stem}.clusters.json"),
        "manifest": out.with_name(f"{out.stem}.manifest.json"),
    }


def rejected_path(output: Path) -> Path:
    return output_paths(output)["rejected"]


def clusters_path(output: Path) -> Path:
    return output_paths(output)["clusters"]


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
    unreadable: str = "keep",
    progress: Progress | None = None,
) -> DedupResult:
    """Find clusters of duplicates in ``source`` and keep one record of each.

    ``method`` is ``exact`` (same normalised text: NFC, collapsed whitespace, optional
    case folding), ``minhash`` (Jaccard of shingles >= ``threshold``, verified exactly) or
    ``semantic`` (cosine of sentence embeddings >= ``threshold``). ``keep`` picks the
    representative: ``first`` or ``longest``. ``scope`` compares the ``prompt``, the
    ``answer`` or the whole ``conversation``. Records that cannot be read are never
    compared: ``unreadable="keep"`` keeps them unchanged, ``"reject"`` rejects them. With
    ``output`` (and a file ``source``), the kept records, the rejections, the clusters and
    a manifest are written next to each other; an output that would replace the input
    raises :class:`~ftdata.outputs.OutputError` before anything is read.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (expected one of {', '.join(METHODS)})")
    if unreadable not in UNREADABLE:
        raise ValueError(f"unknown unreadable policy {unreadable!r} (expected keep or reject)")
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    path = Path(source) if isinstance(source, str | os.PathLike) else None
    paths: dict[str, Path] = {}
    fingerprint = None
    if output is not None:
        if path is None:
            raise ValueError("writing an output needs a file as the source")
        paths = output_paths(output)
        check_outputs([path], paths.values())
        fingerprint = Fingerprint.of(path)
    records = list(read_records(path, source, format))
    rule = RULE_OF_METHOD[method]
    options: dict[str, Any] = {"scope": scope, "keep": keep}
    if method == "exact":
        options["casefold"] = casefold
    elif method == "minhash":
        options.update(threshold=limit, num_perm=num_perm, bands=bands or 0, shingle=shingle, n=n, seed=seed)
    else:
        options.update(threshold=limit, model=model)
    found = _findings(path if path is not None else [r.data for r in records], rule, options, format, progress)
    clusters = clusters_of(found, rule)
    lines = {r.index: r.line for r in records}
    rejected: list[Rejection] = []
    for number, cluster in enumerate(clusters):
        for member, sim in zip(cluster.members, cluster.similarity, strict=True):
            if member != cluster.representative:
                rejected.append(
                    Rejection(member, lines[member], "duplicate", number, cluster.representative, sim, rule=rule)
                )
    unread = [Unreadable(r.index, r.line, *why_unreadable(r)) for r in records if not r.readable]
    if unreadable == "reject":
        rejected.extend(Rejection(u.index, u.line, "unreadable", detail=u.detail, rule=u.rule) for u in unread)
    rejected.sort(key=lambda r: r.index)
    dropped = {r.index for r in rejected}
    kept = [r.index for r in records if r.index not in dropped]
    result = DedupResult(len(records), kept, rejected, clusters, method, limit, unread, unreadable)
    if path is not None and fingerprint is not None:
        options = {
            "method": method,
            "threshold": limit,
            "scope": scope,
            "keep": keep,
            "casefold": casefold,
            "unreadable": unreadable,
            "format": format,
        }
        if method == "minhash":
            options.update(shingle=shingle, n=n, num_perm=num_perm, bands=bands, seed=seed)
        if method == "semantic":
            options["model"] = model
        result.outputs = write_outputs(path, paths, result, lines, options=options, fingerprint=fingerprint)
    return result


def _findings(
    source: Path | list[Any], rule: str, options: Mapping[str, Any], format: str | None, progress: Progress | None
) -> list[Finding]:
    """The findings of ``rule`` alone on ``source``, with ``options``; a rule that could not
    finish is an error of the run, never an empty answer."""
    from ftdata.api import lint

    report = lint(source, select=[rule], options={rule: dict(options)}, format=format, config=False, progress=progress)
    if report.rule_errors:
        raise RuntimeError(report.rule_errors[0].message)
    return [f for f in report.findings if f.code == rule]


def clusters_of(findings: Iterable[Finding], rule: str) -> list[Cluster]:
    """The duplicate groups that ``rule`` reported: each finding names one record left out
    (``index``), the other members of its group (``related``) and the similarity that
    joined it to the group (``score``; none for exact duplicates, 1.0); the member no
    finding names is the group's representative (similarity 1.0)."""
    groups: dict[tuple[int, ...], dict[int, float]] = {}
    for f in findings:
        if f.code != rule or f.index is None:
            continue
        members = tuple(sorted({f.index, *f.related}))
        groups.setdefault(members, {})[f.index] = 1.0 if f.score is None else f.score
    clusters = []
    for members, dropped in groups.items():
        kept = [m for m in members if m not in dropped]
        if len(kept) != 1:
            raise RuntimeError(f"{rule} reported a group of {len(members)} records without one representative")
        clusters.append(Cluster(kept[0], members, tuple(dropped.get(m, 1.0) for m in members)))
    clusters.sort(key=lambda c: c.members[0])
    return clusters


def read_records(path: Path | None, source: Any, format: str | None) -> Iterator[Record]:
    """The records of the file ``path`` (else of the rows of ``source``), each JSON object
    normalised (``format`` forced when given), in order."""
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


def write_outputs(
    source: Path,
    paths: Mapping[str, Path],
    result: DedupResult,
    lines: Mapping[int, int | None],
    *,
    options: Mapping[str, Any],
    fingerprint: Fingerprint,
) -> dict[str, Path]:
    """Write the kept records, the rejections, the clusters and the manifest as one set;
    a second, streaming read of ``source`` copies every record's bytes, and the input's
    fingerprint is checked before the set is committed."""
    container = io.container_of(source)
    reasons = {r.index: r for r in result.rejected}
    files = {key: p for key, p in paths.items() if key != "manifest"}
    with OutputSet(files, paths["manifest"]) as out:
        first = True
        if container != "jsonl":
            out.write("kept", b"[\n")
        seen = 0
        for item in io.read(source, io.ReadStats(), parse="none"):
            if not isinstance(item, Record):
                continue
            if item.index != seen:
                break
            seen += 1
            raw = item.raw if item.raw is not None else b""
            why = reasons.get(item.index)
            if why is None:
                if container == "jsonl":
                    out.write("kept", raw + b"\n")
                else:
                    out.write("kept", (b"" if first else b",\n") + raw)
                first = False
                continue
            extra: dict[str, Any] = {}
            if why.reason == "duplicate":
                extra = {
                    "method": result.method,
                    "cluster": why.cluster,
                    "representative": why.representative,
                    "representative_line": lines.get(why.representative) if why.representative is not None else None,
                    "similarity": why.similarity,
                }
                detail = f"a duplicate of record {why.representative} (similarity {why.similarity:.2f})"
            else:
                detail = why.detail
            out.write(
                "rejected",
                reject_line(
                    index=why.index, line=why.line, reason=why.reason, rule=why.rule, detail=detail, raw=raw, **extra
                ),
            )
        if container != "jsonl":
            out.write("kept", b"\n]\n")
        if seen != result.records:
            raise InputChangedError(
                f"the input {source} changed between two reads ({result.records:,} records, then {seen:,}); "
                "nothing was written"
            )
        fingerprint.check(source)
        report = {
            "source": str(source),
            "method": result.method,
            "threshold": result.threshold,
            "scope": options.get("scope"),
            "records": result.records,
            "kept": len(result.kept),
            "rejected": len(result.rejected),
            "unreadable": len(result.unreadable),
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
        out.write("clusters", orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        counts = {
            "records": result.records,
            "kept": len(result.kept),
            "rejected": len(result.rejected),
            "duplicates": result.duplicates,
            "clusters": len(result.clusters),
            "unreadable": len(result.unreadable),
        }
        body = manifest(
            "dedup",
            options=options,
            inputs=[fingerprint.to_dict(result.records)],
            counts=counts,
        )
        out.commit(
            body,
            records={"kept": len(result.kept), "rejected": len(result.rejected), "clusters": len(result.clusters)},
        )
    return dict(paths)
