"""LLaMA-Factory's ``dataset_info.json``: the format and mapping it declares for a file.

LLaMA-Factory names each dataset's file (``file_name``, relative to the folder of
dataset_info.json), its ``formatting`` (``alpaca`` or ``sharegpt``), the file's own column
names (``columns``) and, for sharegpt, the keys and role values of its turns (``tags``).
:func:`spec_for` turns the entry of one data file into a format and a field mapping, so
ftdata reads the file as LLaMA-Factory will. :func:`naming` finds the dataset_info.json
that names a file: its folder is LLaMA-Factory's ``dataset_dir``, where relative media
paths are looked up too (see ftdata.requirements.Source).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from ftdata.formats.fields import FieldsError, FormatSpec, compose, parse_spec

FILE_NAME = "dataset_info.json"

#: Alpaca columns (LLaMA-Factory's names) and the keys ftdata's alpaca reader uses.
ALPACA_COLUMNS = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": "history",
    "system": "system",
}
#: Columns both formats may name, read under the same key.
COMMON_COLUMNS = ("system", "tools", "images", "videos", "audios", "chosen", "rejected", "kto_tag")
#: ShareGPT role tags and the role value ftdata's sharegpt reader knows them by.
ROLE_TAGS = {
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}


class DatasetInfoError(ValueError):
    """A dataset_info.json that cannot be read or holds no usable entry."""


@lru_cache(maxsize=64)
def _load(path: str, mtime_ns: int) -> dict[str, Any]:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise DatasetInfoError(f"{path}: cannot read it: {e}") from None
    if type(data) is not dict:
        raise DatasetInfoError(f"{path}: expected an object of datasets")
    return data


def entry_for(info: Path, data_file: Path) -> dict[str, Any] | None:
    """The entry of ``info`` whose ``file_name`` is ``data_file`` (or a folder holding it)."""
    try:
        table = _load(str(info), info.stat().st_mtime_ns)
    except OSError as e:
        raise DatasetInfoError(f"{info}: cannot read it: {e}") from None
    target = data_file.resolve()
    for entry in table.values():
        if type(entry) is not dict or type(entry.get("file_name")) is not str:
            continue
        named = (info.parent / entry["file_name"]).resolve()
        if named == target or named in target.parents:
            return entry
    return None


def fields_of(entry: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The format and ``{source: target}`` mapping a dataset_info entry declares."""
    formatting = entry.get("formatting", "alpaca")
    raw_columns, raw_tags = entry.get("columns"), entry.get("tags")
    columns: dict[str, Any] = raw_columns if type(raw_columns) is dict else {}
    tags: dict[str, Any] = raw_tags if type(raw_tags) is dict else {}
    fields: dict[str, str] = {}

    def column(name: str, target: str) -> None:
        source = columns.get(name)
        if type(source) is str and source and source != target:
            fields[source] = target

    if formatting == "sharegpt":
        role_tag = tags.get("role_tag", "from")
        content_tag = tags.get("content_tag", "value")
        openai = role_tag == "role" and content_tag == "content"
        turns = "messages" if openai else "conversations"
        source = columns.get("messages", "conversations")
        if type(source) is str and source:
            if source != turns:
                fields[source] = turns
            if not openai:
                for tag, key in ((role_tag, "from"), (content_tag, "value")):
                    if type(tag) is str and tag and tag != key:
                        fields[f"{source}.*.{tag}"] = key
                for name, value in ROLE_TAGS.items():
                    tag = tags.get(name)
                    if type(tag) is str and tag and tag != value:
                        fields[f"role:{tag}"] = value
        for name in COMMON_COLUMNS:
            column(name, name)
        fmt = None  # detection tells a pair, a KTO file and a plain conversation apart
    else:
        for name, target in ALPACA_COLUMNS.items():
            column(name, target)
        for name in COMMON_COLUMNS:
            column(name, name)
        fmt = None
    return fmt, fields


def naming(data_file: Path, dataset_info: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The dataset_info.json that names ``data_file``, with its entry: ``dataset_info``
    when given, else the one next to the file, else the one in its parent folder (the
    first whose entry names the file). None when none does. DatasetInfoError when the
    one given cannot be read; a broken one found by looking is passed over."""
    candidates = [dataset_info] if dataset_info else [data_file.parent / FILE_NAME, data_file.parent.parent / FILE_NAME]
    for info in candidates:
        if not info.is_file():
            if dataset_info is not None:
                raise DatasetInfoError(f"{info}: no such file")
            continue
        try:
            entry = entry_for(info, data_file)
        except DatasetInfoError:
            if dataset_info is not None:
                raise
            continue
        if entry is not None:
            return info, entry
    return None


def spec_for(data_file: Path, spec: str | None, *, dataset_info: Path | None = None) -> str | None:
    """The format spec to read ``data_file`` with: ``spec`` plus what the dataset_info.json
    given (or the one next to the file, else in its parent folder) declares for it. The
    spec's own mapping wins over dataset_info's for the same source; its format too.
    DatasetInfoError when a dataset_info.json named explicitly cannot be read."""
    parsed = parse_spec(spec)
    explicit = dataset_info or (Path(parsed.dataset_info) if parsed.dataset_info else None)
    found = naming(data_file, explicit)
    if found is None:
        return FormatSpec(parsed.format, parsed.fields).text()
    info, entry = found
    fmt, fields = fields_of(entry)
    own = parsed.fields.as_dict() if parsed.fields else {}
    try:
        return compose(FormatSpec(parsed.format or fmt).text(), {**fields, **own})
    except FieldsError as e:
        raise DatasetInfoError(f"{info}: {e}") from None
