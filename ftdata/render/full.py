"""Each finding with its severity, the JSON path and an excerpt of the line."""

from __future__ import annotations

from collections import defaultdict
from typing import TextIO

from ftdata.findings import Report
from ftdata.render.concise import location, notes, summary
from ftdata.render.excerpt import read_lines, window
from ftdata.render.text import shift, visible


def render(report: Report, stream: TextIO) -> None:
    """Each finding with its severity, an excerpt of its line with a caret, its JSON path
    and related records; then the notes of the run and the summary. Every piece of data is made inert."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for f in report.findings:
        if f.line is not None and not f.source.startswith("<"):
            wanted[f.source].add(f.line)
    lines = {source: read_lines(source, numbers) for source, numbers in wanted.items()}
    for f in report.findings:
        stream.write(f"{location(f)}: {f.code} [{f.severity}] {visible(f.message)}\n")
        text = lines.get(f.source, {}).get(f.line or 0)
        if text is not None:
            gutter = " " * len(str(f.line))
            piece, caret = window(text, f.column or 1)
            piece, caret = visible(piece), shift(piece, caret)
            stream.write(f"{gutter} |\n{f.line} | {piece}\n{gutter} | {' ' * caret}^\n")
        if f.path:
            stream.write(f"  = at {visible(f.json_path)}\n")
        if f.related:
            shown = ", ".join(str(i) for i in f.related[:10])
            more = f" and {len(f.related) - 10:,} more" if len(f.related) > 10 else ""
            stream.write(f"  = related records: {shown}{more}\n")
        stream.write("\n")
    for line in notes(report):
        stream.write(line + "\n")
    stream.write(summary(report) + "\n")
