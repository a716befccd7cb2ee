"""Writing what a dedup decided: the kept records byte for byte in the input's container,
the rejections, the clusters and the manifest, committed as one set (see
:mod:`ftdata.curation.dedup`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ftdata import io
from ftdata.outputs import Fingerprint, InputChangedError, OutputSet, manifest, reject_line
from ftdata.records import Record

if TYPE_CHECKING:
    from ftdata.curation.dedup import DedupResult


def output_paths(output: str | os.PathLike[str]) -> dict[str, Path]:
    """The files one dedup writes: ``kept`` (``output``) and, beside it, ``rejected``,
    ``clusters`` and ``manifest``."""
    out = Path(output)
    return {
        "kept": out,
        "rejected": out.with_name(f"{out.stem}.rejected.jsonl"),
        "clusters": out.with_name(f"{out.stem}.clusters.json"),
        "manifest": out.with_name(f"{out.stem}.manifest.json"),
    }


def write_outputs(
    source: Path,
    paths: Mapping[str, Path],
    result: DedupResult,
    lines: Mapping[int, int | None],
    *,
    options: Mapping[str, Any],
    fingerprint: Fingerprint,
) -> dict[str, Path]:
    """Write the kept records, the rejections, the clusters and the manifest as one set;
    a second, streaming read of ``source`` copies every record's bytes, and the input's
    fingerprint is checked before the set is committed."""
    container = io.container_of(source)
    reasons = {r.index: r for r in result.rejected}
    files = {key: p for key, p in paths.items() if key != "manifest"}
    with OutputSet(files, paths["manifest"]) as out:
        first = True
        if container != "jsonl":
            out.write("kept", b"[\n")
        seen = 0
        for item in io.read(source, io.ReadStats(), parse="none"):
            if not isinstance(item, Record):
                continue
            if item.index != seen:
                break
            seen += 1
            raw = item.raw if item.raw is not None else b""
            why = reasons.get(item.index)
            if why is None:
                if container == "jsonl":
                    out.write("kept", raw + b"\n")
                else:
                    out.write("kept", (b"" if first else b",\n") + raw)
                first = False
                continue
            extra: dict[str, Any] = {}
            if why.reason == "duplicate":
                extra = {
                    "method": result.method,
                    "cluster": why.cluster,
                    "representative": why.representative,
                    "representative_line": lines.get(why.representative) if why.representative is not None else None,
                    "similarity": why.similarity,
                }
                detail = f"a duplicate of record {why.representative} (similarity {why.similarity:.2f})"
            else:
                detail = why.detail
            out.write(
                "rejected",
                reject_line(
                    index=why.index, line=why.line, reason=why.reason, rule=why.rule, detail=detail, raw=raw, **extra
                ),
            )
        if container != "jsonl":
            out.write("kept", b"\n]\n")
        if seen != result.records:
            raise InputChangedError(
                f"the input {source} changed between two reads ({result.records:,} records, then {seen:,}); "
                "nothing was written"
            )
        fingerprint.check(source)
        report = {
            "source": str(source),
            "method": result.method,
            "threshold": result.threshold,
            "scope": options.get("scope"),
            "records": result.records,
            "kept": len(result.kept),
            "rejected": len(result.rejected),
            "unreadable": len(result.unreadable),
            "clusters": [
                {
                    "representative": {"index": c.representative, "line": lines.get(c.representative)},
                    "members": [
                        {"index": m, "line": lines.get(m), "similarity": s}
                        for m, s in zip(c.members, c.similarity, strict=True)
                    ],
                }
                for c in result.clusters
            ],
        }
        out.write("clusters", orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        counts = {
            "records": result.records,
            "kept": len(result.kept),
            "rejected": len(result.rejected),
            "duplicates": result.duplicates,
            "clusters": len(result.clusters),
            "unreadable": len(result.unreadable),
        }
        body = manifest(
            "dedup",
            options=options,
            inputs=[fingerprint.to_dict(result.records)],
            counts=counts,
        )
        out.commit(
            body,
            records={"kept": len(result.kept), "rejected": len(result.rejected), "clusters": len(result.clusters)},
        )
    return dict(paths)
