"""What each rule costs: microseconds per record for every record rule, and for the
per-record collector of every dataset rule, timed one rule at a time over records read and
normalised beforehand (so reading is not in the figure), on the quick corpus
(``benchmarks/corpus.py``, 20k records) and on the real files in ``tests/data/real``.
Values records share between rules (``Record.text``, ``Record.memo``) are cleared before
each rule, so every rule pays for what it derives; the last row runs the default
selection's record rules and collectors in one pass, as the linter does, sharing them.
A rule slower than ``--budget`` seconds on a record set is timed on its first records.

    python benchmarks/rule_costs.py                      # sorted table
    python benchmarks/rule_costs.py --markdown docs/benchmarks.md
    python benchmarks/rule_costs.py --against /tmp/old   # an earlier tree, same run
    python benchmarks/rule_costs.py --lint --against /tmp/old --against /tmp/before

With ``--lint``, whole runs instead: ``ftdata lint`` of the corpus with the default
selection (1 and 2 jobs, cache off), this tree, this tree on its pure-Python path
(``FTDATA_PURE_PYTHON=1``, when its C extension is built) and each ``--against`` tree
timed row by row in the same run (best of ``--repeat``).

With ``--against``, the earlier tree and this one are measured alternately (one full pass
each, ``--repeat`` times), each in its own process, and the best pass of each is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, machine, measure, publish, table

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "data" / "real"
#: Left out: FT405 loads an embedding model, the token rules need a tokenizer.
LEFT_OUT = ("FT405", "FT501", "FT502", "FT503", "FT504")


def _records(paths: list[Path], limit: int | None) -> list[object]:
    from ftdata import io
    from ftdata.formats import normalise
    from ftdata.records import Record

    out: list[Record] = []
    for path in paths:
        for item in io.read(path, io.ReadStats(), source=str(path)):
            if type(item) is Record and type(item.data) is dict:
                normalise(item, None)
                out.append(item)
                if limit is not None and len(out) >= limit:
                    return out
    return out


def _clear(records: list[object]) -> None:
    for rec in records:
        rec._memo = None  # type: ignore[attr-defined]
        rec._text = None  # type: ignore[attr-defined]
        rec._pattern = None  # type: ignore[attr-defined]


def _time(func: object, records: list[object], budget: float) -> tuple[float, int, int, int]:
    """Seconds for one pass of ``func`` over ``records`` (over the first of them only,
    once ``budget`` seconds are spent), records seen, issues (or values), failures."""
    found = failed = seen = 0
    t0 = time.perf_counter()
    for rec in records:
        try:
            out = func(rec)  # type: ignore[operator]
        except Exception:
            failed += 1
            out = None
        seen += 1
        if out:
            found += len(out) if isinstance(out, list) else 1
        if not seen & 0xFF and time.perf_counter() - t0 > budget:
            break
    return time.perf_counter() - t0, seen, found, failed


def worker(corpus: Path, limit: int | None, budget: float) -> dict[str, object]:
    """One pass of every rule over both record sets, in this process's ftdata."""
    import gc

    from ftdata.config import Settings
    from ftdata.engine.plan import compile_plan

    plan = compile_plan(Settings(select=("ALL",), ignore=LEFT_OUT))
    sets = {
        "corpus": _records([corpus], limit),
        "real": _records(sorted(p for p in REAL.rglob("*") if p.suffix in (".json", ".jsonl")), None),
    }
    checks = [(b.code, b.rule.name, "record", b.check) for b in plan.records]
    checks += [(b.code, b.rule.name, "collector", b.collect) for b in plan.collectors]
    rows: dict[str, dict[str, object]] = {}
    gc.disable()  # as the linter's pass does
    for code, name, kind, func in checks:
        row: dict[str, object] = {"name": name, "kind": kind}
        for label, records in sets.items():
            _clear(records)
            seconds, seen, found, failed = _time(func, records, budget)
            row[label] = seconds / seen * 1e6
            row[f"{label}_seen"] = seen
            row[f"{label}_found"] = found
            row[f"{label}_failed"] = failed
        rows[code] = row

    default = compile_plan(Settings())
    pass_ = [b.check for b in default.records] + [b.collect for b in default.collectors]

    def together(rec: object) -> None:
        for func in pass_:
            func(rec)  # type: ignore[operator]

    row = {"name": "default selection, one pass", "kind": "pass"}
    for label, records in sets.items():
        _clear(records)
        seconds, seen, _, _ = _time(together, records, budget)
        row[label] = seconds / seen * 1e6
        row[f"{label}_seen"] = seen
    rows["(all)"] = row
    gc.enable()
    return {"rows": rows, "records": {k: len(v) for k, v in sets.items()}}


def _run(folder: Path, corpus: Path, limit: int | None, budget: float) -> dict[str, object]:
    """``worker`` in a fresh process importing ftdata from ``folder``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--corpus", str(corpus), "--budget", str(budget)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    env = dict(os.environ, PYTHONPATH=str(folder.resolve()))
    out = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _best(runs: list[dict[str, object]]) -> dict[str, object]:
    best = json.loads(json.dumps(runs[0]))
    for run in runs[1:]:
        for code, row in run["rows"].items():  # type: ignore[union-attr]
            for key in ("corpus", "real"):
                best["rows"][code][key] = min(best["rows"][code][key], row[key])
    return best


def _cell(row: dict[str, object], label: str, counts: dict[str, int]) -> str:
    """µs per record; a rule timed on a prefix says on how many records."""
    seen = row.get(f"{label}_seen", counts[label])
    return f"{row[label]:.2f}" + ("" if seen == counts[label] else f" (first {seen:,})")


def lint_runs(records: int, trees: list[Path], repeat: int, markdown: Path | None) -> None:
    """Seconds of ``ftdata lint`` on the corpus, default selection, for this tree, this
    tree on its pure-Python path (``FTDATA_PURE_PYTHON=1``, where the C extension is
    built) and each of ``trees``, row by row so that they share the machine's load."""
    corpus = DATA / f"chat-{records // 1000}k.jsonl"
    cmd = [sys.executable, "-m", "ftdata", "lint", str(corpus), "--isolated", "--output-format", "json-lines"]
    # (heading, folder, pure Python): ``python -m`` imports ftdata from the folder it runs in
    columns = [(f"`{t}`", t, False) for t in trees] + [("this tree", ROOT, False)]
    native = subprocess.run(
        [sys.executable, "-c", "import ftdata.similarity.native as n; print(n.NATIVE)"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
    ).stdout.strip()
    if native == "True":
        columns.append(("this tree, `FTDATA_PURE_PYTHON=1`", ROOT, True))
    env = dict(os.environ)
    os.environ["FTDATA_NO_CACHE"] = "1"  # a cache hit would time the hash, not the lint
    load_before = os.getloadavg()
    seconds: dict[tuple[int, int], float] = {}
    here = os.getcwd()
    try:
        for jobs in (1, 2):
            for k, (_, folder, pure) in enumerate(columns):
                os.environ["PYTHONPATH"] = str(folder.resolve())
                if pure:
                    os.environ["FTDATA_PURE_PYTHON"] = "1"
                else:
                    os.environ.pop("FTDATA_PURE_PYTHON", None)
                os.chdir(folder)
                seconds[jobs, k] = measure([*cmd, "--jobs", str(jobs)], repeat)["seconds"]
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(env)
    load_after = os.getloadavg()
    here_column = len(trees)
    headers = ["jobs", *(heading for heading, _, _ in columns)]
    if trees:
        headers.append(f"this tree / `{trees[0]}`")
        if native == "True":
            headers.append(f"pure Python / `{trees[0]}`")
    body = []
    for jobs in (1, 2):
        row: list[object] = [jobs, *(f"{seconds[jobs, k]:.2f}" for k in range(len(columns)))]
        if trees:
            row.append(f"{seconds[jobs, here_column] / seconds[jobs, 0]:.2f}")
            if native == "True":
                row.append(f"{seconds[jobs, here_column + 1] / seconds[jobs, 0]:.2f}")
        body.append(row)
    load = lambda v: ", ".join(f"{x:.2f}" for x in v)  # noqa: E731
    path = "the C extension built" if native == "True" else "the C extension not built (pure Python)"
    text = "\n".join(
        [
            f"`ftdata lint {corpus.name} --isolated --output-format json-lines --jobs N`, default selection, "
            f"cache off; seconds, best of {repeat}, the trees timed row by row; this tree with {path}. "
            f"Machine: {machine()}.",
            f"Load average (1, 5, 15 min) before {load(load_before)}, after {load(load_after)}.",
            "",
            table(headers, body),
        ]
    )
    command = f"python benchmarks/rule_costs.py --lint --repeat {repeat}" + "".join(f" --against {t}" for t in trees)
    publish(text, markdown, "lint-runs", command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="records of the synthetic corpus")
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--budget", type=float, default=3.0, help="seconds per rule and record set; a slower rule is timed on a prefix"
    )
    parser.add_argument("--markdown", type=Path, help="write the table into this markdown file")
    parser.add_argument(
        "--against", type=Path, action="append", help="a folder holding an earlier copy of the ftdata package"
    )
    parser.add_argument("--lint", action="store_true", help="time whole `ftdata lint` runs instead of each rule")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.corpus, args.limit, args.budget)))
        return
    if args.lint:
        lint_runs(args.records, args.against or [], args.repeat, args.markdown)
        return
    args.against = args.against[0] if args.against else None

    corpus = DATA / f"chat-{args.records // 1000}k.jsonl"
    if not corpus.exists():
        from corpus import write

        print(f"generating {corpus} ...", file=sys.stderr)
        write(corpus, args.records)
    load_before = os.getloadavg()
    now, then = [], []
    for _ in range(args.repeat):
        if args.against:
            then.append(_run(args.against, corpus, args.limit, args.budget))
        now.append(_run(ROOT, corpus, args.limit, args.budget))
    load_after = os.getloadavg()
    result = _best(now)
    earlier = _best(then) if then else None
    rows = result["rows"]
    counts = result["records"]
    total = rows.pop("(all)")
    order = sorted(rows, key=lambda c: -rows[c]["corpus"])
    headers = ["rule", "name", "kind", "µs/record corpus", "µs/record real"]
    if earlier:
        headers += ["before corpus", "before real", "corpus ×"]
    body = []
    for code in [*order, "(all)"]:
        row = total if code == "(all)" else rows[code]
        cells = [code, row["name"], row["kind"], _cell(row, "corpus", counts), _cell(row, "real", counts)]
        if earlier:
            old = earlier["rows"].get(code)
            if old is None:
                cells += ["", "", ""]
            else:
                speedup = old["corpus"] / row["corpus"] if row["corpus"] else float("inf")
                cells += [_cell(old, "corpus", counts), _cell(old, "real", counts), f"{speedup:.1f}"]
        body.append(cells)
    load = lambda v: ", ".join(f"{x:.2f}" for x in v)  # noqa: E731
    text = "\n".join(
        [
            f"Records: {counts['corpus']:,} of `{corpus.name}` (`benchmarks/corpus.py`) and {counts['real']:,} "
            f"from `tests/data/real`, read and normalised before timing. Machine: {machine()}.",
            f"Load average (1, 5, 15 min) before {load(load_before)}, after {load(load_after)}. "
            f"Best of {args.repeat} passes"
            + (f"; before: `{args.against}`, measured alternately." if earlier else "."),
            "",
            table(headers, body),
        ]
    )
    command = "python benchmarks/rule_costs.py" + (f" --against {args.against}" if args.against else "")
    publish(text, args.markdown, "rule-costs", command)


if __name__ == "__main__":
    main()
