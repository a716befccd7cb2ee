"""The lint cache: a pre-commit-like run over unchanged files (cold, warm, and the floor:
hashing the same bytes), and one edited line in a large file (a full run against a run
that reuses the per-record keys of the dataset rules). Every figure comes from this run.

    python benchmarks/cache_speed.py                       # 10 files of 5k records; 100k records
    python benchmarks/cache_speed.py --records 20000 --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine, measure, publish, python, table
from corpus import write

HASH = """
import hashlib, sys
for name in sys.argv[1:]:
    with open(name, "rb") as f:
        hashlib.file_digest(f, "blake2b")
"""
LINT = [sys.executable, "-m", "ftdata", "lint", "--isolated", "-q", "--exit-zero"]


def _edit_one_line(path: Path) -> None:
    """Change one character of the middle record's text (a new record, same length)."""
    lines = path.read_bytes().split(b"\n")
    middle = len(lines) // 2
    at = lines[middle].rfind(b'"}')
    lines[middle] = (
        lines[middle][: at - 1] + (b"X" if lines[middle][at - 1 : at] != b"X" else b"Y") + lines[middle][at:]
    )
    path.write_bytes(b"\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--file-records", type=int, default=5000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="ftdata-cache-"))
    try:
        files = [write(work / f"part{i}.jsonl", args.file_records, seed=i) for i in range(args.files)]
        names = [str(f) for f in files]
        cache = ["--cache-dir", str(work / "c")]
        size = sum(f.stat().st_size for f in files) / 1e6
        cold = measure([*LINT, "--no-cache", *names], args.repeat)
        measure([*LINT, *cache, *names], 1)  # fills the cache
        warm = measure([*LINT, *cache, *names], args.repeat)
        floor = measure(python(HASH, *names), args.repeat)
        startup = measure([sys.executable, "-m", "ftdata", "--version"], args.repeat)
        rows = [
            ["ftdata lint, no cache", f"{cold['seconds']:.2f}", f"{size / cold['seconds']:.0f}"],
            ["ftdata lint, warm cache", f"{warm['seconds']:.2f}", f"{size / warm['seconds']:.0f}"],
            ["blake2b of the same bytes (hashlib, one process)", f"{floor['seconds']:.2f}", ""],
            ["`ftdata --version` (start-up alone)", f"{startup['seconds']:.2f}", ""],
        ]
        text = (
            f"{args.files} unchanged files of {args.file_records:,} records ({size:.0f} MB), best of "
            f"{args.repeat}: warm is {cold['seconds'] / warm['seconds']:.1f}x faster than no cache.\n\n"
            + table(["run", "seconds", "MB/s"], rows)
        )
        big = write(work / "big.jsonl", args.records, seed=7)
        mb = big.stat().st_size / 1e6
        full = measure([*LINT, "--no-cache", str(big)], args.repeat)
        first = measure([*LINT, *cache, str(big)], 1)  # no entry, no store yet: writes both
        timings = []
        for _ in range(args.repeat):
            _edit_one_line(big)
            timings.append(measure([*LINT, *cache, str(big)], 1)["seconds"])
        edited = min(timings)
        rows = [
            ["full run, no cache", f"{full['seconds']:.2f}", f"{full['max_rss_mb']:.0f}"],
            [
                "first run with the cache (writes entry and store)",
                f"{first['seconds']:.2f}",
                f"{first['max_rss_mb']:.0f}",
            ],
            ["one line edited: per-record keys reused", f"{edited:.2f}", ""],
        ]
        text += (
            f"\n\nOne line edited in a file of {args.records:,} records ({mb:.0f} MB): "
            f"{full['seconds'] / edited:.2f}x the speed of a full run.\n\n"
            + table(["run", "seconds", "peak RSS MB"], rows)
        )
        text += f"\n\n{machine()}; load average at the start {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}."
        argv = " ".join(sys.argv[1:])
        publish(text, args.markdown, "cache-speed", f"python benchmarks/cache_speed.py {argv}".strip())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
