"""``path:line:col: CODE message``, one finding a line, then a summary."""

from __future__ import annotations

from typing import TextIO

from ftdata.findings import Finding, Report, Severity
from ftdata.render.text import visible, visible_path


def location(f: Finding) -> str:
    """``path:line:col``, ``path[index]`` or ``path``, the file name made inert."""
    source = visible_path(f.source)
    if f.line is not None:
        return f"{source}:{f.line}:{f.column or 1}"
    if f.index is not None:
        return f"{source}[{f.index}]"
    return source


def finding_line(f: Finding) -> str:
    """One finding as one line (no newline at the end): ``path:line:col: CODE message``."""
    return f"{location(f)}: {f.code} {visible(f.message)}"


def notes(report: Report) -> list[str]:
    """``path: note: ...`` for each note of the run on a source (rules that did not apply
    to some of its records), once per file; not findings, so not in the summary's counts."""
    out = []
    for s in report.sources:
        for note in getattr(s, "not_applied", ()):
            out.append(f"{visible_path(s.source)}: note: {visible(note.message)}")
    return out


def summary(report: Report) -> str:
    """One line: what was found, by severity, and in how many sources."""
    n_sources = len(report.sources)
    where = f"{n_sources} file{'s' if n_sources != 1 else ''}"
    records = f"{report.total_records:,} record{'s' if report.total_records != 1 else ''}"
    if report.unexplained and not report.findings:
        return f"Not checked: {report.unexplained:,} of {records} in {where} could not be read."
    if not report.findings:
        return f"All checks passed ({records} in {where})."
    counts = report.severity_counts()
    parts = [
        f"{counts[s]:,} {s}{'s' if counts[s] != 1 and s is not Severity.INFO else ''}"
        for s in reversed(Severity)
        if counts[s]
    ]
    n = len(report.findings)
    line = f"Found {n:,} finding{'s' if n != 1 else ''} ({', '.join(parts)}) in {records} in {where}."
    if any(s.truncated for s in report.sources):
        line += " Stopped early at --max-errors."
    return line


def render(report: Report, stream: TextIO) -> None:
    """One line a finding, the notes of the run, then the summary."""
    for f in report.findings:
        stream.write(finding_line(f) + "\n")
    for line in notes(report):
        stream.write(line + "\n")
    stream.write(summary(report) + "\n")
