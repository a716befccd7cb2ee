"""``ftdata.curate``: the pipeline form of lint-and-apply, on records in memory.

A training pipeline cleans a list of dicts, a ``datasets.Dataset`` or a pandas DataFrame
where ``ftdata dedup`` and ``ftdata lint --fix`` clean files: the rules run through the
engine (as :func:`ftdata.lint` runs them), and their findings decide. Nothing is lost:
every record is either kept (in the source's own type) or rejected with its reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ftdata.curation.dedup import RULE_OF_METHOD, read_records, why_unreadable
from ftdata.curation.sources import like, rows_of
from ftdata.findings import RULE_ERROR, Finding, Severity


class Reason(NamedTuple):
    """Why a record was rejected: the rule's code (None when no rule names the cause of
    an unreadable record) and its message."""

    code: str | None
    message: str


@dataclass(frozen=True)
class Rejected:
    """A record left out: its 0-based ``index`` in the source, the ``record`` itself (a
    plain dict for a DataFrame or Dataset row) and its ``reasons``, in rule-code order.
    Unpacks as ``index, record, reasons``."""

    index: int
    record: Any
    reasons: tuple[Reason, ...]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.index, self.record, self.reasons))


@dataclass
class CurateResult:
    """``kept``: the records kept, in the source's own type and order; ``rejected``: every
    other record with its reasons, in source order. Together they are the source."""

    kept: Any
    rejected: list[Rejected] = field(default_factory=list)
    kept_indices: list[int] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<CurateResult kept {len(self.kept_indices):,}, rejected {len(self.rejected):,}>"


def curate(
    source: Any,
    *,
    drop: Iterable[str] = ("error",),
    dedup: str | None = "exact",
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    profile: str | None = None,
    format: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> CurateResult:
    """Lint ``source`` (a list of dicts, a ``datasets.Dataset`` or a pandas DataFrame) and
    keep what passes.

    A record is rejected when it cannot be read (not a JSON object, an unknown layout, no
    text: never compared, never kept as clean), or when a finding about it matches
    ``drop``: a severity (``"error"``, ``"warning"``, ``"info"``: that severity and above)
    or a rule code or name (``"FT104"``). Then ``dedup`` (``"exact"``: FT401, ``"minhash"``:
    FT404, ``"semantic"``: FT405, or None) runs over the records still kept, and each
    duplicate after its group's representative is rejected, so every group keeps one
    record that passed. ``select``/``ignore``/``profile``/``format``/``options`` are
    :func:`ftdata.lint`'s. Raises ValueError on a bad argument, ConfigError on bad
    settings, and RuntimeError when a rule could not finish (a verdict would be
    incomplete)."""
    if dedup is not None and dedup not in RULE_OF_METHOD:
        raise ValueError(f"unknown dedup method {dedup!r} (expected one of {', '.join(RULE_OF_METHOD)} or None)")
    severity, codes = _drops(drop)
    rows = rows_of(source)
    reasons: dict[int, list[Reason]] = {}
    for f in _lint(rows, select=select, ignore=ignore, profile=profile, format=format, options=options):
        if f.index is not None and (f.code in codes or (severity is not None and f.severity >= severity)):
            _add(reasons, f)
    # Whatever was selected, a record ftdata cannot read is never kept as clean.
    for rec in read_records(None, rows, format):
        if not rec.readable and rec.index not in reasons:
            reasons[rec.index] = [Reason(*why_unreadable(rec))]
    if dedup is not None:
        rule = RULE_OF_METHOD[dedup]
        # Records already rejected are masked (a non-object is never compared), so that
        # indices stay the source's and no group is represented by a rejected record.
        masked = [None if i in reasons else row for i, row in enumerate(rows)]
        for f in _lint(masked, select=[rule], format=format, options=options):
            if f.code == rule and f.index is not None:
                _add(reasons, f)
    kept = [i for i in range(len(rows)) if i not in reasons]
    rejected = [Rejected(i, rows[i], tuple(sorted(dict.fromkeys(reasons[i]), key=_order))) for i in sorted(reasons)]
    return CurateResult(like(source, kept, rows), rejected, kept)


def _drops(drop: Iterable[str]) -> tuple[Severity | None, set[str]]:
    """The lowest severity dropped and the rule codes dropped whatever their severity."""
    from ftdata.findings import rule_code

    if isinstance(drop, str):
        drop = (drop,)
    levels: list[Severity] = []
    codes: set[str] = set()
    for item in drop:
        try:
            levels.append(Severity.parse(item))
        except ValueError:
            codes.add(rule_code(item))
    return (min(levels) if levels else None), codes


def _lint(rows: list[Any], *, select: Iterable[str] | None = None, **overrides: Any) -> list[Finding]:
    """The findings of the engine on ``rows`` as records (never as paths, whatever they
    hold), with the default settings and ``overrides``."""
    from ftdata.config import Settings, validate
    from ftdata.engine.plan import compile_plan
    from ftdata.engine.run import lint_records

    settings = Settings().override(select=None if select is None else list(select), **overrides)
    validate(settings)
    plan = compile_plan(settings)
    plan.preflight()
    findings, stats = lint_records(rows, plan)
    failed = [f for f in findings if f.code == RULE_ERROR]
    if failed:
        raise RuntimeError(f"a rule could not finish, so nothing was decided: {failed[0].message}")
    if stats.truncated:
        raise RuntimeError("the lint stopped early (max_errors), so not every record was checked")
    return findings


def _add(reasons: dict[int, list[Reason]], f: Finding) -> None:
    assert f.index is not None
    reasons.setdefault(f.index, []).append(Reason(f.code, f.message))


def _order(reason: Reason) -> tuple[str, str]:
    return (reason.code or "", reason.message)
