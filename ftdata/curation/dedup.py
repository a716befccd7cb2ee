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
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftdata import io
from ftdata.curation.dedup_write import fingerprint_later, output_paths, write_outputs
from ftdata.executors import Executor
from ftdata.findings import Finding
from ftdata.formats import normalise
from ftdata.outputs import Fingerprint, InputChangedError, check_layout, check_outputs
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
    answer_threshold: float = 0.5,
    model: str = "sentence-transformers/all-MiniLM-L6-v2",
    format: str | None = None,
    unreadable: str = "keep",
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> DedupResult:
    """Find clusters of duplicates in ``source`` and keep one record of each.

    ``method`` is ``exact`` (same normalised text: NFC, collapsed whitespace, optional
    case folding), ``minhash`` (Jaccard of shingles >= ``threshold``, verified exactly) or
    ``semantic`` (cosine of sentence embeddings >= ``threshold``); with ``minhash`` over
    the whole conversation, the replies of a pair must also reach ``answer_threshold``
    (Jaccard; 0: not checked), so that different questions over one shared document are
    not duplicates (see FT404). ``keep`` picks the
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
    hashing: Future[Fingerprint] | None = None
    if output is not None:
        if path is None:
            raise ValueError("writing an output needs a file as the source")
        paths = output_paths(output)
        check_outputs([path], paths.values())
        check_layout(paths["kept"], io.container_of(path), source=path)
        # Hashed while the pass reads (the driver waits for its workers), and held to the
        # identity the file had before the pass began.
        before = os.stat(path)
        hashing = fingerprint_later(path)
    rows = None if path is not None else list(source)  # type: ignore[arg-type]
    rule = RULE_OF_METHOD[method]
    options: dict[str, Any] = {"scope": scope, "keep": keep}
    if method == "exact":
        options["casefold"] = casefold
    elif method == "minhash":
        options.update(threshold=limit, num_perm=num_perm, bands=bands or 0, shingle=shingle, n=n, seed=seed)
        options["answer_threshold"] = answer_threshold
    else:
        options.update(threshold=limit, model=model)
    found, outline = _findings(path if path is not None else rows, rule, options, format, progress, executor)  # type: ignore[arg-type]
    if hashing is not None:
        fingerprint = hashing.result()
        if (fingerprint.size, fingerprint.mtime_ns, fingerprint.inode, fingerprint.device) != (
            before.st_size,
            before.st_mtime_ns,
            before.st_ino,
            before.st_dev,
        ):
            raise InputChangedError(f"the input {path} changed while it was read; nothing was written")
    clusters = clusters_of(found, rule)
    wanted = {m for c in clusters for m in c.members} | {i for i, _, _ in outline.unread}
    lines = line_numbers(path, wanted) if path is not None else {}
    unread = [Unreadable(i, lines.get(i), code, detail) for i, code, detail in outline.unread]
    result = assemble(outline.records, clusters, lines, unread, method=method, threshold=limit, unreadable=unreadable)
    if path is not None and fingerprint is not None:
        options = manifest_options(
            method, limit, scope=scope, keep=keep, casefold=casefold, unreadable=unreadable, format=format,
            shingle=shingle, n=n, num_perm=num_perm, bands=bands, seed=seed, model=model,
            answer_threshold=answer_threshold,
        )  # fmt: skip
        result.outputs = write_outputs(path, paths, result, lines, options=options, fingerprint=fingerprint)
    return result


def assemble(
    records: int,
    clusters: list[Cluster],
    lines: Mapping[int, int | None],
    unread: list[Unreadable],
    *,
    method: str,
    threshold: float,
    unreadable: str,
) -> DedupResult:
    """The result of a dedup of ``records`` records from its clusters (the first member
    of each that is not its representative is rejected as a duplicate), the records'
    ``lines`` and those it could not read (rejected too when ``unreadable="reject"``)."""
    rule = RULE_OF_METHOD[method]
    rejected: list[Rejection] = []
    for number, cluster in enumerate(clusters):
        for member, sim in zip(cluster.members, cluster.similarity, strict=True):
            if member != cluster.representative:
                rejected.append(
                    Rejection(member, lines.get(member), "duplicate", number, cluster.representative, sim, rule=rule)
                )
    if unreadable == "reject":
        rejected.extend(Rejection(u.index, u.line, "unreadable", detail=u.detail, rule=u.rule) for u in unread)
    rejected.sort(key=lambda r: r.index)
    dropped = {r.index for r in rejected}
    kept = [i for i in range(records) if i not in dropped]
    return DedupResult(records, kept, rejected, clusters, method, threshold, unread, unreadable)


def manifest_options(
    method: str,
    threshold: float,
    *,
    scope: str,
    keep: str,
    casefold: bool,
    unreadable: str,
    format: str | None,
    shingle: str,
    n: int,
    num_perm: int,
    bands: int | None,
    seed: int,
    model: str,
    answer_threshold: float = 0.5,
) -> dict[str, Any]:
    """The options a dedup's manifest records: those that decided its result."""
    options: dict[str, Any] = {
        "method": method,
        "threshold": threshold,
        "scope": scope,
        "keep": keep,
        "casefold": casefold,
        "unreadable": unreadable,
        "format": format,
    }
    if method == "minhash":
        options.update(shingle=shingle, n=n, num_perm=num_perm, bands=bands, seed=seed)
        if scope == "conversation":
            options["answer_threshold"] = answer_threshold
    if method == "semantic":
        options["model"] = model
    return options


class Outline:
    """A fold over the lint pass (see :class:`~ftdata.engine.plan.Fold`): how many records
    the source holds and which could not be read, with the rule that says why, so that
    dedup keeps no record in memory. Picklable: each shard fills its own."""

    def __init__(self) -> None:
        self.records = 0
        self.unread: list[tuple[int, str | None, str]] = []

    def add(self, rec: Record) -> None:
        """See one record of the pass."""
        if not rec.readable:
            self.unread.append((self.records, *why_unreadable(rec)))
        self.records += 1

    def merge(self, later: Outline) -> None:
        """Take in the fold of the shard that follows this one."""
        self.unread.extend((i + self.records, code, detail) for i, code, detail in later.unread)
        self.records += later.records


def _findings(
    source: Path | list[Any],
    rule: str,
    options: Mapping[str, Any],
    format: str | None,
    progress: Progress | None,
    executor: Executor | None = None,
) -> tuple[list[Finding], Outline]:
    """The findings of ``rule`` alone on ``source``, with ``options``, and the source's
    :class:`Outline`, from one pass; a rule that could not finish is an error of the run,
    never an empty answer."""
    from ftdata.api import lint

    report = lint(
        source,
        select=[rule],
        options={rule: dict(options)},
        format=format,
        config=False,
        progress=progress,
        executor=executor,
        folds=[Outline] if isinstance(source, Path) else (),
    )
    if report.rule_errors:
        raise RuntimeError(report.rule_errors[0].message)
    folds = report.sources[0].folds if report.sources else ()
    outline = folds[0] if folds else Outline()
    if not folds or outline.records != report.sources[0].records:
        # Records in memory, or what the pass did not see as a record (a .json file
        # holding one object in no format): read as they always were, one at a time.
        outline = Outline()
        for rec in read_records(source if isinstance(source, Path) else None, source, format):
            outline.add(rec)
    return [f for f in report.findings if f.code == rule], outline


def line_numbers(path: Path, wanted: Iterable[int]) -> dict[int, int | None]:
    """The line of each record of ``path`` at the ``wanted`` indices, from a read that
    does not parse (and stops after the last one)."""
    wanted = set(wanted)
    found = io.records_at(io.read(path, io.ReadStats(), parse="none", wanted=wanted), wanted) if wanted else {}
    return {index: rec.line for index, rec in found.items()}


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
