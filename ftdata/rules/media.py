"""FT12x: multimodal references, the ``images``/``videos``/``audios`` lists of a record
against the placeholders and typed content parts that say where each one goes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any

from ftdata.engine.dataset import DatasetView
from ftdata.findings import Issue, Severity, plural
from ftdata.records import Message, Record
from ftdata.registry import Scope, rule
from ftdata.requirements import LocalFiles

#: (list key, typed content part, placeholder): LLaMA-Factory's ``images`` beside
#: ``<image>`` in the text, TRL's ``images`` beside ``{"type": "image"}`` parts.
KINDS = (("images", "image", "<image>"), ("videos", "video", "<video>"), ("audios", "audio", "<audio>"))

#: Keys with which a content part carries its own media (Qwen's ``{"type": "image",
#: "image": "a.jpg"}``, OpenAI's ``image_url``): such a part takes nothing from the list.
_INLINE = frozenset(
    {"image", "video", "audio", "url", "path", "data", "image_url", "video_url", "audio_url", "input_audio"}
)


def media_list(data: dict[str, Any], key: str) -> list[Any] | None:
    """The references of ``key`` as trainers read them (LLaMA-Factory wraps a single
    value in a list and reads null as none); None when the record has no such key or
    holds something that is no reference list (an object, a number)."""
    if key not in data:
        return None
    value = data[key]
    if type(value) is list:
        return value
    if value is None:
        return []
    if type(value) is str:
        return [value]
    return None


def _parts(m: Message, part: str) -> int:
    """Typed content parts of kind ``part`` in one turn that take their media from the list."""
    data = m.data
    if type(data) is not dict:
        return 0
    content = data.get("content")
    if type(content) is not list:
        return 0
    return sum(1 for p in content if type(p) is dict and p.get("type") == part and not (p.keys() & _INLINE))


def _where(placeholder: str, part: str, placeholders: int, parts: int) -> str:
    shown = []
    if placeholders or not parts:
        shown.append(plural(placeholders, f"{placeholder} placeholder") + " in the text")
    if parts:
        shown.append(plural(parts, f'{{"type": "{part}"}} part'))
    return " and ".join(shown)


@rule("FT122", "media-count-mismatch", severity=Severity.ERROR)
def media_count_mismatch(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that a record's `images`, `videos` and `audios` lists have one entry for each
    place that uses one: an `<image>`, `<video>` or `<audio>` placeholder in the text
    (LLaMA-Factory) or a typed content part `{"type": "image"}` without a source of its
    own (TRL's vision datasets). A part that names its own file or URL (`"image": ...`,
    `image_url`) takes nothing from the list. The prompt and each reply of a preference
    pair are counted together, as the trainer renders them. A placeholder in a record
    with no list is not checked: the text may be quoting the tag. Only the counts are
    checked here: the files are not opened, and URLs are never fetched.

    ## Why is this bad?
    The processor pairs the n-th placeholder with the n-th file. LLaMA-Factory's
    multimodal plugins raise "The number of images does not match the number of <image>
    tokens" when the counts differ either way, mid-run; TRL cannot fill an image part
    that has no image. Where the check is switched off, a placeholder gets the wrong
    file or none, and the model is trained on text that does not describe what it sees.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "<image><image>Which is larger?"}, {"role": "assistant", "content": "The left one."}], "images": ["a.jpg"]}
    ```

    ## Fix
    Add the missing placeholder or file, or drop the extra one.
    """
    if not may_use_media(record):
        return None
    return media_count_issues(record)


_LIST_KEYS = frozenset(key for key, _, _ in KINDS)


def may_use_media(record: Record) -> bool:
    """False when :func:`media_count_issues` has nothing to report for certain: the record
    has no media list key and no turn with a list of content parts, so no count is
    checked (a placeholder alone, without a list, is not)."""
    if not _LIST_KEYS.isdisjoint(record.data):
        return True
    for messages in (record.messages, record.rejected):
        for m in messages:
            data = m.data
            if type(data) is dict and type(data.get("content")) is list:
                return True
    return False


def media_count_issues(record: Record) -> list[Issue] | None:
    """What FT122 reports on ``record``, without the pre-filter (the reference)."""
    data = record.data
    prompt = record.messages[: len(record.messages) - len(record.reply)] if record.reply else record.messages
    sides = [("", record.messages)]
    if record.rejected:
        sides.append(("the rejected conversation has ", [*prompt, *record.rejected]))
    out = None
    for key, part, placeholder in KINDS:
        listed = media_list(data, key)
        for side, messages in sides:
            placeholders = sum((m.text or "").count(placeholder) for m in messages)
            parts = sum(_parts(m, part) for m in messages)
            if listed is None and not parts:
                continue
            entries = len(listed) if listed is not None else 0
            if placeholders + parts == entries:
                continue
            out = out or []
            have = f"{plural(entries, 'entry', 'entries')} in {key!r}" if listed is not None else f"no {key!r} list"
            message = f"{side}{_where(placeholder, part, placeholders, parts)} but {have}"
            out.append(Issue(message, path=(key,) if key in data else ()))
    return out


def local_references(record: Record) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(path, reference) for every media reference of the record that names a local file
    (not a URL, not inline data): what a check of files on disk would look up."""
    data = record.data
    if type(data) is not dict:
        return
    for key, _, _ in KINDS:
        value = data.get(key)
        items = value if type(value) is list else [value] if type(value) is str else []
        for i, ref in enumerate(items):
            if type(ref) is str and ref and not _remote(ref):
                yield ((key, i) if type(value) is list else (key,)), _local(ref)
            elif type(ref) is list:
                # A video given as its frames (LLaMA-Factory's processed videos): each
                # frame is a file of its own.
                for j, frame in enumerate(ref):
                    if type(frame) is str and frame and not _remote(frame):
                        yield (key, i, j), _local(frame)
    for m in (*record.messages, *record.rejected):
        content = m.data.get("content") if type(m.data) is dict else None
        if type(content) is not list:
            continue
        for k, part in enumerate(content):
            if type(part) is dict:
                for keys, ref in _part_sources(part):
                    if ref and not _remote(ref):
                        yield (*m.path, "content", k, *keys), _local(ref)


#: Keys with which a typed content part names its own file (Qwen's ``{"type": "image",
#: "image": "a.jpg"}``, ``path``, ``url``; OpenAI's ``image_url`` as a string or
#: ``{"url": ...}``); ``data`` and ``input_audio`` hold the bytes themselves.
_SOURCES = ("image", "video", "audio", "path", "url")
_URL_PARTS = ("image_url", "video_url", "audio_url")


def _part_sources(part: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str]]:
    for key in _SOURCES:
        if type(part.get(key)) is str:
            yield (key,), part[key]
    for key in _URL_PARTS:
        value = part.get(key)
        if type(value) is str:
            yield (key,), value
        elif type(value) is dict and type(value.get("url")) is str:
            yield (key, "url"), value["url"]


def _local(ref: str) -> str:
    """A ``file://`` URI as the path it names."""
    return ref[7:] if ref[:7].lower() == "file://" else ref


def _local_references(record: Record) -> tuple[tuple[tuple[str | int, ...], str], ...] | None:
    """FT123's collector: each local reference as it is written; where it is looked up is
    decided for the whole file (see :class:`~ftdata.requirements.LocalFiles`)."""
    return tuple(local_references(record)) or None


@rule(
    "FT123",
    "media-file-missing",
    scope=Scope.DATASET,
    severity=Severity.ERROR,
    collect=_local_references,
    requires=(LocalFiles(folder="media_dir"),),
)
def media_file_missing(
    dataset: DatasetView, *, found: Mapping[str, bool] | None = None, dataset_dir: str = "", media_dir: str = ""
) -> Iterator[Issue]:
    """## What it does
    Checks that every local file named in a record's `images`, `videos` and `audios`
    lists (a video may be a list of frame files), or by a typed content part of its own
    (`{"type": "image", "image": "a.jpg"}`, `path`, `url`, `image_url`; a `file://` URI
    too), exists. A relative path is looked up as LLaMA-Factory looks it up: in its
    `media_dir`, which defaults to its `dataset_dir`, the folder of `dataset_info.json`.
    Here: when the file is named in a `dataset_info.json` that ftdata reads for it (the
    one beside the file, else the one in its parent folder, or the one given with
    `--dataset-info` or `dataset-info` in the configuration), relative paths are looked
    up in that file's folder, also for a data file in a subfolder of it
    (`"file_name": "sub/x.json"`); otherwise in the dataset file's folder; and in the
    folder option `media_dir` names, when it is set. An absolute path is looked up as it
    is. URLs (`https://`, `s3://`, `hf://`...) and `data:` URIs are not checked, and
    nothing is opened or fetched; each distinct path is looked up once. Records linted
    in memory have no folder, so the rule does not run on them and the run says so in a
    note.

    ## Why is this bad?
    The trainer opens each file when it builds the batch that holds the record:
    LLaMA-Factory's multimodal plugins open the path and raise `FileNotFoundError` there,
    mid-run; a loader that skips such records instead trains on fewer examples than the
    file holds. A path written relative to another folder (the one the data was prepared
    in) is the usual cause.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "<image>What is shown?"}, {"role": "assistant", "content": "A cat."}], "images": ["mllm_demo_data/9.jpg"]}
    ```
    with no `mllm_demo_data/9.jpg` next to the dataset file (or next to the
    `dataset_info.json` that names it).

    ## Fix
    Copy the file to where the finding says it was looked up, correct the path, or, when
    the trainer is given a `media_dir`, give FT123 the same folder.

    ## Options
    - `media_dir` (str, default `""`: the folder of the `dataset_info.json` naming the
      file, else the dataset file's folder): the folder relative paths are looked up in,
      as LLaMA-Factory's `media_dir` argument; set it to the same folder
      (`--option FT123.media_dir=/data/media`, or `media-dir` under
      `[tool.ftdata.rules.FT123]`, where `./x` is relative to the configuration file).
      Any other relative folder is taken from that default folder, as relative paths
      are. A folder that does not exist, or a file, is an error of the run (exit 2).
    - `found`, `dataset_dir` (filled in by ftdata): whether each path names a file, and
      the folder of the `dataset_info.json` naming the file when it is not the file's
      own, looked up by the engine; not settings (setting one is an error).
    """
    found = found or {}
    inside = f" in {dataset_dir!r}" if dataset_dir else " in the dataset file's folder"
    if PurePath(media_dir).is_absolute():
        inside = ""
    for index, refs in dataset.collected:
        for path, ref in refs:
            if found.get(ref, True):
                continue
            if PurePath(ref).is_absolute():
                where = ""
            elif media_dir:
                where = f" (relative to media_dir {media_dir!r}{inside})"
            elif dataset_dir:
                where = f" (relative to {dataset_dir!r}, the folder of the dataset_info.json that names the file)"
            else:
                where = " (relative to the dataset file's folder)"
            yield Issue(f"no file at {_short(ref)!r}{where}", index=index, path=path)


def _short(ref: str) -> str:
    return ref if len(ref) <= 200 else ref[:199] + "\u2026"


def _remote(ref: str) -> bool:
    head = ref[:12].lower()
    return head.startswith(("http://", "https://", "s3://", "gs://", "hf://", "data:", "ftp://"))
