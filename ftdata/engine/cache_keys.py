"""The keys of the lint cache: everything that decides a file's findings, as bytes.

A key covers the file's content (blake2b of its bytes), ftdata itself (its version and
the stamps of its installed files, so an edited checkout never reuses stale findings),
the Python that wrote the entry, the installed third-party rule plugins, the plan's
settings, and the stamps of what the selected rules load from disk: tokenizer and model
folders (local, or in the Hugging Face cache), schema files, and the dataset_info.json
files that give a data file its format.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from ftdata import registry
from ftdata._version import __version__
from ftdata.engine.plan import Plan, settings_key
from ftdata.formats.dataset_info import FILE_NAME as DATASET_INFO

#: Settings that do not change what one file's lint finds: applied after it (baseline,
#: fail-on), where its shards run (engine, address), where the cache is, where they came from.
NOT_IN_KEY = ("baseline", "fail_on", "engine", "address", "cache_dir", "path")
#: Files of one resource folder stamped at most (a model folder holds a few dozen).
MAX_STAMPED_FILES = 4096
_CHUNK = 1 << 20


def file_digest(path: Path) -> bytes:
    """blake2b of the bytes of ``path``, read in chunks (constant memory)."""
    h = hashlib.blake2b(digest_size=32)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            h.update(view[:n])
    return h.digest()


def record_digest(raw: bytes) -> bytes:
    """The key of one record's bytes in the per-record store."""
    return hashlib.blake2b(raw, digest_size=16).digest()


@cache
def code_stamp() -> bytes:
    """ftdata's version, the stamps of its installed files, the Python version and the
    third-party rule plugins (their distributions and module files): once per process."""
    h = hashlib.blake2b(f"{__version__}\0{sys.version}\0{marshal.version}".encode())
    package = Path(__file__).resolve().parent.parent
    h.update(_tree_stamp(package, skip=("__pycache__",)))
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="ftdata.rules"), key=lambda e: (e.name, e.value)):
        dist = getattr(ep, "dist", None)
        h.update(f"{ep.name}={ep.value}@{getattr(dist, 'name', '')}=={getattr(dist, 'version', '')}\0".encode())
    modules = {r.func.__module__ for r in registry.all_rules()}
    for name in sorted(m for m in modules if m.split(".")[0] != "ftdata"):
        where = getattr(sys.modules.get(name), "__file__", None)
        h.update(name.encode() + _path_stamp(where) if where else name.encode())
    return h.digest()


_PLAN_KEYS: dict[int, tuple[Plan, bytes]] = {}


def plan_key(plan: Plan) -> bytes:
    """What in ``plan`` decides the findings: settings, every selected rule's options,
    and the stamps of the resources they name. Memoised per plan object (plans are
    compiled once per distinct settings)."""
    known = _PLAN_KEYS.get(id(plan))
    if known is not None and known[0] is plan:
        return known[1]
    h = hashlib.blake2b(code_stamp())
    h.update(settings_key(plan.settings, NOT_IN_KEY))
    h.update(repr(plan.reader_options).encode())
    for bound in plan.selected:
        options = {**bound.rule.options, **bound.options}
        h.update(bound.code.encode() + orjson.dumps(options, option=orjson.OPT_SORT_KEYS, default=repr))
        for value in _strings(options.values()):
            h.update(resource_stamp(value))
    if len(_PLAN_KEYS) > 64:
        _PLAN_KEYS.clear()
    key = h.digest()
    _PLAN_KEYS[id(plan)] = (plan, key)
    return key


def entry_key(plan: Plan, source: str, digest: bytes, path: Path) -> bytes:
    """The key of one file's entry: the plan's key, the name findings carry, the
    content, and the dataset_info.json files that may give the file its format."""
    h = hashlib.blake2b(plan_key(plan), digest_size=32)
    h.update(source.encode("utf-8", "surrogateescape") + b"\0" + digest)
    explicit = plan.settings.dataset_info
    for info in (
        *([Path(explicit)] if explicit else []),
        path.parent / DATASET_INFO,
        path.parent.parent / DATASET_INFO,
    ):
        h.update(_path_stamp(str(info)))
    return h.digest()


def resource_stamp(value: str) -> bytes:
    """The stamp of what an option value names on disk: a file or folder (sizes and
    modification times of its files), or a model id's folder in the Hugging Face cache.
    Empty for a value that names nothing there."""
    if not value or len(value) > 4096 or "\n" in value or value.lstrip().startswith(("{", "[")):
        return b""
    try:
        local = Path(value).expanduser()
        if local.is_file():
            return _path_stamp(str(local))
        if local.is_dir():
            return _tree_stamp(local)
        if value.count("/") == 1 and not value.startswith((".", "/", "~")):
            folder = _hub_cache() / f"models--{value.replace('/', '--')}"
            if folder.is_dir():
                return _tree_stamp(folder)
    except (OSError, ValueError):
        return b"?"
    return b""


def _hub_cache() -> Path:
    hub = os.environ.get("HF_HUB_CACHE")
    if hub:
        return Path(hub).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "huggingface" / "hub"


def _strings(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, list | tuple):
            yield from (v for v in value if isinstance(v, str))


def _path_stamp(path: str) -> bytes:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return f"{path}\0-\0".encode("utf-8", "surrogateescape")
    return f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode("utf-8", "surrogateescape")


def _tree_stamp(root: Path, skip: tuple[str, ...] = ()) -> bytes:
    """Names, sizes and modification times of the files under ``root`` (links followed,
    as a loader follows them: the Hugging Face cache links snapshots to blobs)."""
    h = hashlib.blake2b()
    count = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted(files):
            full = os.path.join(folder, name)
            h.update(_path_stamp(full))
            count += 1
            if count >= MAX_STAMPED_FILES:
                return h.digest()
    return h.digest()
