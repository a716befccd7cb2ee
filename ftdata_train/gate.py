"""The gate's checks: ftdata's lint with the model's tokenizer and leakage between train and eval.

:func:`check` lints every input with ftdata's default selection plus the token rules
FT501-FT504 (run with the model's own tokenizer and ``max_length``), looks for eval prompts
that are also training prompts (FT601, exact) or near copies of one (FT602: MinHash over word
5-grams, Jaccard >= 0.8, as ``ftdata.leakage`` finds them), and refuses with
:class:`GateError` when a finding at the report's fail level has a code ``data.allow`` does not
list, when a rule could not run, or when records could not be read and no rule says why.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftdata_train.config import ConfigError, TrainConfig

#: The token rules the gate adds to ftdata's default selection.
TOKEN_RULES = ("FT501", "FT502", "FT503", "FT504")
#: Findings a :class:`GateError` message lists before it gives a count of the rest.
MAX_LISTED = 20
#: The rule whose question (no trained token after truncation) the gate answers itself, with
#: the trainer's own tokenisation (tools included), instead of taking FT502's estimate.
FULLY_MASKED_RULE = "FT502"
LEAK_RULE = "FT601"
NEAR_LEAK_RULE = "FT602"
TEMPLATE_RULE = "FT503"
#: ``ftdata.leakage`` methods and the rule whose question each answers.
LEAK_METHODS = {"exact": LEAK_RULE, "minhash": NEAR_LEAK_RULE}
#: FT602's default Jaccard threshold.
NEAR_THRESHOLD = 0.8

PathLike = str | os.PathLike[str]


class GateError(ValueError):
    """The data failed the gate. ``findings`` are the refusing ones (ftdata ``Finding``\\ s);
    the message lists them as ``file:line:col CODE message``. ``headline`` is the message's
    first line (what refused, in one line); ``details`` the lines that say more when there is no
    finding to list, or what to do when there is."""

    def __init__(
        self,
        message: str,
        findings: Iterable[Any] = (),
        *,
        headline: str | None = None,
        details: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.findings: list[Any] = list(findings)
        self.headline: str = headline if headline is not None else (message.splitlines() or [""])[0]
        self.details: list[str] = list(details)


@dataclass
class Checked:
    """What passed the checks: the inputs (read, records in the normalised view), the ftdata
    reports by split (and ``leakage``), the findings let through by code (``allowed``) and those
    below the fail level (``below``), the leakage audit's summary and the rules run."""

    inputs: list[Input]
    reports: dict[str, Any]
    allowed: Counter[str]
    below: Counter[str]
    leakage: dict[str, Any]
    rules: list[str]


def check(train: Path, eval: Path | None, *, config: TrainConfig, tokenizer: str) -> Checked:
    """Lint ``train`` (and ``eval``) and check eval for leakage from train; raise
    :class:`GateError` with the refusing findings, or return the inputs read.

    ``tokenizer`` is the name (or local path) ftdata's token rules load the tokenizer by.
    Raises :class:`~ftdata_train.config.ConfigError` when a file cannot be read.
    """
    import ftdata

    fmt = config.data.input_format
    options: dict[str, Any] = {
        "extend_select": TOKEN_RULES,
        "tokenizer": tokenizer,
        "max_length": config.max_length,
        "format": fmt,
        "config": False,
    }
    inputs = [_census(train, "train", fmt)]
    if eval is not None:
        inputs.append(_census(eval, "eval", fmt))
    _refuse_non_sft(inputs)
    for item in inputs:
        _lint(item, options)
    reports: dict[str, Any] = {item.split: item.report for item in inputs}
    leak_findings: list[Any] = []
    leakage: dict[str, Any] = {}
    if eval is not None:
        leaks = ftdata.leakage([train, eval], methods=tuple(LEAK_METHODS), scope="prompt", format=fmt)
        reports["leakage"] = leaks
        leak_findings = leak_findings_of(leaks, eval)
        leakage = leakage_summary(leaks.leaks)
    allow = set(config.data.allow)
    allowed: Counter[str] = Counter()
    below: Counter[str] = Counter()
    refusing: list[Any] = []
    for item in inputs:
        report = item.report
        found = list(report.findings) + _screen(item) + (leak_findings if item.split == "eval" else [])
        for finding in found:
            if finding.code == FULLY_MASKED_RULE:
                continue  # answered by prepare() with the trainer's tokenisation
            if finding.severity < report.fail_on:
                below[finding.code] += 1
            elif finding.code in allow and finding.code != "FT000":
                allowed[finding.code] += 1
            else:
                refusing.append(finding)
        if report.unexplained:
            raise GateError(
                f"{item.path}: {report.unexplained} records could not be read and no selected rule says why;"
                " the gate cannot pass data it did not see"
            )
    if refusing:
        raise gate_error("the data failed ftdata's checks", refusing, allow_hint=True)
    return Checked(inputs, reports, allowed, below, leakage, [*_rules_run(options), LEAK_RULE, NEAR_LEAK_RULE])


def leakage_summary(leaks: Iterable[Any]) -> dict[str, Any]:
    """The manifest's account of a leakage check: rules, methods, scope and pairs by rule."""
    pairs = Counter(LEAK_METHODS.get(leak.method, leak.method) for leak in leaks)
    return {
        "rules": list(LEAK_METHODS.values()),
        "methods": list(LEAK_METHODS),
        "scope": "prompt",
        "threshold": NEAR_THRESHOLD,
        "pairs": {code: pairs.get(code, 0) for code in LEAK_METHODS.values()},
    }


def leak_findings_of(leaks: Any, eval_path: Path) -> list[Any]:
    """The leakage rules' own FT601 (exact) and FT602 (near-duplicate) findings on the eval
    file, one per leaked eval record; always errors here, whatever severity a project gives
    them, since the gate refuses a leak unless ``data.allow`` lets its code through."""
    import dataclasses

    from ftdata import Severity

    codes = set(LEAK_METHODS.values())
    return [
        dataclasses.replace(f, severity=Severity.ERROR)
        for f in leaks.findings
        if f.code in codes and f.source == str(eval_path)
    ]


@dataclass
class Input:
    """One input file: its split, fingerprint, ftdata report and (once read) its records."""

    split: str
    path: Path
    fingerprint: Any
    report: Any
    records: list[Any] = field(default_factory=list)
    unreadable: list[Any] = field(default_factory=list)
    total: int = 0


def _census(path: Path, split: str, fmt: str | None) -> Input:
    """The input read once, before any rule runs: its fingerprint and its records in the
    normalised view, unreadable ones apart. An empty file refuses here."""
    from ftdata.outputs import Fingerprint

    try:
        fingerprint = Fingerprint.of(path)
        item = Input(split, path, fingerprint, None)
        _read(item, fmt)
    except OSError as exc:
        raise ConfigError(f"data.{split}: cannot read {path} ({exc.strerror or exc})") from None
    if item.total == 0 and not item.unreadable:
        message = f"data.{split}: {path} is empty (no record to {'train on' if split == 'train' else 'evaluate'})"
        raise GateError(message)
    return item


def _refuse_non_sft(inputs: list[Input]) -> None:
    """Refuse preference (DPO) and unpaired preference (KTO) files, one line per file, before
    any tokenisation: SFT on them trains the chosen side, or every completion, as if it were a
    demonstration."""
    from ftdata_train.screening import format_counts, not_sft

    found = []
    for item in inputs:
        answer = not_sft(str(item.path), item.split, format_counts([*item.records, *item.unreadable]))
        if answer is not None:
            found.append(answer)
    if found:
        headline = found[0][0] if len(found) == 1 else f"{len(found)} files are not supervised fine-tuning data"
        lines = [full for _, full in found]
        raise GateError("\n".join(lines), headline=headline, details=lines)


def _lint(item: Input, options: Mapping[str, Any]) -> None:
    import ftdata

    try:
        item.report = ftdata.lint(item.path, **options)
    except OSError as exc:
        raise ConfigError(f"data.{item.split}: cannot read {item.path} ({exc.strerror or exc})") from None


def _read(item: Input, fmt: str | None) -> None:
    """The input's records in the normalised view; unreadable ones apart."""
    from ftdata import io
    from ftdata.formats import normalise
    from ftdata.records import Record

    for rec in io.read(item.path, io.ReadStats()):
        if not isinstance(rec, Record):
            continue
        item.total += 1
        if type(rec.data) is dict:
            normalise(rec, fmt)
        (item.records if rec.readable else item.unreadable).append(rec)


def _screen(item: Input) -> list[Any]:
    """The gate's own record findings: replies with weight 0 (FTT101) and media references
    (FTT103), as errors that ``data.allow`` can let through."""
    from ftdata_train.screening import MULTIMODAL_RULE, WEIGHT_ZERO_RULE, media_of, media_summary, zero_weight_replies

    out = []
    source = str(item.path)
    for rec in item.records:
        zero = zero_weight_replies(rec)
        if zero:
            out.append(
                error_finding(
                    WEIGHT_ZERO_RULE,
                    f"{zero} assistant repl{'ies have' if zero != 1 else 'y has'} weight 0, which TRL ignores:"
                    " it would be trained (remove the reply, or allow FTT101 to train it)",
                    source,
                    rec,
                )
            )
        media = media_of(rec)
        if media:
            out.append(
                error_finding(
                    MULTIMODAL_RULE,
                    f"the record references {media_summary(media)}; ftdata_train trains text-only models and"
                    " would train the text around them without them",
                    source,
                    rec,
                )
            )
    return out


def error_finding(code: str, message: str, source: str, rec: Any) -> Any:
    """An error finding of ``code`` on ``rec`` (the gate's own answers to FT502 and FT503)."""
    from ftdata import Finding, Severity

    return Finding(code, Severity.ERROR, message, source, line=rec.line, column=1, index=rec.index)


def gate_error(headline: str, findings: list[Any], *, allow_hint: bool = False) -> GateError:
    """A :class:`GateError` for ``findings``: :func:`refusal`'s message, the headline with the
    count as its first line, and the ``data.allow`` hint (when asked) as its details."""
    message = refusal(headline, findings, allow_hint=allow_hint)
    lines = message.splitlines()
    hints = [line for line in lines[1:] if not line.startswith("  ")]
    return GateError(message, findings, headline=lines[0], details=hints)


def refusal(headline: str, findings: list[Any], *, allow_hint: bool = False) -> str:
    """A refusal's message: the headline, then the findings as ``file:line:col CODE message``."""
    ordered = sorted(findings, key=lambda f: f.sort_key())
    shown = [
        f"  {f.source}:{f.line if f.line is not None else 1}:{f.column if f.column is not None else 1}"
        f" {f.code} {f.message}"
        for f in ordered[:MAX_LISTED]
    ]
    if len(ordered) > MAX_LISTED:
        shown.append(f"  ... and {len(ordered) - MAX_LISTED} more")
    hint = ""
    if allow_hint:
        codes = sorted({f.code for f in ordered if f.code != "FT000"})
        if codes:
            hint = f"\nto let a code through, list it in data.allow (for example allow = {codes[:3]!r})"
    return f"{headline}: {len(ordered)} refusing finding{'s' if len(ordered) != 1 else ''}\n" + "\n".join(shown) + hint


def _rules_run(options: Mapping[str, Any]) -> list[str]:
    """The codes of the rules ftdata's lint ran with these options."""
    from ftdata.config import Settings
    from ftdata.engine.plan import compile_plan

    settings = Settings().override(
        extend_select=tuple(options["extend_select"]),
        tokenizer=options["tokenizer"],
        max_length=options["max_length"],
        format=options["format"],
    )
    plan = compile_plan(settings)
    # Cross-file rules run only over files named as splits of one dataset, which the gate's
    # inputs need not be; the leakage check it runs itself is added by the caller.
    codes = {bound.code for bound in (*plan.records, *plan.dataset)} | {code for code, _ in plan.reader.values()}
    return sorted(codes)


__all__ = ["TOKEN_RULES", "Checked", "GateError", "Input", "check", "error_finding", "gate_error", "refusal"]
