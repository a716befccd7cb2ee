"""Audit against lint with the same rules, in the same run: the planted 100k-record corpus
(about 185 MB) with estimated token counts and with MinHash near duplicates on top, and a
20k-record corpus with exact counts from the tests' tiny BPE tokenizer, without and with
the token rules (FT501-FT503). Wall time of each, their ratio, the audit's peak memory and
the size of its HTML and JSON reports.

    python benchmarks/audit_speed.py [--markdown docs/benchmarks.md] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, machine, measure, publish, table
from corpus import write_planted


def _load() -> str:
    """The load averages (1, 5, 15 min) as ``uptime`` shows them: other work on the machine
    slows both commands alike, but the reader should know how much there was."""
    try:
        return ", ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # pragma: no cover - not Linux
        return "unknown"


def tiny_tokenizer() -> Path:
    """The tests' tiny BPE tokenizer (600 entries, ChatML template with generation markers)."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from tests.conftest import TOKENIZER_DIR, build_tiny_tokenizer

    return build_tiny_tokenizer(TOKENIZER_DIR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--records", type=int, default=100_000, help="records of the corpus (default 100,000)")
    parser.add_argument(
        "--token-records", type=int, default=20_000, help="records of the corpus for the exact token runs"
    )
    args = parser.parse_args()

    corpus = DATA / ("planted-100k.jsonl" if args.records == 100_000 else f"planted-{args.records}.jsonl")
    if not corpus.exists():
        write_planted(corpus, args.records)
    small = DATA / f"planted-{args.token_records}.jsonl"
    if not small.exists():
        write_planted(small, args.token_records)
    tokenizer = str(tiny_tokenizer())
    html, out = DATA / "audit-report.html", DATA / "audit-report.json"
    lint = [
        sys.executable,
        "-m",
        "ftdata",
        "lint",
        "--no-cache",
        "--output-format",
        "json",
        "-o",
        str(DATA / "lint.json"),
    ]
    audit = [sys.executable, "-m", "ftdata", "audit", "--html", str(html), "--json", str(out), "-q"]
    tokens = ["--tokenizer", tokenizer, "--max-length", "1024"]
    runs = [
        (corpus, "default checks, estimated tokens", []),
        (corpus, "+ MinHash near duplicates (FT404), diversity (FT208)", ["--extend-select", "FT404,FT208"]),
        (small, "exact tokens (tiny BPE, chat template), no token rule", tokens),
        (small, "exact tokens + token rules FT501-FT503", [*tokens, "--extend-select", "FT501,FT502,FT503"]),
    ]
    rows = []
    load_before = _load()
    for path, label, extra in runs:
        # lint and audit with the same rules, one after the other in this run
        linted = measure([*lint, str(path), *extra], args.repeat)
        audited = measure([*audit, str(path), *extra], args.repeat)
        findings = len(json.loads(out.read_text())["findings"])
        records = sum(1 for _ in path.open("rb"))
        rows.append(
            [
                label,
                f"{records:,}",
                f"{linted['seconds']:.1f}",
                f"{audited['seconds']:.1f}",
                f"{audited['seconds'] / linted['seconds']:.2f}x",
                f"{audited['max_rss_mb']:.0f}",
                f"{findings:,}",
                f"{html.stat().st_size / 1e3:.0f} KB",
                f"{out.stat().st_size / 1e6:.1f} MB",
            ]
        )
    text = "\n".join(
        [
            f"`ftdata audit` against `ftdata lint --no-cache` with the same rules, on the planted corpus "
            f"({corpus.name}, {corpus.stat().st_size / 1e6:.0f} MB; {small.name} for exact tokens), "
            f"on {machine()}, best of {args.repeat}; load average {load_before} before, {_load()} after. "
            "The audit gathers its figures in the lint pass (target: at most 1.3x lint).",
            "",
            table(
                [
                    "audit",
                    "records",
                    "lint s",
                    "audit s",
                    "audit / lint",
                    "audit peak RSS MB",
                    "findings",
                    "HTML",
                    "JSON",
                ],
                rows,
            ),
        ]
    )
    publish(text, args.markdown, "audit", "python benchmarks/audit_speed.py")


if __name__ == "__main__":
    main()
