"""Split speed at 1M records with precomputed near-duplicate clusters, and the leakage a
plain random split leaves on the planted corpus next to ftdata's.

    python benchmarks/splits.py [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, machine, measure, publish, python, table
from corpus import write, write_planted

SPLIT_1M = """
import json, random, sys, time
from ftdata.curation.split import split, write_split
n = int(sys.argv[3])
rng = random.Random(0)
labels, cluster = [], 0
while len(labels) < n:  # precomputed clusters of 1 to 4 records, as dedup/MinHash would give
    size = rng.choice([1, 1, 1, 1, 2, 3, 4])
    labels.extend([cluster] * size)
    cluster += 1
t0 = time.perf_counter()
result = split(sys.argv[1], stratify_by="metadata.source", group_by=labels[:n], seed=0)
t1 = time.perf_counter()
write_split(result, sys.argv[2])
t2 = time.perf_counter()
print(json.dumps({"split": t1 - t0, "write": t2 - t1, "groups": result.groups, "counts": result.counts}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    import subprocess

    import ftdata
    from ftdata.curation.split import write_split

    big = DATA / "chat-1000k.jsonl"
    if not big.exists():
        write(big, 1_000_000)
    out = DATA / "split-1m"
    timing = measure(python(SPLIT_1M, str(big), str(out), "1000000"), 1)
    detail = json.loads(
        subprocess.run(
            python(SPLIT_1M, str(big), str(out), "1000000"), capture_output=True, text=True, check=True
        ).stdout
    )
    planted = DATA / "planted-100k.jsonl"
    if not planted.exists():
        write_planted(planted, 100_000)
    rows = []
    for label, kwargs in (
        ("random (no groups; what a shuffle gives)", {}),
        ("ftdata, group_by=prompt", {"group_by": "prompt"}),
        ("ftdata, group_by=[prompt, near-duplicates]", {"group_by": ["prompt", "near-duplicates"]}),
    ):
        result = ftdata.split(planted, seed=0, **kwargs)
        paths = write_split(result, DATA / f"split-planted-{len(rows)}")
        report = ftdata.leakage([paths["train"], paths["eval"]], methods=("exact", "minhash"), threshold=0.8)
        exact = sum(1 for k in report.leaks if k.method == "exact")
        near = sum(1 for k in report.leaks if k.method == "minhash")
        rows.append(
            [
                label,
                f"{result.counts['eval']:,}",
                f"{len(report.leaked_records(str(paths['eval']))):,}",
                f"{exact:,}",
                f"{near:,}",
            ]
        )
    text = "\n".join(
        [
            f"{machine()}.",
            "",
            f"Split of 1,000,000 records ({big.stat().st_size / 1e9:.2f} GB) stratified on `metadata.source`, with precomputed",
            f"clusters of 1-4 records as group labels: {detail['split']:.1f} s to read and assign ({detail['groups']:,} groups),",
            f"{detail['write']:.1f} s to write the splits byte for byte with sha256 in the manifest; {timing['seconds']:.1f} s and",
            f"{timing['max_rss_mb']:.0f} MB peak RSS for the whole process.",
            "",
            "Leakage between train and eval (prompt scope, exact and MinHash Jaccard >= 0.8) on the planted corpus",
            "(100,000 records, eval 15%):",
            "",
            table(["split", "eval records", "eval records leaking", "exact pairs", "near pairs"], rows),
        ]
    )
    publish(text, args.markdown, "splits", "python benchmarks/splits.py")


if __name__ == "__main__":
    main()
