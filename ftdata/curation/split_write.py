"""Writing a split: each split file, the rejects and the manifest as one set, byte for
byte in the input's container, with the exact leakage audit of the new files."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdata import io
from ftdata.outputs import Fingerprint, InputChangedError, OutputSet, check_folder_outputs, manifest, reject_line
from ftdata.records import Record

if TYPE_CHECKING:  # pragma: no cover
    from ftdata.curation.split import SplitResult


def output_paths(source: Path, names: Iterable[str], directory: str | os.PathLike[str]) -> dict[str, Path]:
    """The files a split of ``source`` writes into ``directory``: one per split (in the
    input's container), ``rejected`` and ``manifest``."""
    out = Path(directory)
    suffix = ".jsonl" if io.container_of(source) == "jsonl" else ".json"
    paths = {name: out / f"{name}{suffix}" for name in names}
    paths["rejected"] = out / "rejected.jsonl"
    paths["manifest"] = out / "manifest.json"
    return paths


def check_split_outputs(
    source: str | os.PathLike[str], names: Iterable[str], directory: str | os.PathLike[str]
) -> None:
    """Raise :class:`~ftdata.outputs.OutputError` when writing the split files of
    ``source`` into ``directory`` would replace the input (or cannot be done); call it
    before reading."""
    paths = output_paths(Path(source), names, directory)
    check_folder_outputs([source], directory, [p.name for p in paths.values()])


def write_split(result: SplitResult, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write each split, ``rejected.jsonl`` and ``manifest.json`` into ``directory`` as
    one set (see :class:`~ftdata.outputs.OutputSet`).

    Records are copied byte for byte, in input order, in the input's container. Before
    the set is committed, the input is checked against its fingerprint from the first
    read, and FT601 (by prompt) runs on the new files: each leaked record lands in
    ``result.leaks`` and the manifest."""
    if result.source is None:
        raise ValueError("writing splits needs a file as the source")
    source = result.source
    check_split_outputs(source, result.names, directory)
    fingerprint = result.fingerprint or Fingerprint.of(source)
    container = io.container_of(source)
    paths = output_paths(source, result.names, directory)
    files = {key: p for key, p in paths.items() if key != "manifest"}
    with OutputSet(files, paths["manifest"]) as out:
        first = dict.fromkeys(result.names, True)
        if container != "jsonl":
            for split_name in result.names:
                out.write(split_name, b"[\n")
        seen = 0
        for item in io.read(source, io.ReadStats(), parse="none"):
            if not isinstance(item, Record):
                continue
            if item.index != seen or seen >= len(result.assignment):
                seen = -1
                break
            seen += 1
            raw = item.raw or b""
            name = result.assignment[item.index]
            if name is None:
                out.write(
                    "rejected",
                    reject_line(
                        index=item.index,
                        line=item.line,
                        reason="unreadable",
                        rule=result.rejected_rules.get(item.index),
                        detail=result.rejected.get(item.index, "could not be read"),
                        raw=raw,
                    ),
                )
            elif container == "jsonl":
                out.write(name, raw + b"\n")
            else:
                out.write(name, (b"" if first[name] else b",\n") + raw)
                first[name] = False
        if container != "jsonl":
            for name in result.names:
                out.write(name, b"\n]\n")
        if seen != len(result.assignment):
            raise InputChangedError(f"the input {source} changed between two reads; nothing was written")
        fingerprint.check(source)
        out.finish()
        audit = _audit(result, {name: (out.temp_path(name), paths[name]) for name in result.names})
        counts = result.counts
        body = manifest(
            "split",
            options=result.options,
            inputs=[fingerprint.to_dict(len(result.assignment))],
            counts={"records": len(result.assignment), "rejected": len(result.rejected), **counts},
            rules=[{"code": "FT601", "options": {"scope": "prompt"}}] if audit is not None else [],
            leakage=audit,
            **result.report(),
        )
        out.commit(body, records={**counts, "rejected": len(result.rejected)})
    return paths


def _audit(result: SplitResult, files: Mapping[str, tuple[Path, Path]]) -> dict[str, Any] | None:
    """FT601 by prompt over the split files (written, not yet renamed), each named by its
    final path. ``pairs`` counts the leaked records (each with the record it repeats)."""
    if len(result.names) < 2:
        return None
    from ftdata.curation.leakage import leakage

    temps = [temp for temp, _ in files.values()]
    finals = [str(final) for _, final in files.values()]
    report = leakage(temps, methods=("exact",), scope="prompt", config=False, sources=finals)
    result.leaks = list(report.leaks)
    leaked = {name: len(report.leaked_records(str(files[name][1]))) for name in result.names[1:]}
    return {
        "methods": ["exact"],
        "scope": "prompt",
        "pairs": len(report.leaks),
        "leaked": leaked,
        "unreadable": {name: len(report.unreadable.get(str(files[name][1]), [])) for name in result.names},
    }
