"""The audit on a terminal: rich tables, plain text when the output is not a terminal.

Nothing from the data is read as rich markup or emoji codes: every piece of it goes in as
a :class:`rich.text.Text`, made visible first (no escape sequence or line break survives).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdata import registry
from ftdata.findings import Severity
from ftdata.render.text import visible, visible_path

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

    from ftdata.auditing import AuditReport
    from ftdata.measure import AuditStats


def print_audit(report: AuditReport, *, html_file: Path | None = None, json_file: Path | None = None) -> None:
    """Print the audit's warnings, findings by rule and each file's figures to stdout."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, emoji=False, soft_wrap=False, width=None if sys.stdout.isatty() else 120)
    for warning in report.warnings:
        # soft_wrap: a data-derived line is never broken where a CI could read a new line.
        console.print(Text("Warning: " + visible(warning), style="bold red"), soft_wrap=True)
    counts = report.severity_counts()
    console.print(
        f"[bold]{report.total_records:,}[/] records in {len(report.sources)} file(s): "
        f"[red]{counts[Severity.ERROR]:,} errors[/], [yellow]{counts[Severity.WARNING]:,} warnings[/], "
        f"{counts[Severity.INFO]:,} info"
    )
    by_rule = Counter((f.code, f.severity) for f in report.findings)
    if by_rule:
        table = Table(title="Findings by rule", title_justify="left")
        for column in ("code", "rule", "severity", "findings"):
            table.add_column(column, justify="right" if column == "findings" else "left")
        for (code, sev), n in sorted(by_rule.items(), key=lambda kv: (-kv[0][1], -kv[1], kv[0][0])):
            try:
                name = registry.get(code).name
            except KeyError:
                name = ""
            colour = {"error": "red", "warning": "yellow"}.get(str(sev), "blue")
            table.add_row(code, name, f"[{colour}]{sev}[/]", f"{n:,}")
        console.print(table)
    for stats in report.stats:
        console.print(Text(visible_path(stats.source), style="italic"), soft_wrap=True)
        table = Table()
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_row("readable records", f"{stats.valid:,} of {stats.records:,}")
        table.add_row("formats", Text(", ".join(f"{visible(k)} {v:,}" for k, v in stats.formats.items()) or "-"))
        table.add_row(
            "messages by role",
            Text(", ".join(f"{visible(k)} {v:,}" for k, v in stats.messages_per_role.items()) or "-"),
        )
        table.add_row(
            "distinct system prompts",
            f"{len(stats.system_prompts):,}" + (" or more" if len(stats.system_prompts) == 10 else ""),
        )
        table.add_row("records without a system prompt", f"{stats.without_system_prompt:,}")
        _token_rows(table, stats)
        if stats.duplicate_clusters:
            table.add_row("exact-duplicate clusters", f"{sum(stats.duplicate_clusters.values()):,}")
        if stats.distinct_2 is not None:
            table.add_row("distinct prompt bigrams", f"{stats.distinct_2:.3f}")
        _pair_rows(table, report.pairs.get(stats.source, {}))
        console.print(table)
    for label, path in (("HTML report", html_file), ("JSON", json_file)):
        if path is not None:
            console.print(Text(f"{label}: {visible(path)}"), soft_wrap=True)


def _pair_rows(table: Table, figures: dict[str, Any]) -> None:
    """One row for the length bias of preference pairs, one for the labels of KTO
    records (yellow, with the code, when FT706 or FT705 warned)."""
    from rich.text import Text

    pairs, kto = figures.get("preference"), figures.get("kto")
    if pairs:
        compared = pairs["pairs"] - pairs["equal_length"]
        text = f"{pairs['chosen_longer']:,} of {compared:,} pairs ({pairs['chosen_longer_share']:.0%})"
        if pairs["median_length_ratio"] is not None:
            text += f", median length ratio {pairs['median_length_ratio']:.2f}"
        if pairs.get("tokens"):
            text += f"; by tokens {pairs['tokens']['chosen_longer_share']:.0%}"
        table.add_row("chosen reply longer", Text(f"{text} (FT706)", "yellow") if pairs["warning"] else Text(text))
    if kto:
        text = f"{kto['desirable']:,} desirable, {kto['undesirable']:,} undesirable"
        if kto["not_boolean"]:
            text += f", {kto['not_boolean']:,} not a boolean"
        if kto["desirable_weight"] is not None:
            text += f"; desirable_weight={kto['desirable_weight']:g}, undesirable_weight={kto['undesirable_weight']:g}"
        table.add_row("KTO labels", Text(f"{text} (FT705)", "yellow") if kto["warning"] else Text(text))


def _token_rows(table: Table, stats: AuditStats) -> None:
    """Lengths, records over ``max_length`` and the share trained on, each label saying what it
    counts when a record is a pair or stepwise."""
    from ftdata.render.html import counted, steps_text

    notes = counted(stats)
    tokens = stats.to_dict()["tokens"]["total"]
    length = [n for n in ("estimated" if stats.tokens_estimated else "", notes.get("length", "")) if n]
    if tokens.get("count"):
        table.add_row(
            "tokens per record" + (f" ({'; '.join(length)})" if length else ""),
            f"median {tokens['p50']:,}, p95 {tokens['p95']:,}, max {tokens['max']:,}",
        )
    if stats.max_length:
        over = f" ({notes['over']})" if "over" in notes else ""
        table.add_row(f"over max_length {stats.max_length:,}{over}", f"{stats.over_max_length:,}")
    label = "tokens trained on" + (f" ({notes['trained']})" if "trained" in notes else "")
    if stats.stepwise:
        table.add_row(label, f"{stats.trained_share:.1%}: {steps_text(stats)}")
    else:
        table.add_row(label, f"{stats.trained_share:.0%}")
