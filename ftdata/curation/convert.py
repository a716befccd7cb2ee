"""``ftdata.convert``: rewrite a dataset in one of TRL's shapes, losing no record.

Every record of the input ends in exactly one place: converted, in the output, in input
order; or in the rejects (``ftdata.rejects/1``, see :mod:`ftdata.outputs`) with its line,
its exact bytes and the reason it could not be converted (``unreadable``,
``unknown-format``, ``no-assistant-turn``, ``unconvertible-tool-call``, ...). The
output (JSON Lines, or a JSON array when its name ends in ``.json``), the rejects
(``<out>.rejected.jsonl`` unless named) and the manifest (``<out>.manifest.json``,
``ftdata.manifest/1``) are committed as one set, after checking that the input did not
change while it was read. The same input and options give the same bytes.

The shapes, and how each source format maps onto them, are in docs/formats.md
("Converting between formats"); the per-record work is in
:mod:`ftdata.curation.convert_read` and :mod:`ftdata.curation.convert_shapes`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ftdata import io
from ftdata.curation.convert_read import Refusal
from ftdata.curation.convert_shapes import TARGETS, convert_record
from ftdata.curation.dedup import why_unreadable
from ftdata.formats import FORMATS, compose, normalise, parse_spec
from ftdata.formats.dataset_info import spec_for
from ftdata.outputs import Fingerprint, OutputError, OutputSet, check_outputs, manifest, reject_line
from ftdata.records import Record

__all__ = ["TARGETS", "ConvertResult", "Rejection", "convert", "output_paths"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not converted: where it is, a stable ``reason``, a sentence,
    and the rule that explains it (None when none does)."""

    index: int
    line: int | None
    reason: str
    detail: str
    rule: str | None = None


@dataclass
class ConvertResult:
    """What a conversion did: how many records were read and converted, the rejections
    (in input order), the formats the records were read as, and the files written (or,
    for rows in memory, the converted rows in ``rows``)."""

    records: int
    to: str
    converted: int
    rejected: list[Rejection]
    formats: dict[str, int]
    outputs: dict[str, Path] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every record was converted."""
        return not self.rejected

    @property
    def reasons(self) -> dict[str, int]:
        """How many records were rejected for each reason, commonest first."""
        return dict(Counter(r.reason for r in self.rejected).most_common())


def output_paths(output: str | os.PathLike[str], rejects: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """The files one conversion writes: ``converted`` (``output``) and, beside it,
    ``rejected`` (``rejects`` when given) and ``manifest``."""
    out = Path(output)
    return {
        "converted": out,
        "rejected": Path(rejects) if rejects is not None else out.with_name(f"{out.stem}.rejected.jsonl"),
        "manifest": out.with_name(f"{out.stem}.manifest.json"),
    }


def convert(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    output: str | os.PathLike[str] | None = None,
    *,
    to: str,
    format: str | None = None,
    fields: Mapping[str, str] | None = None,
    rejects: str | os.PathLike[str] | None = None,
) -> ConvertResult:
    """Convert the records of ``source`` to the ``to`` shape: ``messages``,
    ``prompt-completion`` (conversational; KTO examples keep their ``label``),
    ``preference`` (explicit conversational prompt, ``chosen``, ``rejected``; KTO
    examples become ``prompt``/``completion``/``label``) or ``text`` (``text`` records
    only: turns are never rendered without the model's chat template).

    ``format`` forces the input format instead of detecting it per record (a format
    spec such as ``alpaca[question=instruction]`` is accepted too); ``fields`` maps the
    file's own keys onto a format's (``{"question": "prompt", "answer": "completion"}``,
    dotted paths allowed; see docs/formats.md) before reading, and a LLaMA-Factory
    ``dataset_info.json`` beside a file gives its format and columns, as for lint. With
    ``output`` (and a file ``source``) the converted records, the rejects (``rejects``,
    in the output's folder) and a manifest are written as one set; an output that would
    replace the input raises :class:`~ftdata.outputs.OutputError` before anything is
    read. Without ``output`` the converted rows are returned in ``ConvertResult.rows``.
    """
    if to not in TARGETS:
        raise ValueError(f"unknown target {to!r} (expected one of {', '.join(TARGETS)})")
    named = parse_spec(format).format  # FieldsError (a ValueError) when the spec is malformed
    if named is not None and named not in FORMATS:
        raise ValueError(f"unknown input format {named!r} (expected one of {', '.join(FORMATS)})")
    spec = compose(format, fields) if fields else format
    if output is None:
        if rejects is not None:
            raise ValueError("a rejects file needs an output")
        return _in_memory(source, to, spec)
    if not isinstance(source, str | os.PathLike):
        raise ValueError("writing an output needs a file as the source")
    path = Path(source)
    paths = output_paths(output, rejects)
    if paths["rejected"].parent.absolute() != paths["converted"].parent.absolute():
        raise OutputError(
            f"the rejects file {paths['rejected']} must be in the folder of the output {paths['converted']}: "
            "the files are committed together"
        )
    check_outputs([path], paths.values())
    spec = spec_for(path, spec)  # with what a dataset_info.json beside the file declares for it
    fingerprint = Fingerprint.of(path)
    return _write(path, paths, to, spec, fingerprint, options={"to": to, "format": format, "fields": fields})


def _outcome(rec: Record, to: str, spec: str | None) -> dict[str, Any] | Rejection:
    """The converted row of ``rec`` (read with the format spec ``spec``), or why there is none."""
    if type(rec.data) is dict:
        normalise(rec, spec)  # with a field mapping, rec.data becomes the mapped record
    if not rec.readable:
        rule, detail = why_unreadable(rec)
        reason = "unknown-format" if type(rec.data) is dict and rec.format is None else "unreadable"
        return Rejection(rec.index, rec.line, reason, detail, rule)
    try:
        row = convert_record(rec.data, rec.format or "", to)
    except Refusal as e:
        return Rejection(rec.index, rec.line, e.reason, e.detail, e.rule)
    out = Record(rec.index, row)
    normalise(out)
    if not out.readable:  # a record only readable in its dialect (a lone function_call turn)
        return Rejection(rec.index, rec.line, "unreadable", "the converted record would hold no text")
    return row


def _in_memory(source: Any, to: str, spec: str | None) -> ConvertResult:
    rows: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    formats: Counter[str] = Counter()
    n = 0
    for index, data in enumerate(source):
        n += 1
        rec = Record(index, data)
        outcome = _outcome(rec, to, spec)
        formats[rec.format or "unknown"] += 1
        if isinstance(outcome, Rejection):
            rejected.append(outcome)
        else:
            rows.append(outcome)
    return ConvertResult(n, to, len(rows), rejected, dict(sorted(formats.items())), rows=rows)


def _records(path: Path) -> Iterator[Record]:
    for item in io.read(path, io.ReadStats()):
        if isinstance(item, Record):
            yield item


def _dump(row: dict[str, Any]) -> bytes | None:
    try:
        return orjson.dumps(row)
    except (orjson.JSONEncodeError, TypeError):
        return None


def _write(
    source: Path,
    paths: Mapping[str, Path],
    to: str,
    spec: str | None,
    fingerprint: Fingerprint,
    *,
    options: Mapping[str, Any],
) -> ConvertResult:
    """Convert while streaming ``source`` into the output set, then commit it with the
    manifest once the input is known not to have changed."""
    array = paths["converted"].suffix.lower() == ".json"
    files = {key: p for key, p in paths.items() if key != "manifest"}
    rejected: list[Rejection] = []
    formats: Counter[str] = Counter()
    converted = records = 0
    with OutputSet(files, paths["manifest"]) as out:
        if array:
            out.write("converted", b"[\n")
        for rec in _records(source):
            records += 1
            outcome = _outcome(rec, to, spec)
            formats[rec.format or "unknown"] += 1
            line = outcome if isinstance(outcome, Rejection) else _dump(outcome)
            if line is None:
                line = Rejection(rec.index, rec.line, "unserialisable", "a value cannot be written as JSON")
            if isinstance(line, Rejection):
                rejected.append(line)
                out.write(
                    "rejected",
                    reject_line(
                        index=line.index,
                        line=line.line,
                        reason=line.reason,
                        rule=line.rule,
                        detail=line.detail,
                        raw=rec.raw if rec.raw is not None else b"",
                    ),
                )
                continue
            if array:
                out.write("converted", (b",\n" if converted else b"") + line)
            else:
                out.write("converted", line + b"\n")
            converted += 1
        if array:
            out.write("converted", b"\n]\n" if converted else b"]\n")
        fingerprint.check(source)
        result = ConvertResult(records, to, converted, rejected, dict(sorted(formats.items())))
        body = manifest(
            "convert",
            options=dict(options),
            inputs=[fingerprint.to_dict(records)],
            counts={"records": records, "converted": converted, "rejected": len(rejected), "reasons": result.reasons},
            formats={"in": result.formats, "out": to},
        )
        out.commit(body, records={"converted": converted, "rejected": len(rejected)})
    result.outputs = dict(paths)
    return result
