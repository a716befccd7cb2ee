"""Deterministic, stratified, leakage-free train/eval(/test) splits.

Records are gathered into groups that must not straddle splits (a field such as a
conversation id, identical prompts, exact duplicates, MinHash or embedding near
duplicates, or precomputed labels), groups are placed stratum by stratum so that each
split gets its share of records (not of groups), and the order of placement comes from a
seeded hash of the records' content: the same input, options and seed give the same
bytes on any machine.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdata import io
from ftdata.curation.grouping import (
    DEFAULT_GROUPING,
    Key,
    SplitColumns,
    bin_numbers,
    collect_columns,
    describe_grouping,
    grouping_list,
    join_equal,
    record_key,
    stratum_key,
)
from ftdata.curation.sources import rows_of
from ftdata.curation.split_write import check_split_outputs as check_split_outputs
from ftdata.curation.split_write import output_paths as output_paths
from ftdata.curation.split_write import write_split
from ftdata.formats import normalise
from ftdata.outputs import Fingerprint
from ftdata.records import Record
from ftdata.similarity.clusters import UnionFind

if TYPE_CHECKING:
    from ftdata.similarity.embeddings import Embedder

UNGROUPED_WARNING = "no grouping (group by none): eval may share prompts with train"
DEFAULT_SIZES = {"train": 0.85, "eval": 0.15}


@dataclass
class SplitResult:
    """Where every record went. ``assignment[i]`` is the split of record ``i`` or None
    when it could not be read (see ``rejected``)."""

    names: list[str]
    assignment: list[str | None]
    targets: dict[str, float]
    strata: dict[str, dict[str, int]]
    rejected: dict[int, str]
    warnings: list[str]
    options: dict[str, Any]
    groups: int
    source: Path | None = None
    lines: list[int | None] = field(default_factory=list)
    records: list[Any] | None = None
    fingerprint: Fingerprint | None = None
    rejected_rules: dict[int, str | None] = field(default_factory=dict)
    leaks: list[Any] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(a for a in self.assignment if a is not None)
        return {name: c.get(name, 0) for name in self.names}

    def indices(self, name: str) -> list[int]:
        return [i for i, a in enumerate(self.assignment) if a == name]

    def report(self) -> dict[str, Any]:
        """Achieved against target, per split and per stratum, with the warnings."""
        total = sum(self.counts.values())
        return {
            "records": len(self.assignment),
            "rejected": len(self.rejected),
            "groups": self.groups,
            "splits": {
                name: {
                    "records": n,
                    "share": round(n / total, 6) if total else 0.0,
                    "target": self.targets[name],
                }
                for name, n in self.counts.items()
            },
            "strata": self.strata,
            "warnings": self.warnings,
        }

    def write(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the split files, ``rejected.jsonl`` and ``manifest.json`` (see ``write_split``)."""
        return write_split(self, directory)

    def to_datasets(self) -> Any:
        """The splits as a ``datasets.DatasetDict`` of the original records."""
        from datasets import Dataset, DatasetDict

        rows = self.records
        if rows is None:
            if self.source is None:
                raise ValueError("this split holds neither records nor a source file")
            rows = [r.data for r in io.read(self.source, io.ReadStats()) if isinstance(r, Record)]
        return DatasetDict({name: Dataset.from_list([rows[i] for i in self.indices(name)]) for name in self.names})


def _sizes(sizes: Mapping[str, float]) -> dict[str, float]:
    clean = {str(k): float(v) for k, v in sizes.items() if float(v) > 0}
    if not clean:
        raise ValueError("sizes must name at least one split with a positive share")
    total = sum(clean.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split sizes must add up to 1, not {total:g}")
    return clean


def _iterate(source: Any, format: str | None, chat: bool) -> tuple[Iterator[Record], Path | None, list[Any] | None]:
    """Records of a path, a list of dicts, a ``datasets.Dataset`` or a pandas DataFrame,
    one at a time; normalised to the chat view only when ``chat`` (a grouping or a stratum
    needs it). Files are parsed with orjson alone: a split needs values, not diagnostics."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)

        def from_file() -> Iterator[Record]:
            for item in io.read(path, io.ReadStats(), parse="fast"):
                if isinstance(item, Record):
                    if chat and type(item.data) is dict:
                        normalise(item, format)
                    yield item

        return from_file(), path, None
    rows = rows_of(source)

    def from_rows() -> Iterator[Record]:
        for i, data in enumerate(rows):
            rec = Record(i, data)
            if chat and type(data) is dict:
                normalise(rec, format)
            yield rec

    return from_rows(), None, rows


def split(
    source: Any,
    *,
    sizes: Mapping[str, float] = DEFAULT_SIZES,
    seed: int = 0,
    stratify_by: str | Key | None = None,
    group_by: Any = DEFAULT_GROUPING,
    min_per_stratum: int | None = None,
    bins: int = 5,
    threshold: float | None = None,
    scope: str = "prompt",
    model: str = "sentence-transformers/all-MiniLM-L6-v2",
    format: str | None = None,
    min_eval: int = 100,
    engine: str = "local",
    address: str | None = None,
    blocks: int | None = None,
) -> SplitResult:
    """Split ``source`` (a path, a list of dicts, a ``datasets.Dataset`` or a DataFrame).

    ``sizes`` maps split names to shares adding up to 1 (the first split gets rare strata).
    ``stratify_by`` is a dotted field path (``metadata.task``), ``"system"``, ``"format"`` or
    a callable of a Record; numbers are cut into ``bins`` quantile bins. ``group_by`` is a
    field path, ``"prompt"``, ``"duplicates"``, ``"near-duplicates"`` (MinHash, Jaccard >=
    ``threshold``, default 0.8), ``"semantic"`` (cosine >= ``threshold``, default 0.9), a
    callable, a list of these, or precomputed labels (one per record): every group stays in
    one split. The default groups by prompt, so that no eval prompt is also in train;
    ``"none"`` (or None) groups nothing, with a warning. Near and semantic duplicates compare ``scope`` (``prompt`` by default, as
    the leakage audit does; or ``answer``, ``conversation``). A stratum with fewer than ``min_per_stratum`` records (default: one per
    split) goes to the first split, with a warning.

    ``engine="ray"`` reads a file (``source`` must be a path) as Ray tasks over ``blocks``
    newline-aligned byte ranges on the cluster at ``address`` (see
    :func:`ftdata.distributed.split.split_columns`); the split is the local one, byte for byte.
    """
    targets = _sizes(sizes)
    groupings = grouping_list(group_by, None)
    key = stratum_key(stratify_by)
    fingerprint: Fingerprint | None
    embedder: Embedder | None = None
    if engine != "local":
        from ftdata.distributed.split import on_cluster
        from ftdata.executors.ray import RayExecutor

        if not isinstance(source, str | os.PathLike):
            raise ValueError("a split on a Ray cluster reads a file: give the path of a .jsonl or .json file")
        columns, fingerprint = on_cluster(
            source, engine=engine, address=address, blocks=blocks,
            groupings=groupings, stratum=key, seed=seed, scope=scope, format=format,
        )  # fmt: skip
        path: Path | None = Path(source)
        rows = None
        if "semantic" in groupings:  # the vectors of its records, from model-holding workers
            embedder = RayExecutor(address).embedder()
    else:
        fingerprint = Fingerprint.of(source) if isinstance(source, str | os.PathLike) else None
        # Always normalised: a record ftdata does not understand is rejected, never placed blind.
        records, path, rows = _iterate(source, format, True)
        columns = collect_columns(records, groupings=groupings, stratum=key, seed=seed, scope=scope)
    limit = threshold if threshold is not None else (0.9 if "semantic" in groupings else 0.8)
    result, strata_of = assign(
        columns, targets, groupings, stratified=key is not None, limit=limit, bins=bins, model=model,
        min_per_stratum=min_per_stratum, embedder=embedder,
    )  # fmt: skip
    result.options = {
        "sizes": targets,
        "seed": seed,
        "stratify_by": stratify_by if isinstance(stratify_by, str | type(None)) else "<callable>",
        "group_by": describe_grouping(group_by),
        "threshold": limit if groupings else None,
        "scope": scope,
        "min_per_stratum": result.options["min_per_stratum"],
        "bins": bins,
    }
    result.source, result.records, result.fingerprint = path, rows, fingerprint
    result.warnings.extend(guidance(result, stratified=key is not None, min_eval=min_eval, strata=strata_of))
    return result


def assign(
    columns: SplitColumns,
    targets: dict[str, float],
    groupings: Sequence[Any],
    *,
    stratified: bool,
    limit: float,
    bins: int,
    model: str,
    min_per_stratum: int | None,
    embedder: Embedder | None = None,
) -> tuple[SplitResult, list[str]]:
    """Place the records of ``columns`` (the whole input's): join their groups, vote each
    group's stratum and give the groups of each stratum to the splits. Whatever read the
    columns (one process, or cluster tasks over blocks), the same columns give the same
    assignment; ``embedder`` (a cluster's) computes the vectors of a semantic grouping."""
    names = list(targets)
    lines, usable, raw_strata, hashes = columns.lines, columns.usable, columns.strata, columns.hashes
    texts, text_owner = columns.texts, columns.text_owner
    n = len(lines)
    keyed = [(g, record_key(g)) for g in groupings]
    group_keys = columns.keys

    uf = UnionFind(n)
    for (grouping, get), column in zip(keyed, group_keys, strict=True):
        if get is not None:
            join_equal(uf, column)
        elif isinstance(grouping, list):
            if len(grouping) != n:
                raise ValueError(f"precomputed group labels: {len(grouping)} labels for {n} records")
            join_equal(uf, ((i, grouping[i]) for i in usable))
        else:
            if grouping == "near-duplicates":
                from ftdata.similarity.minhash import near_duplicate_pairs

                pairs = near_duplicate_pairs(texts, threshold=limit)
            else:
                from ftdata.similarity.embeddings import encode, neighbour_pairs

                pairs = list(neighbour_pairs(encode(texts, model=model, embedder=embedder), limit))
            for a, b, _ in pairs:
                uf.union(text_owner[a], text_owner[b])

    if stratified:
        raw_strata = bin_numbers(raw_strata, bins)
    strata_of = ["(missing)" if s is None else str(s) for s in raw_strata] if stratified else ["(all)"] * n

    groups: dict[int, list[int]] = {}
    for i in usable:
        groups.setdefault(uf.find(i), []).append(i)
    warnings: list[str] = [] if groupings else [UNGROUPED_WARNING]
    by_stratum: dict[str, list[list[int]]] = {}
    for members in groups.values():
        if len(members) == 1:
            stratum = strata_of[members[0]]
        else:
            votes = Counter(strata_of[i] for i in members)
            stratum = min(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        by_stratum.setdefault(stratum, []).append(members)

    assignment: list[str | None] = [None] * n
    floor = len(names) if min_per_stratum is None else min_per_stratum
    strata_report: dict[str, dict[str, int]] = {}
    for stratum in sorted(by_stratum):
        members_lists = by_stratum[stratum]
        size = sum(len(g) for g in members_lists)
        if size < floor:
            for g in members_lists:
                for i in g:
                    assignment[i] = names[0]
            warnings.append(
                f"stratum {stratum!r} has {size} record(s), too few to split (minimum {floor}): all went to {names[0]}"
            )
        else:
            _place(members_lists, names, targets, hashes, assignment)
        placed = Counter(assignment[i] for g in members_lists for i in g)
        strata_report[stratum] = {name: placed.get(name, 0) for name in names}
    result = SplitResult(
        names=names,
        assignment=assignment,
        targets=targets,
        strata=strata_report if stratified else {},
        rejected=columns.rejected,
        warnings=warnings,
        options={"min_per_stratum": floor},
        groups=len(groups),
        lines=lines,
        rejected_rules=columns.rejected_rules,
    )
    return result, strata_of


def _place(
    groups: list[list[int]],
    names: list[str],
    targets: dict[str, float],
    hashes: Mapping[int, bytes],
    assignment: list[str | None],
) -> None:
    """Give each group, largest first and then in seeded-hash order, to the split that is
    furthest below its target: shares are met by records, within one group of target."""
    total = sum(len(g) for g in groups)
    want = {name: targets[name] * total for name in names}
    have = dict.fromkeys(names, 0)
    order = sorted(groups, key=lambda g: (-len(g), min(hashes[i] for i in g)))
    for g in order:
        best = max(names, key=lambda name: (want[name] - have[name], -names.index(name)))
        have[best] += len(g)
        for i in g:
            assignment[i] = best


#: The rules whose advice a split is checked against: eval share, eval size, strata.
GUIDANCE_RULES = ("FT604", "FT605", "FT606")


def guidance(result: SplitResult, *, stratified: bool, min_eval: int, strata: Sequence[str] = ()) -> list[str]:
    """The field's advice on the split, from FT604-FT606 run by the engine over its splits
    as the files of one dataset (train first): eval share between 10% and 20%, held-out
    sets of at least ``min_eval`` records, every stratum (``strata[i]``, record ``i``'s)
    of train present in each held-out split. One line each, ``"<split>: <message> (<code>)"``."""
    from ftdata.config import Settings
    from ftdata.engine.dataset import Column, DatasetHandle, DatasetView
    from ftdata.engine.plan import compile_plan
    from ftdata.engine.run import files_findings

    label = result.options.get("stratify_by")
    field_name = (label if isinstance(label, str) else "stratum") if stratified else ""
    options: dict[str, dict[str, Any]] = {"FT605": {"min_records": min_eval}, "FT606": {"field": field_name}}
    plan = compile_plan(Settings(select=GUIDANCE_RULES, options=options))
    group = []
    for name in result.names:
        members = result.indices(name)
        # The rules read the size of each split and, for FT606, the stratum of each record.
        handle = DatasetHandle(name, formats=bytearray(len(members)), records=())
        views = {}
        for bound in plan.files:
            column = Column()
            if bound.code == "FT606" and field_name:
                for position, i in enumerate(members):
                    column.append(position, strata[i])
            views[bound.code] = DatasetView(handle, column)
        group.append((name, views))
    return [f"{f.source}: {f.message} ({f.code})" for f in files_findings(plan, group)]
