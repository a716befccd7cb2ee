"""Duplicates, near duplicates and contradictions: accuracy on planted ground truth, speed
against datasketch, embedding throughput and neighbour search, scale to 1M records.

    python benchmarks/similarity.py [--records 100000] [--skip-datasketch] [--large]
                                    [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, machine, measure, publish, python, table
from corpus import write, write_planted

MINHASH = """
import json, sys, time
from pathlib import Path
from ftdata import io
from ftdata.formats import normalise
from ftdata.records import Record
from ftdata.similarity.clusters import build_clusters
from ftdata.similarity.minhash import near_duplicate_pairs
from ftdata.similarity.text import scope_text
t0 = time.perf_counter()
texts = []
for item in io.read(Path(sys.argv[1]), io.ReadStats()):
    if isinstance(item, Record) and type(item.data) is dict:
        normalise(item)
        texts.append(scope_text(item, "conversation", casefold=True))
t1 = time.perf_counter()
pairs = near_duplicate_pairs(texts, threshold=float(sys.argv[2]), num_perm=128)
clusters = build_clusters(len(texts), pairs)
t2 = time.perf_counter()
Path(sys.argv[3]).write_text(json.dumps({"read": t1 - t0, "minhash": t2 - t1, "pairs": [[i, j] for i, j, _ in pairs],
    "clusters": [list(c.members) for c in clusters]}))
"""

DATASKETCH = """
import json, sys, time
from pathlib import Path
from datasketch import MinHash, MinHashLSH
from ftdata import io
from ftdata.formats import normalise
from ftdata.records import Record
from ftdata.similarity.text import scope_text
texts = []
for item in io.read(Path(sys.argv[1]), io.ReadStats()):
    if isinstance(item, Record) and type(item.data) is dict:
        normalise(item)
        texts.append(scope_text(item, "conversation", casefold=True))
t0 = time.perf_counter()
lsh = MinHashLSH(threshold=float(sys.argv[2]), num_perm=128)
pairs = set()
for k, text in enumerate(texts):
    words = text.split()
    shingles = {" ".join(words[i:i + 5]).encode() for i in range(max(1, len(words) - 4))}
    m = MinHash(num_perm=128)
    m.update_batch(list(shingles))
    for other in lsh.query(m):
        pairs.add((other, k))
    lsh.insert(k, m)
Path(sys.argv[3]).write_text(json.dumps({"seconds": time.perf_counter() - t0, "pairs": sorted(pairs)}))
"""


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
    parser.add_argument("--large", action="store_true", help="also time exact duplicates and conflicts on 1M records")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    path = DATA / f"planted-{args.records // 1000}k.jsonl"
    if not path.exists() or not path.with_suffix(".truth.json").exists():
        print(f"generating {path} ...", file=sys.stderr)
        write_planted(path, args.records)
    size_mb = path.stat().st_size / 1e6
    out = DATA / "minhash-result.json"
    ours = measure(python(MINHASH, str(path), str(args.threshold), str(out)), 1)
    result = json.loads(out.read_text())
    truth, sims = _truth_pairs(path, args.threshold)
    found = {tuple(p) for p in result["pairs"]}
    member = {}
    for k, c in enumerate(result["clusters"]):
        for m in c:
            member[m] = k
    together = {p for p in truth if p[0] in member and member.get(p[0]) == member.get(p[1])}
    planted_together = [p for p in sims if p[0] in member and member.get(p[0]) == member.get(p[1])]
    rows = [
        [
            "ftdata MinHash-LSH (read, shingle, sign, band, verify, cluster)",
            f"{ours['seconds']:.1f}",
            f"{ours['max_rss_mb']:.0f}",
            _ratio(len(together), len(truth)),
            _ratio(sum(1 for p in planted_together if sims[p] >= args.threshold), len(planted_together)),
        ],
    ]
    ratio_line = ""
    if not args.skip_datasketch:
        ds_out = DATA / "datasketch-result.json"
        ds = measure(python(DATASKETCH, str(path), str(args.threshold), str(ds_out)), 1)
        ds_result = json.loads(ds_out.read_text())
        ds_pairs = {tuple(sorted(p)) for p in ds_result["pairs"]}
        rows.append(
            [
                "datasketch MinHash + MinHashLSH (same shingles, num_perm, threshold)",
                f"{ds['seconds']:.1f}",
                f"{ds['max_rss_mb']:.0f}",
                _ratio(len(truth & ds_pairs), len(truth)),
                "unverified",
            ]
        )
        ratio_line = (
            f"ftdata is {ds_result['seconds'] / (ours['seconds'] - result['read']):.1f}x faster than datasketch "
            f"on the MinHash work alone ({ds_result['seconds']:.1f} s vs {ours['seconds'] - result['read']:.1f} s; "
            f"reading and normalising the file took {result['read']:.1f} s)."
        )
    lines = [
        f"Planted corpus: {args.records:,} records, {size_mb:.0f} MB (`benchmarks/corpus.py`, `write_planted`); {machine()}.",
        f"Near duplicates are judged against the exact Jaccard of the same word 5-gram shingles, threshold {args.threshold}:",
        f"{len(truth):,} planted pairs are at or above it. Recall counts a pair found when both records end in one cluster;",
        "precision is the share of planted pairs put in one cluster that really are at or above the threshold",
        f"(every reported pair is verified exactly: {len(found):,} verified pairs, none below the threshold).",
        "",
        table(["run", "seconds", "peak RSS MB", "recall", "precision"], rows),
    ]
    if ratio_line:
        lines += ["", ratio_line]
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
