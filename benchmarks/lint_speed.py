"""Lint throughput against the floor (orjson and msgspec parsing alone, one core) and the
usual validators (pydantic ``validate_json`` and jsonschema on the same schema), cold start,
and peak memory. Every ftdata row is timed in the same run as its peers, with the cache
off, so the ratios hold on a busy machine; the load average is printed with them.

    python benchmarks/lint_speed.py                 # 100k records (about 190 MB)
    python benchmarks/lint_speed.py --quick         # 20k records (about 37 MB), for iteration
    python benchmarks/lint_speed.py --large         # also 1M records, for memory
    python benchmarks/lint_speed.py --markdown docs/benchmarks.md
    python benchmarks/lint_speed.py --quick --against /tmp/old  # also an earlier tree, same run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, machine, measure, publish, python, table
from corpus import write

MSGSPEC = """
import msgspec, sys
decode = msgspec.json.Decoder().decode
with open(sys.argv[1], "rb") as f:
    for line in f:
        decode(line)
"""

ORJSON = """
import orjson, sys
with open(sys.argv[1], "rb") as f:
    for line in f:
        orjson.loads(line)
"""

PYDANTIC = """
import sys
from typing import Literal, Union
from pydantic import BaseModel, ConfigDict, TypeAdapter

class Function(BaseModel):
    name: str
    arguments: str

class ToolCall(BaseModel):
    id: str
    type: Literal["function"]
    function: Function

class TextPart(BaseModel):
    type: Literal["text"]
    text: str

class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Union[str, list[TextPart], None] = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    weight: Literal[0, 1] | None = None

class Record(BaseModel):
    messages: list[Message]
    tools: list[dict] | None = None

adapter = TypeAdapter(Record)
limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
with open(sys.argv[1], "rb") as f:
    for i, line in enumerate(f):
        if limit is not None and i >= limit:
            break
        adapter.validate_json(line)
"""

JSONSCHEMA = """
import json, sys
from jsonschema import Draft202012Validator
tool_call = {"type": "object", "required": ["id", "type", "function"], "properties": {
    "id": {"type": "string"}, "type": {"const": "function"},
    "function": {"type": "object", "required": ["name", "arguments"], "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}}}}}
message = {"type": "object", "required": ["role"], "additionalProperties": False, "properties": {
    "role": {"enum": ["system", "developer", "user", "assistant", "tool", "function"]},
    "content": {"anyOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {"type": "object", "required": ["type", "text"], "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}}]},
    "name": {"type": "string"}, "tool_calls": {"type": "array", "items": tool_call}, "tool_call_id": {"type": "string"}, "weight": {"enum": [0, 1]}}}
schema = {"type": "object", "required": ["messages"], "properties": {"messages": {"type": "array", "items": message}, "tools": {"type": "array"}}}
validator = Draft202012Validator(schema)
limit = int(sys.argv[2])
with open(sys.argv[1], "rb") as f:
    for i, line in enumerate(f):
        if i >= limit:
            break
        for _ in validator.iter_errors(json.loads(line)):
            pass
"""


def corpus(n: int) -> Path:
    path = DATA / f"chat-{n // 1000}k.jsonl"
    if not path.exists():
        print(f"generating {path} ...", file=sys.stderr)
        write(path, n)
    return path


def cold_start(runs: int = 15) -> float:
    path = DATA / "chat-10-lines.jsonl"
    if not path.exists():
        write(path, 10)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ftdata", "lint", str(path)], stdout=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _memory_row(records: str, mb: float, jobs: int, run: dict[str, float]) -> list[object]:
    return [
        records,
        f"{mb:.0f}",
        jobs,
        f"{run['seconds']:.1f}",
        f"{mb / run['seconds']:.0f}",
        f"{run['max_rss_mb']:.0f}",
    ]


#: The record rules: reader, schema and content rules, without the opt-in ones.
RECORD_RULES = ["--select", "FT0,FT1,FT3", "--ignore", "FT101,FT106,FT312"]
#: What issue 13 asks of the ratios to orjson (one core) and of two jobs over one.
TARGETS = {"record rules, 1 job": 0.25, "default rules, 1 job": 0.2}


def _with_path(folder: Path, cmd: list[str], repeat: int) -> dict[str, float]:
    """``measure(cmd)`` with the ftdata package imported from ``folder`` (``python -m``
    puts the current folder first on the path, so the command runs from there)."""
    before, here = os.environ.get("PYTHONPATH"), os.getcwd()
    os.environ["PYTHONPATH"] = str(folder.resolve())
    os.chdir(folder)
    try:
        return measure(cmd, repeat)
    finally:
        os.chdir(here)
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="20k records, no validators, no cold start")
    parser.add_argument("--large", action="store_true", help="also measure 1M records (about 1.9 GB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", type=Path, help="write the results into this markdown file")
    parser.add_argument(
        "--against",
        type=Path,
        help="a folder holding an earlier copy of the ftdata package: its ftdata rows are timed in the same run",
    )
    parser.add_argument(
        "--select",
        help="also time `ftdata lint --select SELECT` (e.g. FT001: the reader and the engine without rules)",
    )
    args = parser.parse_args()
    os.environ["FTDATA_NO_CACHE"] = "1"  # a cache hit would time the hash, not the lint
    if args.quick:
        args.records = 20_000

    path = corpus(args.records)
    size_mb = path.stat().st_size / 1e6
    lines = args.records
    subset = min(lines, 10_000)
    lint = [sys.executable, "-m", "ftdata", "lint", str(path), "--isolated", "--output-format", "json-lines"]
    load_before = os.getloadavg()
    results = {
        "orjson.loads (1 core)": (measure(python(ORJSON, str(path)), args.repeat), 1.0),
        "msgspec.json.decode (1 core)": (measure(python(MSGSPEC, str(path)), args.repeat), 1.0),
    }
    if not args.quick:
        results["pydantic validate_json (1 core)"] = (measure(python(PYDANTIC, str(path)), args.repeat), 1.0)
        results[f"jsonschema (1 core, first {subset:,})"] = (
            measure(python(JSONSCHEMA, str(path), str(subset)), 1),
            subset / lines,
        )
    runs = {
        "ftdata lint, record rules, 1 job": [*lint, *RECORD_RULES, "--jobs", "1"],
        "ftdata lint, record rules, 2 jobs": [*lint, *RECORD_RULES, "--jobs", "2"],
        "ftdata lint, default rules, 1 job": [*lint, "--jobs", "1"],
        "ftdata lint, default rules, 2 jobs": [*lint, "--jobs", "2"],
    }
    if args.select:
        runs[f"ftdata lint, --select {args.select}, 1 job"] = [*lint, "--select", args.select, "--jobs", "1"]
        runs[f"ftdata lint, --select {args.select}, 2 jobs"] = [*lint, "--select", args.select, "--jobs", "2"]
    for name, cmd in runs.items():
        if args.against:  # the earlier tree first, then this one, row by row: the same load for both
            results[f"{name} (earlier: {args.against})"] = (_with_path(args.against, cmd, args.repeat), 1.0)
        results[name] = (measure(cmd, args.repeat), 1.0)
    load_after = os.getloadavg()
    speeds = {name: size_mb * share / r["seconds"] for name, (r, share) in results.items()}
    floor = speeds["orjson.loads (1 core)"]
    rows = []
    for name, (r, _) in results.items():
        rows.append(
            [
                name,
                f"{speeds[name]:.0f}",
                f"{r['seconds']:.2f}",
                f"{r['max_rss_mb']:.0f}",
                f"{speeds[name] / floor:.3f}",
            ]
        )
    checks = []
    for rules in ("record rules", "default rules"):
        one, two = speeds[f"ftdata lint, {rules}, 1 job"], speeds[f"ftdata lint, {rules}, 2 jobs"]
        target = TARGETS.get(f"{rules}, 1 job")
        checks.append(
            f"- {rules}: 1 job {one / floor:.3f}x orjson"
            + (f" (target {target}x)" if target else "")
            + f"; 2 jobs {two / one:.2f}x 1 job (target 1.8x)"
        )
    out = [
        f"Corpus: {lines:,} chat records, {size_mb:.0f} MB (`benchmarks/corpus.py`). Machine: {machine()}.",
        f"Load average (1, 5, 15 min) before {_load(load_before)}, after {_load(load_after)}.",
        "Best of the runs; the jsonschema row is timed on a prefix and scaled. The cache is off.",
        "",
        table(["run", "MB/s", "seconds", "peak RSS MB", "× orjson"], rows),
        "",
        *checks,
    ]
    if not args.quick:
        out += ["", f"Cold start of `ftdata lint` on a 10-line file: median {cold_start():.3f} s over 15 runs."]
    if args.large:
        big = corpus(1_000_000)
        big_lint = [*lint[:4], str(big), *lint[5:], *RECORD_RULES]
        r1 = measure([*big_lint, "--jobs", "1"], 1)
        r2 = measure([*big_lint, "--jobs", "2"], 1)
        mb = big.stat().st_size / 1e6
        out += [
            "",
            "Peak memory stays flat with file size (record rules; peak RSS of the largest process):",
            "",
            table(
                ["records", "MB", "jobs", "seconds", "MB/s", "peak RSS MB"],
                [
                    _memory_row(f"{lines:,}", size_mb, 1, results["ftdata lint, record rules, 1 job"][0]),
                    _memory_row(f"{lines:,}", size_mb, 2, results["ftdata lint, record rules, 2 jobs"][0]),
                    _memory_row("1,000,000", mb, 1, r1),
                    _memory_row("1,000,000", mb, 2, r2),
                ],
            ),
        ]
    text = "\n".join(out)
    flags = " --quick" if args.quick else " --large" if args.large else ""
    publish(text, args.markdown, "lint", "python benchmarks/lint_speed.py" + flags)
    print(json.dumps({k: round(v, 1) for k, v in speeds.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
