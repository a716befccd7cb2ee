"""Progress reports: long work calls ``progress(stage, done, total)`` now and then, and the
caller draws (the CLI draws a bar on a terminal). The library itself never prints."""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(stage, done, total)``: ``stage`` names the step ("reading data.jsonl",
#: "shingle", "embed"...); ``done`` of ``total`` units (bytes, records or texts) are done.
Progress = Callable[[str, int, int], None]

__all__ = ["Progress"]
