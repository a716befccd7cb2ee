"""Severity, Issue (what a check yields), Finding (what the engine stamps) and Report."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PathT = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class RecordRef:
    """A record of another file that a finding points at (FT601-FT603: the earlier record
    an eval record leaks from): its ``source``, 0-based ``index`` and starting ``line``
    (None in memory). Serialised as ``{"source", "index", "line"}``."""

    source: str
    index: int
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "index": self.index, "line": self.line}


class Severity(enum.IntEnum):
    """How bad a finding is; ``--fail-on`` compares against it."""

    INFO = 10
    WARNING = 20
    ERROR = 30

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        """Accept ``"error"``, ``"Warning"``, ``30`` or a Severity."""
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            choices = ", ".join(str(s) for s in cls)
            raise ValueError(f"unknown severity {value!r} (expected one of: {choices})") from None


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem reported by a check, before the engine stamps code, severity and location.

    ``path`` points into the record (``("messages", 2, "role")``); dataset rules set
    ``index`` to the record concerned and ``related`` to the other members of its group.
    ``key=True`` points the column at the key of ``path`` rather than at its value;
    ``offset`` (set by the reader) is a character position in the record's raw text.
    ``score`` is the exact similarity behind a near-duplicate or leak finding (FT404,
    FT405: the similarity that joined the record to its group; FT602, FT603: to the
    record it leaks from); ``other`` names a record of another file (FT601-FT603).
    """

    message: str
    path: PathT = ()
    index: int | None = None
    related: tuple[int, ...] = ()
    key: bool = False
    offset: int | None = None
    score: float | None = None
    other: RecordRef | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding: a rule's code and severity, a message and where it is.

    ``related`` lists the other records of the same file in the finding's group;
    ``score`` and ``other`` are copied from the rule's :class:`Issue` (a similarity, and
    a :class:`RecordRef` to a record of another file). Both appear in the JSON output only
    when set, so findings of the other rules keep their shape."""

    code: str
    severity: Severity
    message: str
    source: str
    line: int | None = None
    column: int | None = None
    index: int | None = None
    path: PathT = ()
    related: tuple[int, ...] = ()
    # sha256 prefix of the record's bytes, for baselines; not part of the public record.
    fingerprint: str = field(default="", compare=False, repr=False)
    # After the fingerprint, so that positional construction keeps its meaning.
    score: float | None = None
    other: RecordRef | None = None

    @property
    def json_path(self) -> str:
        """The path as JSONPath, e.g. ``$.messages[2].role``."""
        return json_path(self.path)

    def sort_key(self) -> tuple[Any, ...]:
        return (
            self.source,
            self.line if self.line is not None else -1,
            self.index if self.index is not None else -1,
            self.column if self.column is not None else -1,
            self.code,
            self.message,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; severity as a lower-case word, path as a list; ``score`` and
        ``other`` only when set."""
        out: dict[str, Any] = {
            "code": self.code,
            "severity": str(self.severity),
            "message": self.message,
            "source": self.source,
            "line": self.line,
            "column": self.column,
            "index": self.index,
            "path": list(self.path),
            "related": list(self.related),
        }
        if self.score is not None:
            out["score"] = self.score
        if self.other is not None:
            out["other"] = self.other.to_dict()
        return out


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """``"1 record"``, ``"2,000 records"``."""
    return f"{n:,} {noun if n == 1 else plural_form or noun + 's'}"


def json_path(path: Iterable[str | int]) -> str:
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.isidentifier():
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class SourceStats:
    """What the engine saw in one source."""

    source: str
    records: int = 0
    lines: int = 0
    formats: tuple[tuple[str, int], ...] = ()
    truncated: bool = False  # stopped early at --max-errors
    unreadable: int = 0  # records not understood (see Record.readable): never compared
    #: The filled folds of the run (``ftdata.lint(folds=...)``), in the order asked for.
    folds: tuple[Any, ...] = field(default=(), compare=False, repr=False)


#: The code of a rule that could not finish (see ``Report.incomplete``).
RULE_ERROR = "FT000"


class Report:
    """The findings of one run, sorted, with per-source statistics. ``fail_on`` is the
    severity from which the run fails (from the configuration unless told otherwise)."""

    def __init__(
        self, findings: Iterable[Finding], sources: Iterable[SourceStats] = (), *, fail_on: Severity | str = "error"
    ) -> None:
        self.findings: list[Finding] = sorted(findings, key=Finding.sort_key)
        self.sources: list[SourceStats] = list(sources)
        self.fail_on: Severity = Severity.parse(fail_on)

    @property
    def unreadable(self) -> int:
        """Records ftdata could not read or understand, across all sources."""
        return sum(s.unreadable for s in self.sources)

    @property
    def unexplained(self) -> int:
        """Unreadable records when no error finding says why (their reader rules were not
        selected): the selected checks did not see them, so the verdict is incomplete."""
        if not self.unreadable or any(f.severity >= Severity.ERROR and f.code != RULE_ERROR for f in self.findings):
            return 0
        return self.unreadable

    @property
    def rule_errors(self) -> list[Finding]:
        """Rules that raised instead of finishing their check (FT000), in every scope."""
        return [f for f in self.findings if f.code == RULE_ERROR]

    @property
    def incomplete(self) -> bool:
        """True when some selected check did not run on every record (a rule raised, or
        records could not be read and nothing selected says why): the verdict is
        incomplete whatever the other findings say (``ftdata lint`` exits 2)."""
        return bool(self.unexplained) or any(f.code == RULE_ERROR for f in self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __repr__(self) -> str:
        counts = self.severity_counts()
        parts = ", ".join(f"{counts[s]} {s}" for s in reversed(Severity) if counts[s])
        return f"<Report {len(self.findings)} findings ({parts or 'clean'}) in {len(self.sources)} sources>"

    @property
    def total_records(self) -> int:
        """Records read across all sources."""
        return sum(s.records for s in self.sources)

    def failed(self, fail_on: Severity | str | None = None) -> bool:
        """True when a finding is at or above ``fail_on`` (default: the report's own)."""
        level = self.fail_on if fail_on is None else Severity.parse(fail_on)
        return any(f.severity >= level for f in self.findings)

    def severity_counts(self) -> Counter[Severity]:
        return Counter(f.severity for f in self.findings)

    def by_code(self) -> dict[str, list[Finding]]:
        """Findings grouped by rule code, codes in order."""
        groups: dict[str, list[Finding]] = {}
        for f in sorted(self.findings, key=lambda f: f.code):
            groups.setdefault(f.code, []).append(f)
        return groups

    def to_dicts(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.findings]

    def to_pandas(self) -> pd.DataFrame:
        """The findings as a DataFrame, one row a finding (pandas imported on call)."""
        import pandas as pd

        columns = [
            "code",
            "severity",
            "message",
            "source",
            "line",
            "column",
            "index",
            "path",
            "related",
            "score",
            "other",
        ]
        frame = pd.DataFrame(self.to_dicts(), columns=columns)
        frame["score"] = frame["score"].astype("Float64")
        frame["line"] = frame["line"].astype("Int64")
        frame["column"] = frame["column"].astype("Int64")
        frame["index"] = frame["index"].astype("Int64")
        return frame


def rule_code(code_or_name: str) -> str:
    """The code of a registered rule given its code or name; ValueError naming how to list
    the valid ones when there is none."""
    from ftdata import registry

    try:
        return registry.get(code_or_name).code
    except KeyError:
        raise ValueError(f"unknown rule {code_or_name!r}; `ftdata rules` lists the valid codes") from None
