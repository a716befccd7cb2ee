"""Duplicates, near duplicates and contradictions: accuracy on planted ground truth, speed
against datasketch and rensa, embedding throughput and neighbour search, scale to 1M records.

    python benchmarks/similarity.py [--records 100000] [--skip-datasketch] [--large]
                                    [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, machine, measure, publish, python, table
from corpus import write, write_planted

# The peers get the texts ftdata compares (read and normalised before their clock starts)
# and the same word 5-gram shingles, num_perm and threshold; ftdata is timed end to end.
_TEXTS = """
import json, sys, time
from pathlib import Path
from ftdata import io
from ftdata.formats import normalise
from ftdata.records import Record
from ftdata.similarity.text import scope_text
texts = []
for item in io.read(Path(sys.argv[1]), io.ReadStats()):
    if isinstance(item, Record) and type(item.data) is dict:
        normalise(item)
        texts.append(scope_text(item, "conversation", casefold=True))
def shingles(text):
    words = text.split()
    return list({" ".join(words[i:i + 5]) for i in range(max(1, len(words) - 4))})
"""

DATASKETCH = (
    _TEXTS
    + """
from datasketch import MinHash, MinHashLSH
t0 = time.perf_counter()
lsh = MinHashLSH(threshold=float(sys.argv[2]), num_perm=128)
pairs = set()
for k, text in enumerate(texts):
    m = MinHash(num_perm=128)
    m.update_batch([s.encode() for s in shingles(text)])
    for other in lsh.query(m):
        pairs.add((other, k))
    lsh.insert(k, m)
Path(sys.argv[3]).write_text(json.dumps({"seconds": time.perf_counter() - t0, "pairs": sorted(pairs)}))
"""
)

RENSA = (
    _TEXTS
    + """
from rensa import RMinHash, RMinHashLSH
t0 = time.perf_counter()
lsh = RMinHashLSH(threshold=float(sys.argv[2]), num_perm=128, num_bands=16)
pairs = set()
for k, text in enumerate(texts):
    m = RMinHash(num_perm=128, seed=42)
    m.update(shingles(text))
    for other in lsh.query(m):
        pairs.add((other, k))
    lsh.insert(k, m)
Path(sys.argv[3]).write_text(json.dumps({"seconds": time.perf_counter() - t0, "pairs": sorted(pairs)}))
"""
)


def _dedup_clusters(path: Path, threshold: float) -> tuple[dict[str, float], list[list[int]]]:
    """``ftdata dedup --method minhash`` timed end to end, and its clusters."""
    out = DATA / "minhash-dedup.jsonl"
    cmd = [sys.executable, "-m", "ftdata", "dedup", str(path), "-o", str(out), "--method", "minhash", "-q"]
    ours = measure([*cmd, "--threshold", str(threshold)], 1)
    report = json.loads(out.with_name(f"{out.stem}.clusters.json").read_text())
    return ours, [[m["index"] for m in c["members"]] for c in report["clusters"]]


def _truth_pairs(path: Path, threshold: float) -> tuple[set[tuple[int, int]], dict[tuple[int, int], float]]:
    """Planted near-duplicate pairs and their exact Jaccard on the same shingles."""
    from ftdata import io
    from ftdata.formats import normalise
    from ftdata.records import Record
    from ftdata.similarity.minhash import jaccard, shingle_sets
    from ftdata.similarity.text import scope_text

    truth = json.loads(path.with_suffix(".truth.json").read_text())
    pairs = [tuple(p) for p in truth["near"] + truth["exact"]]
    wanted = {i for p in pairs for i in p}
    texts = {}
    for item in io.read(path, io.ReadStats()):
        if isinstance(item, Record) and item.index in wanted:
            normalise(item)
            texts[item.index] = scope_text(item, "conversation", casefold=True)
    order = sorted(texts)
    sets = shingle_sets([texts[i] for i in order], n=5)
    pos = {i: k for k, i in enumerate(order)}
    sims = {p: jaccard(sets.unique(pos[p[0]]), sets.unique(pos[p[1]])) for p in pairs}
    return {p for p, s in sims.items() if s >= threshold}, sims


def _rules_accuracy(path: Path) -> list[list[str]]:
    """Precision and recall of FT401 (exact) and FT403 (conflicts) against the plants."""
    import ftdata

    truth = json.loads(path.with_suffix(".truth.json").read_text())
    # The planted "conflicts" are unrelated long answers to one prompt: answers that differ
    # without a contradiction signal, which FT403 reports with report = "all".
    report = ftdata.lint(path, select=["FT401", "FT403"], options={"FT403": {"report": "all"}}, config=False)
    exact_truth = {j for _, j in truth["exact"]}
    flagged = {f.index for f in report if f.code == "FT401"}
    tp = len(flagged & exact_truth)
    conflict_truth = {frozenset(p) for p in truth["conflict"]}
    groups = [frozenset((f.index, *f.related)) for f in report if f.code == "FT403"]
    hit = sum(1 for p in conflict_truth if any(p <= g for g in groups))
    good = sum(1 for g in groups if any(p <= g for p in conflict_truth))
    return [
        _accuracy_row("exact duplicates (FT401), records", len(exact_truth), len(flagged), tp, tp),
        _accuracy_row("conflicting answers (FT403), pairs", len(conflict_truth), len(groups), good, hit),
    ]


def _accuracy_row(kind: str, planted: int, reported: int, correct: int, found: int) -> list[str]:
    """A row of the accuracy table: ``correct`` of the ``reported`` are planted, ``found``
    of the ``planted`` were reported."""
    return [kind, f"{planted:,}", f"{reported:,}", _ratio(correct, reported), _ratio(found, planted)]


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "n/a"


def _embeddings() -> list[list[str]]:
    import numpy as np

    from ftdata.similarity.embeddings import encode, neighbour_pairs

    rng = np.random.default_rng(0)
    texts = [f"Question {i}: how do I configure feature {i % 97} on platform {i % 13}?" for i in range(2000)]
    encode(texts[:64])  # load the model first
    t0 = time.perf_counter()
    encode(texts)
    rate = len(texts) / (time.perf_counter() - t0)
    rows = [["MiniLM encode (CPU, batch 64)", f"{len(texts):,} texts", f"{rate:,.0f} texts/s"]]
    for n in (10_000, 100_000):
        vectors = rng.normal(size=(n, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        t0 = time.perf_counter()
        count = sum(1 for _ in neighbour_pairs(vectors, 0.95))
        rows.append(
            [
                "neighbour search, cosine >= 0.95 (blocks of 2048)",
                f"{n:,} vectors",
                f"{time.perf_counter() - t0:.1f} s ({count} pairs)",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--skip-datasketch", action="store_true")
    parser.add_argument("--minhash-only", action="store_true", help="only the MinHash table (no rules, no embeddings)")
    parser.add_argument("--large", action="store_true", help="also time exact duplicates and conflicts on 1M records")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    path = DATA / f"planted-{args.records // 1000}k.jsonl"
    if not path.exists() or not path.with_suffix(".truth.json").exists():
        print(f"generating {path} ...", file=sys.stderr)
        write_planted(path, args.records)
    size_mb = path.stat().st_size / 1e6
    ours, clusters = _dedup_clusters(path, args.threshold)
    truth, sims = _truth_pairs(path, args.threshold)
    member = {m: k for k, c in enumerate(clusters) for m in c}
    together = {p for p in truth if p[0] in member and member.get(p[0]) == member.get(p[1])}
    planted_together = [p for p in sims if p[0] in member and member.get(p[0]) == member.get(p[1])]
    rows = [
        [
            "ftdata dedup --method minhash (end to end: read, shingle, sign, band, verify, cluster, write)",
            f"{ours['seconds']:.1f}",
            f"{ours['max_rss_mb']:.0f}",
            _ratio(len(together), len(truth)),
            _ratio(sum(1 for p in planted_together if sims[p] >= args.threshold), len(planted_together)),
        ],
    ]
    ratios = []
    peers = [
        ("datasketch MinHash + MinHashLSH", DATASKETCH, "datasketch"),
        ("rensa RMinHash + RMinHashLSH", RENSA, "rensa"),
    ]
    for label, code, name in peers:
        if name == "datasketch" and args.skip_datasketch:
            continue
        peer_out = DATA / f"{name}-result.json"
        peer = measure(python(code, str(path), str(args.threshold), str(peer_out)), 1)
        peer_result = json.loads(peer_out.read_text())
        peer_pairs = {tuple(sorted(p)) for p in peer_result["pairs"]}
        rows.append(
            [
                f"{label} (MinHash work only: texts read before the clock starts)",
                f"{peer_result['seconds']:.1f}",
                f"{peer['max_rss_mb']:.0f}",
                _ratio(len(truth & peer_pairs), len(truth)),
                "unverified",
            ]
        )
        ratios.append(f"{peer_result['seconds'] / ours['seconds']:.1f}x {name}")
    ratio_line = ""
    if ratios:
        ratio_line = (
            f"ftdata's whole command against the peers' MinHash work alone: {', '.join(ratios)} "
            f"(load average {os.getloadavg()[0]:.1f} at the end)."
        )
    lines = [
        f"Planted corpus: {args.records:,} records, {size_mb:.0f} MB (`benchmarks/corpus.py`, `write_planted`); {machine()}.",
        f"Near duplicates are judged against the exact Jaccard of the same word 5-gram shingles, threshold {args.threshold}:",
        f"{len(truth):,} planted pairs are at or above it. Recall counts a pair found when both records end in one cluster;",
        "precision is the share of planted pairs put in one cluster that really are at or above the threshold",
        "(every reported pair is verified exactly, so none is below the threshold).",
        "",
        table(["run", "seconds", "peak RSS MB", "recall", "precision"], rows),
    ]
    if ratio_line:
        lines += ["", ratio_line]
    if not args.minhash_only:
        lines += ["", table(["planted kind", "planted", "reported", "precision", "recall"], _rules_accuracy(path))]
        lines += ["", table(["embeddings", "size", "result"], _embeddings())]
    if args.large:
        big = DATA / "chat-1000k.jsonl"
        if not big.exists():
            write(big, 1_000_000)
        r = measure(
            [sys.executable, "-m", "ftdata", "lint", str(big), "--isolated", "--select", "FT401,FT402,FT403", "-q"], 1
        )
        lines += [
            "",
            f"Exact duplicates and conflicting answers (FT401-FT403) on 1M records ({big.stat().st_size / 1e9:.2f} GB): "
            f"{r['seconds']:.1f} s, peak RSS {r['max_rss_mb']:.0f} MB.",
        ]
    text = "\n".join(lines)
    publish(text, args.markdown, "similarity", "python benchmarks/similarity.py" + (" --large" if args.large else ""))


if __name__ == "__main__":
    main()
