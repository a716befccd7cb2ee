"""Merging shard results in file order: lines and record indices shifted, the error
budget (``max_errors``) applied across shards; and one finding per problem when several
dataset rules see the same records (:func:`supersede`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ftdata.engine.dataset import Column
from ftdata.engine.plan import BoundRule
from ftdata.engine.scan import ShardResult
from ftdata.findings import Issue, Severity


def merge(parts: Iterable[ShardResult], source: str, max_errors: int | None) -> ShardResult:
    """One result for a file from the results of its shards, in order."""
    total = ShardResult(source)
    line_shift = index_shift = 0
    for part in parts:
        for f in part.findings:
            if total.truncated:
                break
            if line_shift or index_shift:
                f = replace(
                    f,
                    line=f.line + line_shift if f.line is not None else None,
                    index=f.index + index_shift if f.index is not None else None,
                )
            total.findings.append(f)
            if f.severity >= Severity.ERROR:
                total.errors += 1
                if max_errors is not None and total.errors >= max_errors:
                    total.truncated = True
        total.formats += part.formats
        if not total.folds:
            total.folds = part.folds
        else:
            for mine, theirs in zip(total.folds, part.folds, strict=True):
                mine.merge(theirs)
        total.rule_failures.update(part.rule_failures)
        total.unreadable += part.unreadable
        for code, column in part.collected.items():
            total.collected.setdefault(code, Column()).extend(column, index_shift)
        s = part.stats
        if s.crlf_lines and not total.stats.crlf_lines:
            total.stats.first_crlf_line = s.first_crlf_line + line_shift
        total.stats.crlf_lines += s.crlf_lines
        total.stats.missing_final_newline = s.missing_final_newline
        line_shift += s.lines
        index_shift += s.records
        total.truncated = total.truncated or part.truncated
        if part.truncated:
            break
    total.stats.lines = line_shift
    total.stats.records = index_shift
    return total


def supersede(located: list[tuple[BoundRule, Issue]]) -> list[tuple[BoundRule, Issue]]:
    """One finding per problem: an issue of a rule on a record that a rule it is
    ``superseded_by`` also reports is dropped; a kept one whose group holds records the
    stronger rule reports says how many. Rules that supersede nothing pass unchanged, and
    a rule run alone (as ``ftdata dedup`` runs them) keeps all its issues."""
    reported: dict[str, set[int]] = {}
    for bound, issue in located:
        if issue.index is not None:
            reported.setdefault(bound.code, set()).add(issue.index)
    if not any(set(bound.rule.superseded_by) & reported.keys() for bound, _ in located):
        return located
    out = []
    for bound, issue in located:
        stronger = [c for c in bound.rule.superseded_by if c in reported]
        if not stronger or issue.index is None:
            out.append((bound, issue))
            continue
        if any(issue.index in reported[c] for c in stronger):
            continue
        notes = [
            f"{n} of them reported by {c}" for c in stronger if (n := len(reported[c].intersection(issue.related)))
        ]
        out.append(
            (bound, replace(issue, message=f"{issue.message} ({'; '.join(notes)})")) if notes else (bound, issue)
        )
    return out
