"""Writing what a dedup decided: the kept records byte for byte in the input's container,
the rejections, the clusters and the manifest, committed as one set (see
:mod:`ftdata.curation.dedup`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ftdata import io
from ftdata.io.jsonl import record_blocks
from ftdata.outputs import Fingerprint, InputChangedError, OutputSet, check_layout, manifest, reject_line
from ftdata.records import Record

if TYPE_CHECKING:
    from ftdata.curation.dedup import DedupResult, Rejection


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
    fingerprint is checked (taken again while the copy runs, and its identity once the
    copy is done) before the set is committed."""
    container = io.container_of(source)
    check_layout(paths["kept"], container, source=source)
    again = fingerprint_later(source)  # hashed beside the copy, which has the core hashing needs
    reasons = {r.index: r for r in result.rejected}
    files = {key: p for key, p in paths.items() if key != "manifest"}
    with OutputSet(files, paths["manifest"]) as out:

        def reject(why: Rejection, raw: bytes) -> None:
            out.write("rejected", _reject_line(result, why, raw, lines))

        if container == "jsonl":
            seen = _copy_lines(source, out, reasons, reject)
        else:
            first = True
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
                    out.write("kept", (b"" if first else b",\n") + raw)
                    first = False
                else:
                    reject(why, raw)
            out.write("kept", b"\n]\n")
        if seen != result.records:
            raise InputChangedError(
                f"the input {source} changed between two reads ({result.records:,} records, then {seen:,}); "
                "nothing was written"
            )
        check_fingerprint(fingerprint, again, source)
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


def fingerprint_later(path: Path) -> Future[Fingerprint]:
    """:meth:`Fingerprint.of` ``path``, computed in a thread while this one goes on (the
    hash and the read release the interpreter's lock)."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="ftdata-fingerprint")
    try:
        return pool.submit(Fingerprint.of, path)
    finally:
        pool.shutdown(wait=False)


def check_fingerprint(fingerprint: Fingerprint, later: Future[Fingerprint], path: Path) -> None:
    """Raise :class:`InputChangedError` unless ``path`` still holds the bytes
    ``fingerprint`` describes: ``later`` (a fingerprint taken since, see
    :func:`fingerprint_later`) has the same identity and hash, and ``path`` has not
    changed since ``later`` was taken (what :meth:`Fingerprint.check` says, without a
    read of its own)."""
    try:
        now = later.result()
        st = os.stat(path)
    except FileNotFoundError:
        raise InputChangedError(f"the input {path} was removed while it was read; nothing was written") from None
    want = (fingerprint.size, fingerprint.mtime_ns, fingerprint.inode, fingerprint.device)
    if (now.size, now.mtime_ns, now.inode, now.device, now.sha256) != (*want, fingerprint.sha256) or (
        st.st_size,
        st.st_mtime_ns,
        st.st_ino,
        st.st_dev,
    ) != want:
        raise InputChangedError(
            f"the input {path} changed between two reads (it was replaced or written to); nothing was written"
        )


def _copy_lines(
    source: Path, out: OutputSet, reasons: Mapping[int, Rejection], reject: Callable[[Rejection, bytes], None]
) -> int:
    """Copy the kept records of the JSON Lines file ``source`` to ``kept``, one a line
    (the bytes ``Record.raw`` holds), and hand the others to ``reject``; returns the
    number of records. Runs of kept records that are consecutive lines are copied as one
    slice of the block read, unparsed."""
    seen = 0
    for data, starts, ends in record_blocks(source):
        run = end = -1  # the kept records not yet written: data[run:end]
        for start, stop in zip(starts, ends, strict=True):
            why = reasons.get(seen)
            seen += 1
            if why is None and run >= 0 and start == end + 1:
                end = stop
                continue
            if run >= 0:
                out.write("kept", _line(data, run, end))
                run = -1
            if why is None:
                run, end = start, stop
            else:
                reject(why, data[start:stop])
        if run >= 0:
            out.write("kept", _line(data, run, end))
    return seen


def _line(data: bytes, start: int, end: int) -> bytes:
    """``data[start:end]`` and a newline: a slice of ``data`` when a newline follows it."""
    if end < len(data) and data[end] == 10:
        return data[start : end + 1]
    return data[start:end] + b"\n"


def _reject_line(result: DedupResult, why: Rejection, raw: bytes, lines: Mapping[int, int | None]) -> bytes:
    """The rejects' line of the record ``why`` names, whose bytes are ``raw``."""
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
    return reject_line(
        index=why.index, line=why.line, reason=why.reason, rule=why.rule, detail=detail, raw=raw, **extra
    )
