"""The data gate: nothing trains on data ftdata would refuse, and nothing is dropped silently.

:func:`prepare` lints the training (and eval) file with ftdata's default selection plus the
token rules FT501-FT504, run with the model's own tokenizer and ``max_length``, checks that no
eval prompt is also a training prompt (FT601), and refuses with :class:`GateError` when a
finding at the report's fail level has a code the config does not allow, when a rule could
not run, or when records could not be read and no rule says why. Without an eval file it
holds out ``data.eval_size`` of train with ftdata's leak-free split (written under
``output_dir/data/``) and says so.

It then tokenises every example as TRL's ``SFTTrainer`` will (:mod:`ftdata_train.labels`)
and counts, per split, records, tokens, trained tokens, truncated examples and examples
truncation leaves with no trained token: those refuse the run (``fully_masked = "refuse"``)
or are removed and listed in the manifest (``"drop"``), where TRL would drop them without a
word. Examples with no trained token even untruncated (a conversation that ends before any
assistant turn, which ftdata reports as a warning) would make TRL raise: they are always
removed, counted and listed.

The ``datasets.Dataset``\\ s hold only the columns TRL reads: ``messages`` (or ``prompt`` and
``completion``) and ``tools`` (a JSON string, as TRL accepts, so that records with different
tool schemas fit one Arrow column). Other fields (``metadata``...) are left out: TRL never
uses them and their varying shapes would only make Arrow fill gaps with nulls.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ftdata_train.config import ConfigError, TrainConfig
from ftdata_train.labels import (
    LossError,
    TokenizedExample,
    example_kind,
    resolve_loss,
    sft_loss_options,
    tokenize_example,
    training_chat_template,
)

#: The token rules the gate adds to ftdata's default selection.
TOKEN_RULES = ("FT501", "FT502", "FT503", "FT504")
#: The schema name of :class:`DataManifest`.
MANIFEST_SCHEMA = "ftdata_train.data/1"
MANIFEST_NAME = "data-manifest.json"
#: Findings a :class:`GateError` message lists before it gives a count of the rest.
MAX_LISTED = 20
#: The rule whose question (no trained token after truncation) the gate answers itself, with
#: the trainer's own tokenisation (tools included), instead of taking FT502's estimate.
FULLY_MASKED_RULE = "FT502"
LEAK_RULE = "FT601"
TEMPLATE_RULE = "FT503"

PathLike = str | os.PathLike[str]


class GateError(ValueError):
    """The data failed the gate. ``findings`` are the refusing ones (ftdata ``Finding``\\ s);
    the message lists them as ``file:line:col CODE message``."""

    def __init__(self, message: str, findings: Iterable[Any] = ()) -> None:
        super().__init__(message)
        self.findings: list[Any] = list(findings)


@dataclass(frozen=True, slots=True)
class Dropped:
    """An input record left out of the datasets, and why."""

    split: str
    source: str
    line: int | None
    index: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "source": self.source,
            "line": self.line,
            "index": self.index,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class SplitStats:
    """What one split holds after the gate. ``tokens`` and ``trained_tokens`` count the kept
    examples after truncation (what the model is fed and what carries a label); the length
    percentiles are of the examples before truncation, so ``length_p99 > max_length`` says
    truncation is common. ``fully_masked_lines`` are the input lines of the examples
    truncation left untrained (refused or dropped, by policy); ``no_target_lines`` those with
    nothing to train on at all (always dropped)."""

    records: int
    tokens: int
    trained_tokens: int
    truncated: int
    fully_masked: int
    fully_masked_lines: tuple[int | None, ...]
    no_target_lines: tuple[int | None, ...]
    dropped: int
    length_p50: int
    length_p95: int
    length_p99: int
    length_max: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "tokens": self.tokens,
            "trained_tokens": self.trained_tokens,
            "truncated": self.truncated,
            "fully_masked": self.fully_masked,
            "fully_masked_lines": list(self.fully_masked_lines),
            "no_target_lines": list(self.no_target_lines),
            "dropped": self.dropped,
            "length": {"p50": self.length_p50, "p95": self.length_p95, "p99": self.length_p99, "max": self.length_max},
        }


@dataclass
class DataManifest:
    """Provenance of the data a run trains on (schema ``ftdata_train.data/1``): the inputs'
    sizes and sha256s, the split made (if any), records per split, what was dropped and why,
    the ftdata version, the rules run, the findings let through by code, the tokenizer and
    ``max_length``. The trainer saves it beside every checkpoint and adapter."""

    inputs: list[dict[str, Any]]
    records: dict[str, int]
    dropped: list[Dropped]
    rules: list[str]
    allowed: dict[str, int]
    warnings: dict[str, int]
    tokenizer: str
    max_length: int
    kind: str
    loss: str
    fully_masked: str
    split: dict[str, Any] | None = None
    leakage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data."""
        from ftdata import __version__ as ftdata_version

        return {
            "schema": MANIFEST_SCHEMA,
            "ftdata": ftdata_version,
            "inputs": [dict(i) for i in self.inputs],
            "split": self.split,
            "records": dict(self.records),
            "dropped": [d.to_dict() for d in self.dropped],
            "rules": list(self.rules),
            "allowed": dict(self.allowed),
            "warnings": dict(self.warnings),
            "leakage": dict(self.leakage),
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "kind": self.kind,
            "loss": self.loss,
            "fully_masked": self.fully_masked,
        }

    def save(self, directory: PathLike) -> Path:
        """Write ``data-manifest.json`` into ``directory`` (created if missing), atomically."""
        from ftdata.io import atomic_write

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / MANIFEST_NAME
        with atomic_write(path) as fh:
            fh.write(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        return path


@dataclass
class Prepared:
    """What the gate let through. ``train``/``eval`` are ``datasets.Dataset``\\ s in TRL's
    shape; ``kind`` is ``messages``, ``prompt_completion`` (plain text) or
    ``chat_prompt_completion``; ``loss`` the resolved loss (assistant, completion, all);
    ``chat_template`` the template TRL will train with when it is not the tokenizer's own
    (None otherwise); ``lines[split][row]`` the input line of each row; ``reports`` the
    ftdata reports by split (and ``leakage`` when an eval file was given)."""

    train: Any
    eval: Any
    kind: str
    loss: str
    chat_template: str | None
    stats: dict[str, SplitStats]
    manifest: DataManifest
    notes: list[str]
    reports: dict[str, Any]
    lines: dict[str, list[int | None]]

    @property
    def sft_options(self) -> dict[str, bool]:
        """``assistant_only_loss`` and ``completion_only_loss`` for ``SFTConfig``: with them
        TRL trains on exactly the tokens the gate counted as trained."""
        return sft_loss_options(self.kind, self.loss)


@dataclass
class _Input:
    split: str
    path: Path
    fingerprint: Any
    report: Any
    records: list[Any] = field(default_factory=list)
    unreadable: list[Any] = field(default_factory=list)
    total: int = 0


def prepare(
    train: PathLike | None = None,
    eval: PathLike | None = None,
    *,
    config: TrainConfig,
    tokenizer: Any = None,
) -> Prepared:
    """Run the data gate on ``train`` (and ``eval``; both default to ``config.data``) and
    return the datasets TRL takes with their statistics and manifest.

    ``tokenizer`` is the model's loaded tokenizer (default: loaded from ``config.model``,
    locally). Raises :class:`GateError` when the data fails (its ``findings`` are the refusing
    ones), :class:`~ftdata_train.config.ConfigError` when no data is named, a file cannot be
    read, or the loss cannot be computed with this chat template, and
    ``ftdata.outputs.OutputError`` when the held-out split cannot be written under
    ``output_dir/data``.
    """
    import ftdata

    train_path = _data_path(train if train is not None else config.data.train, "train")
    if train_path is None:
        raise ConfigError("no training data: set data.train in the config (or pass train=)")
    eval_given = eval if eval is not None else config.data.eval
    eval_path = _data_path(eval_given, "eval")
    tok, tokenizer_name = _tokenizer(tokenizer, config.model)
    fmt = config.data.input_format
    lint_options: dict[str, Any] = {
        "extend_select": TOKEN_RULES,
        "tokenizer": tokenizer_name,
        "max_length": config.max_length,
        "format": fmt,
        "config": False,
    }

    inputs = [_lint(train_path, "train", lint_options)]
    if eval_path is not None:
        inputs.append(_lint(eval_path, "eval", lint_options))
    refusing: list[Any] = []
    leak_findings: list[Any] = []
    leakage_info: dict[str, Any] = {}
    reports: dict[str, Any] = {item.split: item.report for item in inputs}
    if eval_path is not None:
        leaks = ftdata.leakage([train_path, eval_path], methods=("exact",), scope="prompt", format=fmt)
        reports["leakage"] = leaks
        leak_findings = _leak_findings(leaks, eval_path)
        leakage_info = {"rule": LEAK_RULE, "methods": ["exact"], "scope": "prompt", "pairs": len(leaks.leaks)}
    allow = set(config.data.allow)
    allowed: Counter[str] = Counter()
    below: Counter[str] = Counter()
    for item in inputs:
        report = item.report
        found = list(report.findings) + (leak_findings if item.split == "eval" else [])
        for finding in found:
            if finding.code == FULLY_MASKED_RULE:
                continue  # answered below with the trainer's tokenisation
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
        raise GateError(_refusal("the data failed ftdata's checks", refusing, allow_hint=True), refusing)

    for item in inputs:
        _read(item, fmt)

    notes: list[str] = []
    split_info: dict[str, Any] | None = None
    source_rows: dict[str, list[Any]] = {}
    if eval_path is None:
        source_rows, split_info = _hold_out(inputs[0], config, notes)
    else:
        source_rows = {item.split: item.records for item in inputs}
    dropped: list[Dropped] = []
    for item in inputs:
        for rec in item.unreadable:
            dropped.append(Dropped(item.split, str(item.path), rec.line, rec.index, "unreadable"))
    if dropped:
        notes.append(
            f"{len(dropped)} unreadable records were left out (their findings are allowed by data.allow);"
            " the manifest lists their lines"
        )

    loss_wanted = config.loss
    kinds = {_record_kind(rec, loss_wanted) for rows in source_rows.values() for rec in rows}
    if len(kinds) > 1:
        raise GateError(
            f"the records mix {' and '.join(sorted(kinds))} rows; TRL trains on one shape at a time"
            " (ftdata's FT101 reports the mixed formats)"
        )
    kind = kinds.pop() if kinds else "messages"
    try:
        loss = resolve_loss(kind, loss_wanted)
        template = training_chat_template(tok, loss)
    except LossError as exc:
        raise ConfigError(f"loss = {loss_wanted!r}: {exc}") from None
    if template is not None:
        notes.append("the chat template has no {% generation %} markers: TRL trains with its patched copy of it")

    from datasets import Dataset

    datasets_out: dict[str, Any] = {}
    stats: dict[str, SplitStats] = {}
    lines: dict[str, list[int | None]] = {}
    fully_masked_findings: list[Any] = []
    template_findings: list[Any] = []
    for split in ("train", "eval"):
        recs = source_rows.get(split, [])
        source = str(_source_of(split, inputs))
        table = Dataset.from_list(_rows(recs, kind)) if recs else Dataset.from_list([])
        kept: list[int] = []
        tokens = trained = truncated = 0
        lengths: list[int] = []
        masked_lines: list[int | None] = []
        no_target: list[int | None] = []
        for row, rec in enumerate(recs):
            try:
                example = tokenize_example(
                    dict(table[row]), tok, max_length=config.max_length, loss=loss, chat_template=template
                )
            except Exception as exc:  # a chat template raises plain exceptions on what it refuses
                finding = _finding(TEMPLATE_RULE, f"the chat template fails on this record: {exc}", source, rec)
                if TEMPLATE_RULE in allow:
                    dropped.append(Dropped(split, source, rec.line, rec.index, "chat template error"))
                    allowed[TEMPLATE_RULE] += 1
                else:
                    template_findings.append(finding)
                continue
            lengths.append(example.length_before)
            truncated += example.truncated
            if example.fully_masked:
                if example.truncated and _trained_untruncated(table[row], tok, loss, template):
                    masked_lines.append(rec.line)
                    fully_masked_findings.append(_fully_masked_finding(example, config.max_length, source, rec))
                    if config.data.fully_masked == "drop":
                        dropped.append(Dropped(split, source, rec.line, rec.index, "fully masked by truncation"))
                    continue
                no_target.append(rec.line)
                dropped.append(Dropped(split, source, rec.line, rec.index, "no trained token"))
                continue
            kept.append(row)
            tokens += len(example.input_ids)
            trained += example.trained_tokens
        datasets_out[split] = table.select(kept) if len(kept) != len(recs) else table
        lines[split] = [recs[row].line for row in kept]
        ordered = sorted(lengths)
        stats[split] = SplitStats(
            records=len(kept),
            tokens=tokens,
            trained_tokens=trained,
            truncated=truncated,
            fully_masked=len(masked_lines),
            fully_masked_lines=tuple(masked_lines),
            no_target_lines=tuple(no_target),
            dropped=len(recs) - len(kept),
            length_p50=_percentile(ordered, 50),
            length_p95=_percentile(ordered, 95),
            length_p99=_percentile(ordered, 99),
            length_max=ordered[-1] if ordered else 0,
        )
        if no_target:
            notes.append(
                f"{len(no_target)} {split} examples have no token to train on with loss = {loss!r} (TRL would stop"
                " on them): they were left out; the manifest lists their lines"
            )
    if template_findings:
        raise GateError(_refusal("the chat template fails on some records", template_findings), template_findings)
    if fully_masked_findings and config.data.fully_masked == "refuse":
        raise GateError(
            _refusal(
                f"truncation to max_length {config.max_length} leaves some examples with no trained token"
                " (raise max_length, shorten them, or set data.fully_masked = 'drop')",
                fully_masked_findings,
            ),
            fully_masked_findings,
        )
    if fully_masked_findings:
        notes.append(
            f"{len(fully_masked_findings)} examples truncation left with no trained token were dropped"
            " (data.fully_masked = 'drop'); the manifest lists their lines"
        )
    if not len(datasets_out["train"]):
        raise GateError("no training example is left after the gate")
    if not len(datasets_out["eval"]):
        raise GateError("no eval example is left after the gate: give a larger eval set")
    for item in inputs:
        item.fingerprint.check(item.path)

    manifest = DataManifest(
        inputs=[{"split": item.split, **item.fingerprint.to_dict(item.total)} for item in inputs],
        records={split: len(ds) for split, ds in datasets_out.items()},
        dropped=sorted(dropped, key=lambda d: (d.source, d.index)),
        rules=[*_rules_run(lint_options), LEAK_RULE],
        allowed=dict(sorted(allowed.items())),
        warnings=dict(sorted(below.items())),
        tokenizer=tokenizer_name,
        max_length=config.max_length,
        kind=kind,
        loss=loss,
        fully_masked=config.data.fully_masked,
        split=split_info,
        leakage=leakage_info or (split_info or {}).get("leakage", {}),
    )
    return Prepared(
        train=datasets_out["train"],
        eval=datasets_out["eval"],
        kind=kind,
        loss=loss,
        chat_template=template,
        stats=stats,
        manifest=manifest,
        notes=notes,
        reports=reports,
        lines=lines,
    )


def _data_path(value: PathLike | None, what: str) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"data.{what}: {path} is not a file")
    return path


def _tokenizer(tokenizer: Any, model: str) -> tuple[Any, str]:
    """The tokenizer and the name ftdata's token rules load it by."""
    if tokenizer is not None:
        return tokenizer, str(getattr(tokenizer, "name_or_path", "") or model)
    from ftdata.tokens import load_tokenizer

    try:
        return load_tokenizer(model), model
    except ValueError as exc:
        raise ConfigError(f"model {model!r}: {exc}") from None


def _lint(path: Path, split: str, options: Mapping[str, Any]) -> _Input:
    import ftdata
    from ftdata.outputs import Fingerprint

    try:
        fingerprint = Fingerprint.of(path)
        report = ftdata.lint(path, **options)
    except OSError as exc:
        raise ConfigError(f"data.{split}: cannot read {path} ({exc.strerror or exc})") from None
    return _Input(split, path, fingerprint, report)


def _read(item: _Input, fmt: str | None) -> None:
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


def _hold_out(item: _Input, config: TrainConfig, notes: list[str]) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Split train with ftdata's split (grouped by prompt, so no eval prompt is a training
    prompt), written under ``output_dir/data``."""
    import ftdata
    from ftdata.outputs import Fingerprint

    size = config.data.eval_size
    result = ftdata.split(
        item.path,
        sizes={"train": 1 - size, "eval": size},
        seed=config.seed,
        format=config.data.input_format,
    )
    directory = Path(config.output_dir) / "data"
    directory.mkdir(parents=True, exist_ok=True)
    paths = result.write(directory)
    rows: dict[str, list[Any]] = {"train": [], "eval": []}
    for rec in item.records:
        where = result.assignment[rec.index] if rec.index < len(result.assignment) else None
        if where in rows:
            rows[where].append(rec)
    files = {}
    for name in ("train", "eval"):
        fp = Fingerprint.of(paths[name])
        files[name] = {"path": str(paths[name]), "size": fp.size, "sha256": fp.sha256, "records": result.counts[name]}
    notes.append(
        f"no eval file was given: ftdata's leak-free split (grouped by prompt, seed {config.seed}) held out"
        f" {result.counts['eval']} of {len(result.assignment)} records ({size:.0%}) as eval, written to {paths['eval']}"
    )
    notes.extend(f"split: {w}" for w in result.warnings)
    info = {
        "made_by": "ftdata.split",
        "eval_size": size,
        "seed": config.seed,
        "group_by": result.options.get("group_by"),
        "directory": str(directory),
        "files": files,
        "rejected": len(result.rejected),
        "leakage": {"rule": LEAK_RULE, "methods": ["exact"], "scope": "prompt", "pairs": len(result.leaks)},
    }
    return rows, info


def _source_of(split: str, inputs: list[_Input]) -> Path:
    for item in inputs:
        if item.split == split:
            return item.path
    return inputs[0].path  # a held-out eval comes from the train file


def _record_kind(rec: Any, loss: str) -> str:
    from ftdata.formats import PROMPT_COMPLETION

    if rec.format == PROMPT_COMPLETION:
        data = rec.data
        if isinstance(data.get("prompt"), str) and isinstance(data.get("completion"), str):
            return "prompt_completion"
        return "chat_prompt_completion"
    # Completion-only loss on conversations: the last assistant turn is the completion.
    return "chat_prompt_completion" if loss == "completion" else "messages"


def _rows(records: list[Any], kind: str) -> list[dict[str, Any]]:
    from ftdata.formats import PROMPT_COMPLETION
    from ftdata.tokens import chat_messages

    rows: list[dict[str, Any]] = []
    for rec in records:
        data = rec.data
        if kind == "prompt_completion":
            row: dict[str, Any] = {"prompt": data["prompt"], "completion": data["completion"]}
        else:
            messages = chat_messages(rec)
            if kind == "messages":
                row = {"messages": messages}
            elif rec.format == PROMPT_COMPLETION:
                row = {
                    "prompt": [m for m, src in zip(messages, rec.messages, strict=True) if src.path[:1] == ("prompt",)],
                    "completion": [
                        m for m, src in zip(messages, rec.messages, strict=True) if src.path[:1] == ("completion",)
                    ],
                }
            else:
                last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
                row = {"prompt": messages[:last], "completion": messages[last:]}
        tools = data.get("tools")
        if tools is not None:
            row["tools"] = tools if isinstance(tools, str) else orjson.dumps(tools).decode()
        rows.append(row)
    if any("tools" in row for row in rows):
        for row in rows:
            row.setdefault("tools", None)
    return rows


def _trained_untruncated(row: Mapping[str, Any], tok: Any, loss: str, template: str | None) -> bool:
    """True when the example has a trained token before truncation (so truncation, not the
    data, left it with none)."""
    return not tokenize_example(dict(row), tok, max_length=None, loss=loss, chat_template=template).fully_masked


def _finding(code: str, message: str, source: str, rec: Any) -> Any:
    from ftdata import Finding, Severity

    return Finding(code, Severity.ERROR, message, source, line=rec.line, column=1, index=rec.index)


def _fully_masked_finding(example: TokenizedExample, max_length: int, source: str, rec: Any) -> Any:
    return _finding(
        FULLY_MASKED_RULE,
        f"the example has {example.length_before:,} tokens and truncation to max_length {max_length:,}"
        " leaves none of its trained tokens",
        source,
        rec,
    )


def _leak_findings(leaks: Any, eval_path: Path) -> list[Any]:
    """FT601 findings on the eval file from the exact leakage audit's pairs."""
    from ftdata import Finding, Severity

    out = []
    seen: set[int] = set()
    for leak in leaks.leaks:
        # One finding per eval record, as FT601 reports it, naming its first match.
        if leak.source_b != str(eval_path) or leak.index_b in seen:
            continue
        seen.add(leak.index_b)
        where = (
            f"{leak.source_a}:{leak.line_a}" if leak.line_a is not None else f"{leak.source_a} record {leak.index_a}"
        )
        out.append(
            Finding(
                LEAK_RULE,
                Severity.ERROR,
                f"the same prompt as the record at {where}",
                leak.source_b,
                line=leak.line_b,
                column=1,
                index=leak.index_b,
            )
        )
    return out


def _refusal(headline: str, findings: list[Any], *, allow_hint: bool = False) -> str:
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


def _percentile(ordered: list[int], p: float) -> int:
    """Nearest-rank percentile of sorted values (0 for none)."""
    if not ordered:
        return 0
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


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


__all__ = [
    "MANIFEST_SCHEMA",
    "TOKEN_RULES",
    "DataManifest",
    "Dropped",
    "GateError",
    "Prepared",
    "SplitStats",
    "example_kind",
    "prepare",
]
