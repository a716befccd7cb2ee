"""Baselines: accept today's findings, fail only on new ones.

Entries are keyed by rule code, source file and a hash of the record's bytes (not its
line number), so inserting or removing other lines does not invalidate them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import orjson

from ftdata.findings import RULE_ERROR, Finding
from ftdata.io import atomic_write

VERSION = 1

_Key = tuple[str, str, str, tuple[str | int, ...]]


def _key(f: Finding, root: Path) -> _Key:
    source = f.source
    if not source.startswith("<"):
        source = Path(os.path.relpath(Path(source).resolve(), root)).as_posix()
    return (f.code, source, f.fingerprint, tuple(f.path))


def write_baseline(path: str | Path, findings: Iterable[Finding]) -> int:
    """Write a baseline holding ``findings``; returns the number of entries."""
    root = Path(path).resolve().parent
    counts = Counter(_key(f, root) for f in findings)
    entries = [
        {"code": code, "source": source, "record": digest, "path": list(p), "count": n}
        for (code, source, digest, p), n in sorted(
            counts.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2], str(kv[0][3]))
        )
    ]
    with atomic_write(path) as f:
        f.write(orjson.dumps({"version": VERSION, "entries": entries}, option=orjson.OPT_INDENT_2) + b"\n")
    return len(entries)


def load_baseline(path: str | os.PathLike[str]) -> Counter[_Key]:
    """Read a baseline; ValueError when it is not one."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise ValueError(f"cannot read baseline {path}: {e}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("entries"), list):
        raise ValueError(f"{path} is not an ftdata baseline (version {VERSION})")
    counts: Counter[_Key] = Counter()
    for entry in data["entries"]:
        key = (entry["code"], entry["source"], entry["record"], tuple(entry.get("path", ())))
        counts[key] += int(entry.get("count", 1))
    return counts


def apply_baseline(findings: Iterable[Finding], path: str | os.PathLike[str]) -> list[Finding]:
    """The findings not covered by the baseline at ``path`` (each entry covers ``count``
    findings). Source paths in a baseline are relative to its folder. A rule that could
    not run (FT000) is never covered: a baseline cannot hide an incomplete check."""
    left = load_baseline(path)
    root = Path(path).resolve().parent
    out = []
    for f in findings:
        key = _key(f, root)
        if f.code != RULE_ERROR and left[key] > 0:
            left[key] -= 1
        else:
            out.append(f)
    return out
