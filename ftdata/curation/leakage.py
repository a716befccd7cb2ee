"""``ftdata.leakage``: records of a later file (eval, test) that repeat, exactly or nearly,
a record of an earlier one (train). It is the engine running FT601 (exact), FT602
(MinHash) and FT603 (embeddings) over the files, in the order given; the report is built
from their findings.

One answer, the rules' answer: each leaked record is reported once, with the record it
matches (its first exact match; else its most similar near match), by the first method
that finds it in the order exact, minhash, semantic. A count of "pairs" is a count of
leaked records. Options come from the rules' options and ``[tool.ftdata.splits]``; the
keyword arguments override them.

Only records ftdata can read (:attr:`Record.readable`) are compared; the others are listed
in :attr:`LeakageReport.unreadable` and make the report incomplete (``failed()`` is then
True), since a leak among them could not be seen. So does a rule that could not finish
(:attr:`LeakageReport.errors`)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdata.curation.dedup import Unreadable, read_records, why_unreadable
from ftdata.findings import RULE_ERROR, Finding

if TYPE_CHECKING:
    from ftdata.executors import Executor

METHODS = ("exact", "minhash", "semantic")
SCOPES = ("prompt", "answer", "conversation")
DEFAULT_METHODS = ("exact", "minhash")
#: The rule that asks each method's question.
RULE_OF_METHOD = {"exact": "FT601", "minhash": "FT602", "semantic": "FT603"}
METHOD_OF_RULE = {code: method for method, code in RULE_OF_METHOD.items()}


@dataclass(frozen=True)
class Leak:
    """One record of ``source_b`` matching one of ``source_a`` (earlier on the list)."""

    method: str
    similarity: float
    source_a: str
    index_a: int
    line_a: int | None
    source_b: str
    index_b: int
    line_b: int | None

    @classmethod
    def of(cls, finding: Finding) -> Leak:
        """The leak an FT601-FT603 finding reports (it names the earlier record in ``other``)."""
        other = finding.other
        if other is None or finding.index is None:
            raise ValueError(f"{finding.code} finding without the record it leaks from")
        similarity = 1.0 if finding.score is None else finding.score
        method = METHOD_OF_RULE[finding.code]
        return cls(
            method, similarity, other.source, other.index, other.line, finding.source, finding.index, finding.line
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "rule": RULE_OF_METHOD[self.method],
            "similarity": round(self.similarity, 6),
            "a": {"source": self.source_a, "index": self.index_a, "line": self.line_a},
            "b": {"source": self.source_b, "index": self.index_b, "line": self.line_b},
        }


@dataclass
class LeakageReport:
    """The leaked records of each file after the first, one :class:`Leak` each, with the
    findings they come from (``findings``, one per leak)."""

    sources: list[str]
    records: dict[str, int]
    leaks: list[Leak] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    unreadable: dict[str, list[Unreadable]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.leaks)

    @property
    def complete(self) -> bool:
        """True when every record of every file was read and compared by every rule."""
        return not any(self.unreadable.values()) and not self.errors

    def failed(self) -> bool:
        """True when something leaks, or when the audit is incomplete."""
        return bool(self.leaks) or not self.complete

    def counts(self) -> dict[tuple[str, str, str], int]:
        """Leaked records per (file a, file b, method)."""
        return dict(Counter((k.source_a, k.source_b, k.method) for k in self.leaks))

    def leaked_records(self, source: str) -> set[int]:
        """Indices of ``source``'s records that match a record of an earlier file."""
        return {k.index_b for k in self.leaks if k.source_b == source}

    def to_dicts(self) -> list[dict[str, Any]]:
        return [k.to_dict() for k in self.leaks]


def leakage(
    paths: Sequence[str | os.PathLike[str]],
    *,
    methods: Iterable[str] | None = None,
    scope: str | None = None,
    threshold: float | None = None,
    semantic_threshold: float | None = None,
    model: str | None = None,
    format: str | None = None,
    config: str | os.PathLike[str] | bool = True,
    sources: Sequence[str] | None = None,
) -> LeakageReport:
    """Records of each file of ``paths`` (train first) that repeat a record of an earlier one.

    ``methods`` picks the rules: ``exact`` (FT601), ``minhash`` (FT602, Jaccard of word
    5-grams >= ``threshold``, verified exactly), ``semantic`` (FT603, cosine >=
    ``semantic_threshold`` with ``model``); ``scope`` compares the ``prompt`` (every turn
    before the first reply: the usual leak), the ``answer`` or the ``conversation``. Each
    left at None comes from ``[tool.ftdata.splits]`` (and the rules' options) of
    ``config`` (True: the nearest pyproject.toml or ftdata.toml above the first file; a
    path: that file; False: none), else from the rules' defaults (methods: exact and
    minhash). ``sources`` names the files in the report (default: the paths as given).
    Raises ValueError on a bad argument, ConfigError on bad settings or a rule that
    cannot run (a missing extra), OSError when a file cannot be read or changes."""
    setup = prepare(
        paths, methods=methods, scope=scope, threshold=threshold, semantic_threshold=semantic_threshold,
        model=model, format=format, config=config, sources=sources,
    )  # fmt: skip
    return report_of(setup, *lint_pass(setup))


def lint_pass(
    setup: LeakSetup, executor: Executor | None = None
) -> tuple[dict[str, int], dict[str, list[Unreadable]], list[Finding]]:
    """The record counts, unreadable records and findings of one lint pass of
    ``setup.plan`` over its files, then of its cross-file rules. ``executor`` runs each
    file's shards (default: this machine's); a cluster's executor also embeds FT603's
    texts on its workers (``executor.embedder()``), while the neighbour search stays here."""
    from ftdata.engine.run import files_findings, lint_file

    files, names, plan = setup.files, setup.names, setup.plan
    found: list[Finding] = []
    views: list[tuple[str, dict[str, Any]]] = []
    records: dict[str, int] = {}
    unreadable: dict[str, list[Unreadable]] = {}
    for path, name in zip(files, names, strict=True):
        per_file: dict[str, Any] = {}
        findings, stats = lint_file(path, plan, source=name, views=per_file, executor=executor)
        found.extend(findings)
        views.append((name, per_file))
        records[name] = stats.records
        if stats.unreadable:
            unreadable[name] = _unreadable(path, plan.format)
    found.extend(files_findings(plan, views))
    return records, unreadable, found


@dataclass(frozen=True)
class LeakSetup:
    """What a leakage audit resolved before reading: the files, their names in the
    report, the methods in order and the plan of the leak rules."""

    files: list[Path]
    names: list[str]
    methods: list[str]
    plan: Any


def prepare(
    paths: Sequence[str | os.PathLike[str]],
    *,
    methods: Iterable[str] | None = None,
    scope: str | None = None,
    threshold: float | None = None,
    semantic_threshold: float | None = None,
    model: str | None = None,
    format: str | None = None,
    config: str | os.PathLike[str] | bool = True,
    sources: Sequence[str] | None = None,
) -> LeakSetup:
    """The arguments of :func:`leakage` resolved against the configuration into a
    :class:`LeakSetup` (the plan's requirements checked); ValueError, ConfigError as there."""
    from ftdata.api import settings_for
    from ftdata.config import SPLIT_OPTIONS, validate
    from ftdata.engine.plan import compile_plan

    files = [Path(p) for p in paths]
    if len(files) < 2:
        raise ValueError("leakage needs at least two files")
    names = [str(p) for p in files] if sources is None else [str(s) for s in sources]
    if len(names) != len(files) or len(set(names)) != len(names):
        raise ValueError("leakage needs one distinct source name per file")
    base = settings_for(config, files[0].parent)
    chosen = chosen_methods(methods if methods is not None else base.splits.get("methods", DEFAULT_METHODS))
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r} (expected {', '.join(SCOPES)})")
    # The keyword arguments are the [tool.ftdata.splits] keys of the same name, and win
    # over the configuration's rule options as the CLI flags do.
    given = {"scope": scope, "threshold": threshold, "semantic-threshold": semantic_threshold, "model": model}
    options: dict[str, dict[str, Any]] = {}
    for key, value in given.items():
        if value is not None:
            for code, option in SPLIT_OPTIONS[key]:
                options.setdefault(code, {})[option] = value
    # Only the leak rules run; the selection of the configuration must not switch them off.
    settings = replace(
        base, select=(), ignore=(), extend_select=(), profile=None, max_errors=None, baseline=None
    ).override(select=[RULE_OF_METHOD[m] for m in chosen], format=format, options=options)
    validate(settings)
    plan = compile_plan(settings)
    plan.preflight()

    return LeakSetup(files, names, chosen, plan)


def report_of(
    setup: LeakSetup, records: dict[str, int], unreadable: dict[str, list[Unreadable]], found: list[Finding]
) -> LeakageReport:
    """The report of the leak rules' ``found`` findings: each leaked record once, by the
    first method that finds it (exact, minhash, semantic), in file and index order."""
    report = LeakageReport(setup.names, records, options={"methods": setup.methods, **report_options(setup.plan)})
    report.unreadable = unreadable
    report.errors = [f.message for f in found if f.code == RULE_ERROR]
    first: dict[tuple[str, int], Finding] = {}
    rank = {code: k for k, code in enumerate(RULE_OF_METHOD.values())}
    for f in sorted((f for f in found if f.code in METHOD_OF_RULE), key=lambda f: rank[f.code]):
        if f.index is not None and f.other is not None:
            first.setdefault((f.source, f.index), f)
    order = {name: k for k, name in enumerate(setup.names)}
    report.findings = sorted(first.values(), key=lambda f: (order[f.source], f.index))
    report.leaks = [Leak.of(f) for f in report.findings]
    return report


def chosen_methods(methods: Iterable[str]) -> list[str]:
    """``methods`` checked and in the order of METHODS; ValueError for an unknown one or none."""
    wanted = set(methods)
    unknown = wanted - set(METHODS)
    if unknown:
        raise ValueError(f"unknown leakage method {sorted(unknown)[0]!r} (expected {', '.join(METHODS)})")
    if not wanted:
        raise ValueError(f"leakage needs at least one method ({', '.join(METHODS)})")
    return [m for m in METHODS if m in wanted]


def report_options(plan: Any) -> dict[str, Any]:
    """The options the leak rules ran with, as the report and the manifest show them."""
    out: dict[str, Any] = {}
    for bound in plan.files:
        options = {**bound.rule.options, **bound.options}
        out.setdefault("scope", options.get("scope"))
        if bound.code == "FT602":
            out["threshold"] = options["threshold"]
        elif bound.code == "FT603":
            out["semantic_threshold"] = options["threshold"]
            out["model"] = options["model"]
    return out


def _unreadable(path: Path, format: str | None) -> list[Unreadable]:
    """The records of ``path`` that could not be compared, and why (read again only when
    the pass counted some)."""
    return [Unreadable(r.index, r.line, *why_unreadable(r)) for r in read_records(path, None, format) if not r.readable]
