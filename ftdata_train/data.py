"""The data gate: nothing trains on data ftdata would refuse, and nothing is dropped silently.

:func:`prepare` runs the gate's checks (:mod:`ftdata_train.gate`: ftdata's lint with the
model's tokenizer, exact and near-duplicate leakage from train to eval) and refuses with
:class:`GateError` when they fail. Without an eval file it holds out ``data.eval_size`` of train
with ftdata's leak-free split, grouped by prompt and by near-duplicate prompt, and says so; the
split stays in memory (a dry run writes nothing) until :meth:`Prepared.write_split` writes it,
which :func:`ftdata_train.train` does under ``output_dir/data/`` once the gate has passed.

It then tokenises every example as TRL's ``SFTTrainer`` will (:mod:`ftdata_train.labels`)
and counts, per split, records, tokens, trained tokens, truncated examples and examples
truncation leaves with no trained token: those refuse the run (``fully_masked = "refuse"``)
or are removed and listed in the manifest (``"drop"``), where TRL would drop them without a
word. Examples with no trained token even untruncated (a conversation that ends before any
assistant turn, which ftdata reports as a warning) would make TRL raise: they are always
removed, counted and listed.

The ``datasets.Dataset``\\ s hold only the columns TRL reads: ``messages`` (or ``prompt`` and
``completion``) and ``tools`` (a JSON string, as TRL accepts). Messages are stored with the
``Json`` feature, one JSON object per message: Arrow would otherwise give every message the
union of all messages' keys (``tool_calls: None`` on a plain reply, ``None`` arguments of other
tools), which a template testing ``'tool_calls' in message`` renders wrongly or refuses. Other
fields (``metadata``...) are left out: TRL never uses them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftdata_train.config import ConfigError, TrainConfig
from ftdata_train.gate import (
    FULLY_MASKED_RULE,
    LEAK_RULE,
    TEMPLATE_RULE,
    TOKEN_RULES,
    GateError,
    check,
    error_finding,
    gate_error,
)
from ftdata_train.inputs import (
    data_path,
    empty_eval,
    hold_out,
    refuse_eval_as_train,
    resolve_tokenizer,
    source_of,
)
from ftdata_train.labels import (
    LossError,
    TokenizedExample,
    example_kind,
    resolve_loss,
    sft_loss_options,
    tokenize_example,
    training_chat_template,
)
from ftdata_train.manifest import MANIFEST_SCHEMA, DataManifest, Dropped, SplitStats, percentile
from ftdata_train.rows import dataset_of, record_kind, trl_rows
from ftdata_train.screening import (
    MULTIMODAL_RULE,
    TOOLS_NOT_RENDERED_RULE,
    WEIGHT_ZERO_RULE,
    row_tools_unrendered,
)

PathLike = str | os.PathLike[str]


@dataclass
class Prepared:
    """What the gate let through. ``train``/``eval`` are ``datasets.Dataset``\\ s in TRL's
    shape; ``kind`` is ``messages``, ``prompt_completion`` (plain text),
    ``chat_prompt_completion`` or ``text`` (language modelling, every token trained, no chat
    template); ``loss`` the resolved loss (assistant, completion, all);
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
    #: The held-out split (an ``ftdata.split`` result) while it is only in memory.
    split_result: Any = field(default=None, repr=False)

    def write_split(self, directory: PathLike) -> dict[str, Path]:
        """Write the held-out split (``train.jsonl``, ``eval.jsonl``, ``rejected.jsonl`` and
        ftdata's split manifest) into ``directory`` and record the files, with their sha256s, in
        :attr:`manifest`. Nothing to write (an empty mapping) when an eval file was given.
        Raises ``ftdata.outputs.OutputError`` when the folder cannot take the files."""
        if self.split_result is None or self.manifest.split is None:
            return {}
        from ftdata.outputs import Fingerprint

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        result = self.split_result
        paths = result.write(folder)
        files = {}
        for name in ("train", "eval"):
            fp = Fingerprint.of(paths[name])
            files[name] = {
                "path": str(paths[name]),
                "size": fp.size,
                "sha256": fp.sha256,
                "records": result.counts[name],
            }
        self.manifest.split.update(directory=str(folder), files=files)
        # write_split audits the new files for exact prompt leaks (FT601's key).
        self.manifest.split["leakage"]["pairs"][LEAK_RULE] = len(result.leaks)
        self.notes.append(f"the held-out split was written to {folder}")
        return paths

    @property
    def sft_options(self) -> dict[str, bool]:
        """``assistant_only_loss`` and ``completion_only_loss`` for ``SFTConfig``: with them
        TRL trains on exactly the tokens the gate counted as trained."""
        return sft_loss_options(self.kind, self.loss)


def prepare(
    train: PathLike | None = None,
    eval: PathLike | None = None,
    *,
    config: TrainConfig,
    tokenizer: Any = None,
) -> Prepared:
    """Run the data gate on ``train`` (and ``eval``; both default to ``config.data``) and
    return the datasets TRL takes with their statistics and manifest. Writes nothing: a
    held-out split is written by :meth:`Prepared.write_split`.

    ``tokenizer`` is the model's loaded tokenizer (default: loaded from ``config.model``,
    locally). Raises :class:`GateError` when the data fails (its ``findings`` are the refusing
    ones) and :class:`~ftdata_train.config.ConfigError` when no data is named, a file cannot be
    read, or the loss cannot be computed with this chat template.
    """
    train_path = data_path(train if train is not None else config.data.train, "train")
    if train_path is None:
        raise ConfigError("no training data: set data.train in the config (or pass train=)")
    eval_given = eval if eval is not None else config.data.eval
    eval_path = data_path(eval_given, "eval")
    if eval_path is not None:
        refuse_eval_as_train(train_path, eval_path)
    tok, tokenizer_name = resolve_tokenizer(tokenizer, config.model)
    checked = check(train_path, eval_path, config=config, tokenizer=tokenizer_name)
    inputs, reports, allowed, below = checked.inputs, checked.reports, checked.allowed, checked.below
    allow = set(config.data.allow)

    notes: list[str] = []
    split_info: dict[str, Any] | None = None
    split_result = None
    if eval_path is None:
        source_rows, split_info, split_result = hold_out(inputs[0], config, notes)
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
    kinds = Counter(record_kind(rec, loss_wanted) for rows in source_rows.values() for rec in rows)
    if len(kinds) > 1:
        counts = ", ".join(f"{n:,} {name}" for name, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        raise GateError(
            f"the records mix row shapes ({counts}); TRL trains on one shape at a time:"
            " split the data by format (ftdata's FT101 reports the mixed formats)"
        )
    kind = next(iter(kinds)) if kinds else "messages"
    if kind == "text":
        notes.append(
            "the data is language-modelling text: TRL trains every token of it, EOS appended, with no chat"
            " template (its dataset_text_field 'text')"
        )
    if allowed.get(WEIGHT_ZERO_RULE):
        notes.append(
            f"{allowed[WEIGHT_ZERO_RULE]} records have assistant replies with weight 0 (allowed by data.allow):"
            " TRL ignores per-message weights, so those replies ARE trained"
        )
    if allowed.get(MULTIMODAL_RULE):
        notes.append(
            f"{allowed[MULTIMODAL_RULE]} records reference images, video or audio (allowed by data.allow):"
            " only their text is trained; the media are not passed to the model"
        )
    try:
        loss = resolve_loss(kind, loss_wanted)
        template = training_chat_template(tok, loss)
    except LossError as exc:
        raise ConfigError(f"loss = {loss_wanted!r}: {exc}") from None
    if template is not None:
        notes.append("the chat template has no {% generation %} markers: TRL trains with its patched copy of it")

    datasets_out: dict[str, Any] = {}
    stats: dict[str, SplitStats] = {}
    lines: dict[str, list[int | None]] = {}
    fully_masked_findings: list[Any] = []
    template_findings: list[Any] = []
    tool_findings: list[Any] = []
    for split in ("train", "eval"):
        recs = source_rows.get(split, [])
        source = str(source_of(split, inputs))
        table = dataset_of(trl_rows(recs, kind))
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
                finding = error_finding(TEMPLATE_RULE, f"the chat template fails on this record: {exc}", source, rec)
                if TEMPLATE_RULE in allow:
                    dropped.append(Dropped(split, source, rec.line, rec.index, "chat template error"))
                    allowed[TEMPLATE_RULE] += 1
                else:
                    template_findings.append(finding)
                continue
            missing = row_tools_unrendered(table[row], tok, template)
            if missing is not None:
                if TOOLS_NOT_RENDERED_RULE in allow:
                    allowed[TOOLS_NOT_RENDERED_RULE] += 1
                else:
                    tool_findings.append(
                        error_finding(
                            TOOLS_NOT_RENDERED_RULE,
                            f"{missing} by the chat template: the reply would be trained without them",
                            source,
                            rec,
                        )
                    )
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
            length_p50=percentile(ordered, 50),
            length_p95=percentile(ordered, 95),
            length_p99=percentile(ordered, 99),
            length_max=ordered[-1] if ordered else 0,
        )
        if no_target:
            notes.append(
                f"{len(no_target)} {split} examples have no token to train on with loss = {loss!r} (TRL would stop"
                " on them): they were left out; the manifest lists their lines"
            )
    if template_findings:
        raise gate_error("the chat template fails on some records", template_findings)
    if tool_findings:
        raise gate_error(
            f"the chat template of {config.model} does not render tool calls; {len(tool_findings)} rows would"
            " train empty replies (use the model's tool-calling template, or allow FTT102)",
            tool_findings,
            allow_hint=True,
        )
    if allowed.get(TOOLS_NOT_RENDERED_RULE):
        notes.append(
            f"the chat template does not render the tool calls or tools of {allowed[TOOLS_NOT_RENDERED_RULE]} rows"
            " (allowed by data.allow): those replies are trained without them"
        )
    if fully_masked_findings and config.data.fully_masked == "refuse":
        raise gate_error(
            f"truncation to max_length {config.max_length} leaves some examples with no trained token"
            " (raise max_length, shorten them, or set data.fully_masked = 'drop')",
            fully_masked_findings,
        )
    if fully_masked_findings:
        notes.append(
            f"{len(fully_masked_findings)} examples truncation left with no trained token were dropped"
            " (data.fully_masked = 'drop'); the manifest lists their lines"
        )
    if not len(datasets_out["train"]):
        raise GateError(
            f"no training example is left after the gate: all {len(source_rows.get('train', [])):,} were"
            " dropped (the manifest's reasons: unreadable, no trained token, fully masked)"
        )
    if not len(datasets_out["eval"]):
        raise GateError(empty_eval(inputs[0], eval_path, config, len(source_rows.get("eval", []))))
    for item in inputs:
        item.fingerprint.check(item.path)

    manifest = DataManifest(
        inputs=[{"split": item.split, **item.fingerprint.to_dict(item.total)} for item in inputs],
        records={split: len(ds) for split, ds in datasets_out.items()},
        dropped=sorted(dropped, key=lambda d: (d.source, d.index)),
        rules=checked.rules,
        allowed=dict(sorted(allowed.items())),
        warnings=dict(sorted(below.items())),
        tokenizer=tokenizer_name,
        max_length=config.max_length,
        kind=kind,
        loss=loss,
        fully_masked=config.data.fully_masked,
        split=split_info,
        leakage=checked.leakage or (split_info or {}).get("leakage", {}),
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
        split_result=split_result,
    )


def _trained_untruncated(row: Mapping[str, Any], tok: Any, loss: str, template: str | None) -> bool:
    """True when the example has a trained token before truncation (so truncation, not the
    data, left it with none)."""
    return not tokenize_example(dict(row), tok, max_length=None, loss=loss, chat_template=template).fully_masked


def _fully_masked_finding(example: TokenizedExample, max_length: int, source: str, rec: Any) -> Any:
    return error_finding(
        FULLY_MASKED_RULE,
        f"the example has {example.length_before:,} tokens and truncation to max_length {max_length:,}"
        " leaves none of its trained tokens",
        source,
        rec,
    )


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
