"""ftdata: curate and validate datasets for fine-tuning LLMs.

``ftdata.lint(path_or_records)`` returns a :class:`Report` of :class:`Finding` objects,
each with a stable rule code; ``ftdata.dedup``, ``ftdata.split`` and ``ftdata.leakage``
curate, split and audit the data.
"""

from ftdata._version import __version__
from ftdata.config import ConfigError, Settings
from ftdata.deduplicate import dedup
from ftdata.findings import Finding, Issue, Report, Severity
from ftdata.leaks import leakage
from ftdata.linter import lint
from ftdata.records import Message, Record
from ftdata.registry import Scope, rule
from ftdata.splits import split

__all__ = [
    "ConfigError",
    "Finding",
    "Issue",
    "Message",
    "Record",
    "Report",
    "Scope",
    "Settings",
    "Severity",
    "__version__",
    "dedup",
    "leakage",
    "lint",
    "rule",
    "split",
]
