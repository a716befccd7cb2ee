"""ftdata: curate and validate datasets for fine-tuning LLMs.

``ftdata.lint(path_or_records)`` returns a :class:`Report` of :class:`Finding` objects,
each with a stable rule code; ``ftdata.audit`` adds the dataset's figures and an HTML
report; ``ftdata.dedup``, ``ftdata.split`` and ``ftdata.leakage`` curate, split and check
the data on disk, and ``ftdata.curate`` cleans records in memory. These are imported on
first use, so that ``import ftdata`` (and the pre-commit hook) stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ftdata._version import __version__
from ftdata.api import lint
from ftdata.config import ConfigError, Settings
from ftdata.findings import Finding, Issue, RecordRef, Report, Severity
from ftdata.records import Message, Record
from ftdata.registry import Scope, rule

if TYPE_CHECKING:  # pragma: no cover
    from ftdata.auditing import AuditReport, audit
    from ftdata.curation.convert import ConvertResult, convert
    from ftdata.curation.dedup import dedup
    from ftdata.curation.leakage import leakage
    from ftdata.curation.memory import CurateResult, curate
    from ftdata.curation.split import split

_LAZY = {
    "audit": "ftdata.auditing",
    "AuditReport": "ftdata.auditing",
    "CurateResult": "ftdata.curation.memory",
    "ConvertResult": "ftdata.curation.convert",
    "convert": "ftdata.curation.convert",
    "curate": "ftdata.curation.memory",
    "dedup": "ftdata.curation.dedup",
    "leakage": "ftdata.curation.leakage",
    "split": "ftdata.curation.split",
}

__all__ = [
    "AuditReport",
    "ConfigError",
    "ConvertResult",
    "CurateResult",
    "Finding",
    "Issue",
    "Message",
    "Record",
    "RecordRef",
    "Report",
    "Scope",
    "Settings",
    "Severity",
    "__version__",
    "audit",
    "convert",
    "curate",
    "dedup",
    "leakage",
    "lint",
    "rule",
    "split",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ftdata' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
