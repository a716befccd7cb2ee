"""Renderers of a Report: concise, full, json, json-lines, github, sarif.

The text formats show data through :func:`ftdata.render.text.visible` (nothing from a
record or a file name can act on a terminal or a CI log); the data formats keep it exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from ftdata.findings import Report
from ftdata.render import concise, full, github, jsonout, sarif

OUTPUT_FORMATS: dict[str, Callable[[Report, TextIO], None]] = {
    "concise": concise.render,
    "full": full.render,
    "json": jsonout.render_json,
    "json-lines": jsonout.render_json_lines,
    "github": github.render,
    "sarif": sarif.render,
}


def render(report: Report, output_format: str, stream: TextIO) -> None:
    """Write ``report`` to ``stream`` in ``output_format``."""
    try:
        renderer = OUTPUT_FORMATS[output_format]
    except KeyError:
        raise ValueError(f"unknown output format {output_format!r} (known: {', '.join(OUTPUT_FORMATS)})") from None
    renderer(report, stream)
