"""How exact and MinHash dedup grow: wall time and peak memory of `ftdata dedup` on planted
corpora of 10k, 100k and 1M records (about 1.9 KB each; 2% exact copies, 5% near copies).

    python benchmarks/dedup_scale.py [--records 10000,100000,1000000] [--markdown docs/benchmarks.md]

Peak RSS is the largest sum of the resident memory of the command and its worker
processes, sampled every 50 ms (so it counts the process pool, which ``ru_maxrss`` does
not add up).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, machine, publish, table
from corpus import _mutate, record


def write_scaled(path: Path, n: int, seed: int = 0) -> Path:
    """A planted corpus written as it is generated (the copies come from the last 5,000
    records), so that a million records need no more memory than ten thousand."""
    rng = random.Random(seed)
    recent: list[str] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(n):
            roll = rng.random()
            if roll < 0.02 and recent:
                line = rng.choice(recent)
            elif roll < 0.07 and recent:
                copy = json.loads(rng.choice(recent))
                last = copy["messages"][-1]
                last["content"] = _mutate(rng, last["content"], rng.choice([1, 2, 4, 8]))
                line = json.dumps(copy, ensure_ascii=False)
            else:
                line = json.dumps(record(rng, i), ensure_ascii=False)
            recent.append(line)
            if len(recent) > 5000:
                recent[rng.randrange(5000)] = recent.pop()
            f.write(line + "\n")
    tmp.replace(path)
    return path


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, the process and its children together) of ``cmd``."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    top = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [top, *top.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
    return seconds, peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="10000,100000,1000000")
    parser.add_argument("--methods", default="exact,minhash")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    rows = []
    for n in (int(x) for x in args.records.split(",")):
        path = DATA / f"scaled-{n // 1000}k.jsonl"
        if not path.exists():
            print(f"generating {path} ...", file=sys.stderr)
            write_scaled(path, n)
        size = path.stat().st_size
        for method in args.methods.split(","):
            out = DATA / f"scaled-{n // 1000}k.{method}.out.jsonl"
            cmd = [sys.executable, "-m", "ftdata", "dedup", str(path), "-o", str(out), "--method", method, "-q"]
            seconds, peak = run(cmd)
            with open(out.with_name(f"{out.stem}.rejected.jsonl"), "rb") as f:
                rejected = sum(1 for _ in f)
            rows.append(
                [
                    method,
                    f"{n:,}",
                    f"{size / 1e6:,.0f}",
                    f"{seconds:.1f}",
                    f"{n / seconds:,.0f}",
                    f"{peak:,.0f}",
                    f"{peak * 1e6 / n:,.0f}",
                    f"{rejected:,}",
                    f"{os.getloadavg()[0]:.1f}",
                ]
            )
            print(rows[-1], file=sys.stderr)
    headers = ["method", "records", "MB", "seconds", "records/s", "peak RSS MB", "bytes/record", "rejected", "load"]
    text = "\n".join([f"`ftdata dedup` on planted corpora; {machine()}.", "", table(headers, rows)])
    publish(text, args.markdown, "dedup-scale", "python benchmarks/dedup_scale.py --records " + args.records)


if __name__ == "__main__":
    main()
