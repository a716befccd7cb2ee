"""SARIF 2.1.0, for GitHub code scanning and other static-analysis viewers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from ftdata import registry
from ftdata._version import __version__
from ftdata.findings import Report, Severity
from ftdata.render.jsonout import dumps

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def document(report: Report) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log: one run, the rules it found, one result a finding."""
    codes = sorted({f.code for f in report.findings})
    rules: list[dict[str, Any]] = []
    for code in codes:
        try:
            r = registry.get(code)
        except KeyError:
            rules.append({"id": code})
            continue
        rules.append(
            {
                "id": r.code,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "help": {"text": r.doc, "markdown": r.doc},
                "defaultConfiguration": {"level": _LEVEL[r.severity]},
            }
        )
    index = {code: i for i, code in enumerate(codes)}
    results = []
    for f in report.findings:
        location: dict[str, Any] = {}
        if not f.source.startswith("<"):
            physical: dict[str, Any] = {"artifactLocation": {"uri": Path(f.source).as_posix()}}
            if f.line is not None:
                physical["region"] = {"startLine": f.line, "startColumn": f.column or 1}
            location["physicalLocation"] = physical
        if f.path:
            location["logicalLocations"] = [{"fullyQualifiedName": f.json_path, "kind": "member"}]
        result: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": _LEVEL[f.severity],
            "message": {"text": f.message},
        }
        if location:
            result["locations"] = [location]
        if f.index is not None:
            result["properties"] = {"recordIndex": f.index, "related": list(f.related)}
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "ftdata", "version": __version__, "rules": rules}}, "results": results}],
    }


def render(report: Report, stream: TextIO) -> None:
    """The SARIF document, indented; text is kept exact (JSON escaping only)."""
    stream.write(dumps(document(report), indent=True).decode() + "\n")
