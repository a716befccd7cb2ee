"""GitHub Actions workflow commands: annotations on the changed files."""

from __future__ import annotations

from typing import TextIO

from ftdata import registry
from ftdata.findings import Report, Severity
from ftdata.render.text import visible

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _data(text: str) -> str:
    # GitHub's own escapes keep line breaks exact; everything else unsafe is made visible.
    return visible(text, keep_lines=True).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render(report: Report, stream: TextIO) -> None:
    """One workflow command a finding; data never ends a command or starts a new one."""
    for f in report.findings:
        props = [f"file={_prop(f.source)}"]
        if f.line is not None:
            props.append(f"line={f.line}")
            if f.column is not None:
                props.append(f"col={f.column}")
        try:
            name = registry.get(f.code).name
        except KeyError:
            name = f.code
        props.append(f"title={_prop(f'{f.code} ({name})')}")
        stream.write(f"::{_LEVEL[f.severity]} {','.join(props)}::{_data(f.message)}\n")
