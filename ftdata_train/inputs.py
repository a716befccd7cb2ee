"""The inputs of the data gate before any check: the files named in ``[data]``, the tokenizer,
an eval file that is the training file, and the held-out eval made when none is given."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ftdata_train.config import ConfigError, TrainConfig
from ftdata_train.gate import LEAK_RULE, NEAR_LEAK_RULE, GateError, Input

PathLike = str | os.PathLike[str]
#: How the held-out split groups records, so that no eval prompt is a training prompt or a near
#: copy of one (FT601's and FT602's questions, answered by construction).
HOLD_OUT_GROUPING = ("prompt", "near-duplicates")


def data_path(value: PathLike | None, what: str) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if not path.exists():
        raise ConfigError(f"data.{what}: {path} does not exist")
    if path.is_dir():
        raise ConfigError(f"data.{what}: {path} is a folder, not a data file")
    if not path.is_file():
        raise ConfigError(f"data.{what}: {path} is not a file")
    return path


def refuse_eval_as_train(train: Path, eval: Path) -> None:
    """An eval file that is the training file (the same path, or the same bytes) measures
    nothing: refuse it in plain words rather than as one leak per record."""
    from ftdata.outputs import Fingerprint

    try:
        same = train.samefile(eval)
        why = "the same file"
        if not same and train.stat().st_size == eval.stat().st_size:
            same = Fingerprint.of(train).sha256 == Fingerprint.of(eval).sha256
            why = "a copy of it (the same sha256)"
    except OSError as exc:
        raise ConfigError(f"data.eval: cannot read {eval} ({exc.strerror or exc})") from None
    if same:
        raise GateError(
            f"data.eval is the training file: {eval} is {why} as data.train {train}; give a separate eval"
            " file, or leave data.eval unset to hold out data.eval_size of train"
        )


def empty_eval(train: Input, eval_path: Path | None, config: TrainConfig, rows: int) -> str:
    """Why no eval example is left, and what would give one."""
    if eval_path is not None:
        return (
            f"no eval example is left after the gate: the {rows:,} readable records of {eval_path} were all"
            " dropped (the manifest lists why); give a larger eval set"
        )
    import math

    size = config.data.eval_size
    minimum = math.ceil(1 / size)
    return (
        f"the held-out eval is empty: {train.path} is small ({len(train.records):,} readable records), and"
        f" holding out data.eval_size = {size:g} needs at least {minimum:,} records (distinct prompts) to keep one;"
        " give an eval file (data.eval), raise data.eval_size, or add records"
    )


def resolve_tokenizer(tokenizer: Any, model: str) -> tuple[Any, str]:
    """The tokenizer and the name ftdata's token rules load it by."""
    if tokenizer is not None:
        return tokenizer, str(getattr(tokenizer, "name_or_path", "") or model)
    from ftdata.tokens import load_tokenizer

    try:
        return load_tokenizer(model), model
    except ValueError as exc:
        raise ConfigError(f"model {model!r}: {exc}") from None


def hold_out(item: Input, config: TrainConfig, notes: list[str]) -> tuple[dict[str, list[Any]], dict[str, Any], Any]:
    """Split train with ftdata's split, grouped by prompt and near-duplicate prompt (so no eval
    prompt is a training prompt or a near copy of one), in memory."""
    import ftdata

    size = config.data.eval_size
    result = ftdata.split(
        item.path,
        sizes={"train": 1 - size, "eval": size},
        seed=config.seed,
        group_by=list(HOLD_OUT_GROUPING),
        format=config.data.input_format,
    )
    rows: dict[str, list[Any]] = {"train": [], "eval": []}
    for rec in item.records:
        where = result.assignment[rec.index] if rec.index < len(result.assignment) else None
        if where in rows:
            rows[where].append(rec)
    notes.append(
        f"no eval file was given: ftdata's leak-free split (grouped by prompt and near-duplicate prompt,"
        f" seed {config.seed}) held out {result.counts['eval']} of {len(result.assignment)} records ({size:.0%})"
        " as eval"
    )
    notes.extend(f"split: {w}" for w in result.warnings)
    info = {
        "made_by": "ftdata.split",
        "eval_size": size,
        "seed": config.seed,
        "group_by": list(HOLD_OUT_GROUPING),
        "directory": None,
        "files": {},
        "rejected": len(result.rejected),
        "leakage": {
            "rules": [LEAK_RULE, NEAR_LEAK_RULE],
            "checked": "by construction: records sharing a prompt or a near-duplicate prompt stay in one split",
            "pairs": {LEAK_RULE: 0, NEAR_LEAK_RULE: 0},
        },
    }
    return rows, info, result


def source_of(split: str, inputs: list[Input]) -> Path:
    for item in inputs:
        if item.split == split:
            return item.path
    return inputs[0].path  # a held-out eval comes from the train file
