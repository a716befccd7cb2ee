"""ftdata: curate and validate datasets for fine-tuning LLMs.

The linter is ``ftdata.lint(path_or_records)``; it returns a :class:`Report` of
:class:`Finding` objects, each with a stable rule code.
"""

from ftdata._version import __version__
from ftdata.config import ConfigError, Settings
from ftdata.findings import Finding, Issue, Report, Severity
from ftdata.lint import lint
from ftdata.records import Message, Record
from ftdata.registry import Scope, rule

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
    "lint",
    "rule",
]
