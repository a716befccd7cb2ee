"""JSON: an array of finding objects, or one object a line."""

from __future__ import annotations

from typing import TextIO

import orjson

from ftdata.findings import Report


def render_json(report: Report, stream: TextIO) -> None:
    stream.write(orjson.dumps(report.to_dicts(), option=orjson.OPT_INDENT_2).decode() + "\n")


def render_json_lines(report: Report, stream: TextIO) -> None:
    for d in report.to_dicts():
        stream.write(orjson.dumps(d).decode() + "\n")
