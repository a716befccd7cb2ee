"""``ftdata leak`` on an executor (a Ray cluster): the report of
:func:`ftdata.curation.leakage.leakage`, leak for leak, with FT601 (exact) and FT602
(MinHash) run as the distributed dedup stages over the blocks of every file.

The files are read as one input, block after block and file after file, so the global
index of a record orders records as the rules do: by file, then by index. Exact: the
scan keys each record with FT601's key and the groups stage gathers equal keys; the
first member of a group (its earliest record) is what every member from a later file
leaks from, as FT601 reports it. MinHash: the scan, buckets and verify stages give the
verified pairs ``near_duplicate_pairs`` gives over the texts of all the files; each
record of a later file keeps its most similar match in an earlier file (the earliest of
equals), as FT602 does. Semantic (FT603): one lint pass of FT603 over the files with
the executor, as the local audit runs it, so a cluster's actors embed the texts
(``executor.embedder()``) and the driver searches their neighbours; it keeps nothing in
the work directory (a resumed audit embeds again, from the embedding cache where it can)
and leaves the exact and MinHash stages' intermediates, and their resuming, as they are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ftdata.curation.dedup import Unreadable
from ftdata.curation.leakage import LeakageReport, lint_pass, prepare, report_of
from ftdata.distributed.dedup import StageHook, file_blocks, job_identity, row_values, run_stage
from ftdata.distributed.exact import group_partition, groups_path, read_clusters
from ftdata.distributed.job import Block, Job, check_stamp, stamp_of
from ftdata.distributed.minhash import bucket_partition, verify_block, verify_path
from ftdata.distributed.scan import meta_path, scan_block
from ftdata.distributed.workdir import WorkDir, read_table
from ftdata.executors import Executor
from ftdata.findings import Finding, Issue, RecordRef
from ftdata.outputs import Fingerprint

#: The leak methods that run as distributed stages (semantic: a lint pass with the executor).
METHODS = ("exact", "minhash")
#: FT602's MinHash: the defaults of ``near_duplicate_pairs``.
SHINGLE, NGRAM, NUM_PERM, SEED = "word", 5, 128, 0


@dataclass(frozen=True)
class _Layout:
    """Where each file's records and lines start among the blocks of all the files."""

    names: list[str]
    file_of_block: np.ndarray  # the file of each block
    first: np.ndarray  # the global index of each file's first record
    records: np.ndarray  # records per file
    line_offsets: np.ndarray  # lines before each block inside its own file

    def locate(self, index: np.ndarray) -> np.ndarray:
        """The file holding each global record index."""
        return np.searchsorted(self.first, index, side="right") - 1


def leakage(
    paths: Sequence[str | os.PathLike[str]],
    *,
    executor: Executor,
    methods: Iterable[str] | None = None,
    scope: str | None = None,
    threshold: float | None = None,
    semantic_threshold: float | None = None,
    model: str | None = None,
    format: str | None = None,
    config: str | os.PathLike[str] | bool = True,
    sources: Sequence[str] | None = None,
    blocks: int | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    after_stage: StageHook | None = None,
) -> LeakageReport:
    """Records of each file of ``paths`` (train first) that repeat a record of an earlier
    one, the stages run by ``executor``; the options and the report as
    :func:`ftdata.curation.leakage.leakage`. ``exact`` and ``minhash`` run as stages over
    blocks: ``blocks`` is how many byte ranges each JSON Lines file is cut into (default:
    the executor's ``parts``, else 4); ``work_dir`` keeps their intermediates (default: a
    temporary folder), and a run stopped part way resumes there with the same files and
    options. ``semantic`` is FT603's lint pass with ``executor`` (its embeddings on a
    cluster's actors), run after them and kept nowhere. Raises ValueError on a bad
    argument, ConfigError on bad settings, OSError when a file cannot be read."""
    given: dict[str, Any] = dict(
        methods=methods, scope=scope, threshold=threshold, semantic_threshold=semantic_threshold, model=model,
        format=format, config=config, sources=sources,
    )  # fmt: skip
    setup = prepare(paths, **given)
    staged = [m for m in setup.methods if m in METHODS]
    files = [Path(p) for p in setup.files]
    stamps = [stamp_of(p) for p in files]
    prints = [Fingerprint.of(p) for p in files] if staged else []  # a semantic pass cuts no blocks
    parts = blocks or getattr(executor, "parts", None) or 4
    cuts: list[Block] = []
    owners: list[int] = []
    for f, fp in enumerate(prints):
        path = files[f]
        for b in file_blocks(path, fp.size, parts, stamps[f]):
            cuts.append(Block(len(cuts), b.start, b.end, str(path.absolute()), b.stamp))
            owners.append(f)
    bound = {b.code: {**b.rule.options, **b.options} for b in setup.plan.files}
    severity = {b.code: b.severity for b in setup.plan.files}
    # Only the staged methods name the work directory: adding or dropping semantic, which
    # keeps nothing there, leaves an interrupted audit's stages usable.
    jobs = {m: _job(m, bound, setup.plan.format, len(cuts)) for m in staged}
    hook = after_stage or (lambda stage: None)
    temporary = work_dir is None or not jobs
    root = Path(tempfile.mkdtemp(prefix="ftdata-leak-")) if temporary else Path(work_dir)  # type: ignore[arg-type]
    records: dict[str, int] = {}
    unreadable: dict[str, list[Unreadable]] = {}
    try:
        identity = {
            "inputs": [[fp.sha256, fp.size] for fp in prints],
            "blocks": [[b.start, b.end] for b in cuts],
            "jobs": {m: job_identity(j) for m, j in jobs.items()},
        }
        WorkDir(root, identity)
        found: list[Finding] = []
        layout = None
        for method, job in jobs.items():
            work = WorkDir(root / method, identity)
            job = replace(job, work=str(work.root))
            job, layout = _scan(job, work, cuts, owners, executor, setup.names, hook, method)
            _check(files, stamps)
            if method == "exact":
                run_stage(work, "groups", executor, group_partition, range(job.partitions), job)
                hook("exact/groups")
                hits = _exact_hits(job, layout)
            else:
                run_stage(work, "buckets", executor, bucket_partition, range(job.partitions), job)
                hook("minhash/buckets")
                run_stage(work, "verify", executor, verify_block, range(job.blocks), job)
                hook("minhash/verify")
                hits = _minhash_hits(job, layout)
            code = "FT601" if method == "exact" else "FT602"
            found.extend(_findings(job, layout, hits, code, severity[code], bound[code]["scope"]))
        if layout is not None:
            records = {name: int(n) for name, n in zip(layout.names, layout.records.tolist(), strict=True)}
            unreadable = _unreadable(job, cuts, layout)
        if "semantic" in setup.methods:
            # FT603 alone, as the local audit runs it; its findings join the others', and
            # the report ranks each leaked record's methods as locally.
            counted, unread, semantic = lint_pass(prepare(paths, **{**given, "methods": ["semantic"]}), executor)
            found.extend(semantic)
            if layout is None:
                records, unreadable = counted, unread
        _check(files, stamps)
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    return report_of(setup, records, unreadable, found)


def _check(files: Sequence[Path], stamps: Sequence[tuple[int, ...]]) -> None:
    """Refuse (InputChangedError) when a file is no longer the version the run read, as
    the local audit refuses a file changed between its reads."""
    for path, stamp in zip(files, stamps, strict=True):
        check_stamp(path, stamp)


def _job(method: str, bound: dict[str, dict[str, Any]], format: str | None, blocks: int) -> Job:
    if method == "exact":
        options = bound["FT601"]
        keyed = (("scope", options["scope"]), ("strict", options["strict"]))
        return Job(
            "", "", "exact", options["scope"], "first", False, SHINGLE, NGRAM, NUM_PERM, SEED, 1.0, 0, 0,
            format, blocks, blocks, key_rule="FT601", key_options=keyed,
        )  # fmt: skip
    from ftdata.similarity.minhash import choose_bands

    options = bound["FT602"]
    limit = float(options["threshold"])
    bands, rows = choose_bands(NUM_PERM, limit)
    return Job(
        "", "", "minhash", options["scope"], "first", False, SHINGLE, NGRAM, NUM_PERM, SEED, limit, bands, rows,
        format, blocks, blocks,
    )  # fmt: skip


def _scan(
    job: Job,
    work: WorkDir,
    cuts: list[Block],
    owners: list[int],
    executor: Executor,
    names: list[str],
    hook: StageHook,
    method: str,
) -> tuple[Job, _Layout]:
    """Scan every block; ``job`` with the global offset of each block, and where each
    file's records and lines start."""
    run_stage(work, "scan", executor, scan_block, cuts, job)
    hook(f"{method}/scan")
    metas = [orjson.loads(meta_path(job, b.number).read_bytes()) for b in cuts]
    counts = np.asarray([m["records"] for m in metas], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts)))[:-1]
    file_of_block = np.asarray(owners, dtype=np.int64)
    line_offsets = np.zeros(len(cuts), dtype=np.int64)
    first = np.zeros(len(names), dtype=np.int64)
    records = np.zeros(len(names), dtype=np.int64)
    seen: dict[int, int] = {}
    for k, (f, meta) in enumerate(zip(file_of_block.tolist(), metas, strict=True)):
        if f not in seen:
            first[f] = offsets[k]
            seen[f] = 0
        line_offsets[k] = seen[f]
        seen[f] += meta["lines"]
        records[f] += meta["records"]
    job = replace(job, offsets=tuple(int(x) for x in offsets))
    return job, _Layout(names, file_of_block, first, records, line_offsets)


def _exact_hits(job: Job, layout: _Layout) -> list[tuple[int, int, float]]:
    """(leaked record, the record it leaks from, 1.0): each member of a key group from a
    file after the one of the group's first member."""
    hits: list[tuple[int, int, float]] = []
    for cluster in read_clusters([groups_path(job, p) for p in range(job.partitions)]):
        members = np.asarray(cluster.members, dtype=np.int64)
        files = layout.locate(members)
        later = members[files != files[0]]
        hits.extend((int(m), int(members[0]), 1.0) for m in later.tolist())
    return hits


def _minhash_hits(job: Job, layout: _Layout) -> list[tuple[int, int, float]]:
    """(leaked record, its most similar match in an earlier file, similarity), the
    earliest match of equals, as FT602 keeps them."""
    table = read_table([verify_path(job, b) for b in range(job.blocks)])
    i, j = table.column("i").to_numpy(), table.column("j").to_numpy()
    sims = table.column("similarity").to_numpy()
    cross = layout.locate(i) != layout.locate(j)  # i < j: i is the earlier record
    best: dict[int, tuple[float, int]] = {}
    for a, b, sim in zip(i[cross].tolist(), j[cross].tolist(), sims[cross].tolist(), strict=True):
        found = best.get(b)
        if found is None or (-sim, a) < (-found[0], found[1]):
            best[b] = (sim, a)
    return [(b, a, sim) for b, (sim, a) in best.items()]


def _findings(
    job: Job, layout: _Layout, hits: list[tuple[int, int, float]], code: str, severity: Any, scope: str
) -> list[Finding]:
    """The findings FT601 or FT602 gives for ``hits``, located in their own files."""
    from ftdata.engine.locate import at_record_start

    if not hits:
        return []
    later = np.asarray([h[0] for h in hits], dtype=np.int64)
    earlier = np.asarray([h[1] for h in hits], dtype=np.int64)
    involved = np.unique(np.concatenate((later, earlier)))
    raw = row_values(job, "line", involved)
    line_of = {}
    for g, b, line in zip(involved.tolist(), job.block_of(involved).tolist(), raw.tolist(), strict=True):
        line_of[g] = None if line < 0 else line + int(layout.line_offsets[b])
    out = []
    for g, e, sim in sorted(hits):
        fb, fa = int(layout.locate(np.asarray([g]))[0]), int(layout.locate(np.asarray([e]))[0])
        ref = RecordRef(layout.names[fa], e - int(layout.first[fa]), line_of[e])
        where = f"{ref.source}:{ref.line}" if ref.line is not None else f"{ref.source} record {ref.index}"
        index = g - int(layout.first[fb])
        if code == "FT601":
            issue = Issue(f"the same {scope} as the record at {where}", index=index, other=ref)
        else:
            message = f"a near duplicate {scope} (similarity {sim:.2f}) of {where}"
            issue = Issue(message, index=index, score=sim, other=ref)
        out.append(at_record_start(code, severity, issue, layout.names[fb], line_of[g] or 1))
    return out


def _unreadable(job: Job, cuts: list[Block], layout: _Layout) -> dict[str, list[Unreadable]]:
    """The records of each file that could not be compared, and why (from the scan)."""
    found: dict[str, list[Unreadable]] = {}
    for b in cuts:
        f = int(layout.file_of_block[b.number])
        start = job.offsets[b.number] - int(layout.first[f])
        table = read_table([job.scan_dir / f"b{b.number}.unreadable.parquet"])
        for index, line, rule, detail in zip(
            *(table.column(c).to_pylist() for c in ("index", "line", "rule", "detail")), strict=True
        ):
            at = None if line is None else line + int(layout.line_offsets[b.number])
            found.setdefault(layout.names[f], []).append(Unreadable(index + start, at, rule, detail))
    return found


def on_cluster(
    paths: Sequence[str | os.PathLike[str]],
    *,
    address: str | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    blocks: int | None = None,
    **options: Any,
) -> LeakageReport:
    """:func:`leakage` on the Ray cluster at ``address`` (``auto``, ``ray://HOST:PORT``;
    None: the one this process joined, else a new local one); ``options`` as :func:`leakage`."""
    from ftdata.executors import for_engine

    executor = for_engine("ray", address=address)
    assert executor is not None
    return leakage(paths, executor=executor, blocks=blocks, work_dir=work_dir, **options)
