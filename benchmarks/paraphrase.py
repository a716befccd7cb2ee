"""Pair precision and recall of the embedding paths on labelled paraphrase pairs.

The pairs are a sample of the MRPC test split (benchmarks/data_public/, see SOURCES.md):
each pair is labelled paraphrase (1) or not (0). A pair is predicted a paraphrase when the
cosine similarity of its two sentences reaches the threshold; precision and recall are
over the pairs. Reported for the default thresholds of FT405 (0.95) and FT603 / semantic
split grouping (0.9), and for the threshold with the best F1 of each path, the
sentence-transformers MiniLM path beside the static fast path, in the same run.

    python benchmarks/paraphrase.py [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import HERE, publish, table

from ftdata.similarity.embeddings import encode

PAIRS = HERE / "data_public" / "mrpc_test_sample.tsv"
PATHS = {
    "sentence-transformers MiniLM": "sentence-transformers/all-MiniLM-L6-v2",
    "minilm-static (fast)": "minilm-static",
}


def load(path: Path = PAIRS) -> tuple[list[str], list[str], np.ndarray]:
    """The two sides and the labels of the pairs in ``path`` (MRPC's tab-separated layout)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["#1 String"] for r in rows], [r["#2 String"] for r in rows], np.array([int(r["Quality"]) for r in rows])


def scores(model: str, left: list[str], right: list[str]) -> np.ndarray:
    a = encode(left, model=model, cache=False)
    b = encode(right, model=model, cache=False)
    return np.sum(a * b, axis=1)


def precision_recall(sims: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    predicted = sims >= threshold
    tp = int(np.sum(predicted & (labels == 1)))
    precision = tp / int(predicted.sum()) if predicted.any() else 1.0
    return precision, tp / int(labels.sum())


def best_threshold(sims: np.ndarray, labels: np.ndarray) -> float:
    """The threshold (one of the scores) with the highest F1; the highest such on ties."""
    best, best_f1 = 1.0, -1.0
    for t in sorted(set(np.round(sims, 4).tolist())):
        p, r = precision_recall(sims, labels, t)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 >= best_f1:
            best, best_f1 = t, f1
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    left, right, labels = load()
    rows = []
    for label, model in PATHS.items():
        t0 = time.perf_counter()
        sims = scores(model, left, right)
        seconds = time.perf_counter() - t0
        best = best_threshold(sims, labels)
        cells = [label]
        for t in (0.95, 0.9, best):
            p, r = precision_recall(sims, labels, t)
            cells.append(f"{p:.2f} / {r:.2f}" + (f" at {t:.2f}" if t == best else ""))
        cells += [f"{np.mean(sims[labels == 1]):.2f} / {np.mean(sims[labels == 0]):.2f}", f"{seconds:.1f}"]
        rows.append(cells)
    headers = ["path", "P / R at 0.95", "P / R at 0.90", "P / R at best F1", "mean cosine pos / neg", "seconds"]
    text = f"{len(labels)} MRPC test pairs ({int(labels.sum())} paraphrases)\n\n" + table(headers, rows)
    publish(text, args.markdown, "paraphrase", "python benchmarks/paraphrase.py")


if __name__ == "__main__":
    main()
