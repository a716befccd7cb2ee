"""The two record formats every writing command shares: rejects (``ftdata.rejects/1``) and
the manifest (``ftdata.manifest/1``); documented in :mod:`ftdata.outputs`."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

REJECTS_SCHEMA = "ftdata.rejects/1"
MANIFEST_SCHEMA = "ftdata.manifest/1"


def reject_line(
    *,
    index: int,
    line: int | None,
    reason: str,
    raw: bytes,
    rule: str | None = None,
    detail: str = "",
    **extra: Any,
) -> bytes:
    """One line of a rejects file (``ftdata.rejects/1``, see the module docs), newline included."""
    entry: dict[str, Any] = {
        "schema": REJECTS_SCHEMA,
        "index": index,
        "line": line,
        "reason": reason,
        "rule": rule,
        "detail": detail,
        **extra,
    }
    try:
        entry["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        entry["raw_base64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(entry) + b"\n"


def manifest(
    command: str,
    *,
    options: Mapping[str, Any],
    inputs: Iterable[Mapping[str, Any]],
    counts: Mapping[str, Any],
    rules: Iterable[Mapping[str, Any]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """A manifest (``ftdata.manifest/1``) without its ``outputs``, which
    :meth:`OutputSet.commit` fills in."""
    from ftdata._version import __version__

    return {
        "schema": MANIFEST_SCHEMA,
        "ftdata": __version__,
        "command": command,
        "options": dict(options),
        "rules": [dict(r) for r in rules],
        "inputs": [dict(i) for i in inputs],
        "counts": dict(counts),
        **extra,
    }
