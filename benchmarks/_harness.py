"""Timing helpers shared by the benchmark scripts: best-of-N wall time and peak RSS of a
command run in a fresh process, and a markdown table printer."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

_MEASURE = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
elapsed = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": elapsed, "max_rss_kb": usage.ru_maxrss, "rc": proc.returncode, "stderr": proc.stderr.decode()[-500:]}))
"""


def measure(cmd: Sequence[str], repeat: int = 3) -> dict[str, float]:
    """Run ``cmd`` ``repeat`` times, each under a fresh parent; best wall time, peak RSS."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout)
        if result["rc"] not in (0, 1):
            raise RuntimeError(f"{' '.join(cmd)} failed: {result['stderr']}")
        runs.append(result)
    return {
        "seconds": min(r["seconds"] for r in runs),
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "max_rss_mb": max(r["max_rss_kb"] for r in runs) / 1024,
    }


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "| " + " | ".join("-" * w for w in widths) + " |", *map(line, cells)])


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = ""
    try:
        for raw in Path("/proc/cpuinfo").read_text().splitlines():
            if raw.startswith("model name"):
                model = raw.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpus} CPUs ({model or 'unknown'}), Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}"


def replace_section(doc: Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``doc``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    doc.write_text(text, encoding="utf-8")


def publish(text: str, markdown: Path | None, section: str, command: str) -> None:
    """Print ``text``; with ``markdown``, also put it, headed by the ``command`` that made
    it, in that document's ``section``."""
    print(text)
    if markdown:
        replace_section(markdown, section, f"Command: `{command}`\n\n{text}")
