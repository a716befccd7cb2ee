"""Notes of a run that are not findings: the selected rules that did not apply to some
records of a file, and why (no severity, no effect on the exit status, never in a
baseline)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ftdata.engine.plan import Plan

#: Rules that check what some formats do not have, by format and why: rather than each
#: rule skipping those records in silence, the engine says so once per file
#: (:class:`NotApplied`). A rule that is only meant for one format (FT701 on pairs) is
#: not listed: it does not apply to the others by definition.
NOT_APPLICABLE: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {
    "text": (
        (
            "no turns",
            frozenset(
                {"FT109", "FT111", "FT112", "FT113", "FT114", "FT115", "FT201", "FT202", "FT203", "FT204", "FT205"}
                | {"FT206", "FT402", "FT403"}
            ),
        ),
        ("a document may quote a dialogue", frozenset({"FT305"})),
    ),
    "preference": (("FT702 and FT111 check the replies", frozenset({"FT109"})),),
}


@dataclass(frozen=True, slots=True)
class NotApplied:
    """Selected rules that did not apply to the ``records`` records of ``format`` in one
    file (``format`` empty: records of any format), and why: a note of the run, not a
    finding (no severity, no effect on the exit status, never in a baseline)."""

    codes: tuple[str, ...]
    format: str
    records: int
    reason: str

    @property
    def message(self) -> str:
        """``FT109, FT111-FT115 do not apply to 412 `text` records (no turns)``."""
        verb = "does" if len(self.codes) == 1 else "do"
        noun = "record" if self.records == 1 else "records"
        kind = f"`{self.format}` " if self.format else ""
        return f"{code_ranges(self.codes)} {verb} not apply to {self.records:,} {kind}{noun} ({self.reason})"


def code_ranges(codes: Iterable[str]) -> str:
    """Codes in order, runs of three or more consecutive ones joined: ``FT109, FT111-FT115``."""
    runs: list[list[str]] = []
    for code in sorted(set(codes)):
        if runs and _follows(runs[-1][-1], code):
            runs[-1].append(code)
        else:
            runs.append([code])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(r) for r in runs)


def _follows(a: str, b: str) -> bool:
    return a[:-3] == b[:-3] and a[-3:].isdigit() and b[-3:].isdigit() and int(b[-3:]) == int(a[-3:]) + 1


def not_applied(plan: Plan, formats: Counter[str]) -> tuple[NotApplied, ...]:
    """The selected rules of ``plan`` that did not apply to some records of a file whose
    records are ``formats`` (records per format), one note per format and reason."""
    selected = {b.code for b in plan.selected}
    out = []
    for fmt, reasons in NOT_APPLICABLE.items():
        count = formats.get(fmt, 0)
        if not count:
            continue
        for reason, codes in reasons:
            skipped = tuple(sorted(selected & codes))
            if skipped:
                out.append(NotApplied(skipped, fmt, count, reason))
    return tuple(out)
