"""The guard: no output replaces an input or another output; an input read twice has not
changed (see :mod:`ftdata.outputs`)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike[str]


class OutputError(ValueError):
    """An output path that would destroy an input or another output, or cannot be written."""


class InputChangedError(OSError, ValueError):
    """An input that changed while a command read it more than once (an I/O error to lint)."""


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(inputs: Iterable[PathLike], outputs: Iterable[PathLike | None]) -> None:
    """Raise :class:`OutputError` when an output resolves to an input (symlinks and hard
    links included) or to another output, or when its folder is missing or read-only."""
    ins = [Path(p) for p in inputs]
    outs = [Path(p) for p in outputs if p is not None]
    for k, out in enumerate(outs):
        for src in ins:
            if _same(out, src):
                raise OutputError(f"the output {out} is the input {src}; refusing to overwrite it")
        for other in outs[:k]:
            if _same(out, other):
                raise OutputError(f"two outputs are the same file: {other} and {out}")
        if out.is_dir():
            raise OutputError(f"the output {out} is a folder")
        folder = out.parent if str(out.parent) else Path(".")
        if not folder.is_dir():
            raise OutputError(f"the folder of the output {out} does not exist: {folder}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"the folder of the output {out} is not writable: {folder}")


def check_folder_outputs(inputs: Iterable[PathLike], folder: PathLike, names: Iterable[str]) -> None:
    """:func:`check_outputs` for files ``names`` in ``folder``, which may not exist yet
    (it will be created): then its nearest existing ancestor must be a writable folder."""
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise OutputError(f"the output folder {root} is a file")
    if root.is_dir():
        check_outputs(inputs, [root / name for name in names])
        return
    ancestor = root.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create the output folder {root}: {ancestor} is not a writable folder")


#: The layout an output's extension (lower case) names; other names name none.
NAMED_LAYOUTS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
#: How an input holds its records (:func:`ftdata.io.container_of`), in words.
_HELD = {"jsonl": "JSON Lines", "json-array": "one JSON array", "json-stream": "a JSON document"}
_NAMED = {"jsonl": "JSON Lines", "json": "one JSON array"}


def layout_named(path: PathLike) -> str | None:
    """``"jsonl"`` or ``"json"``: the layout the name of ``path`` promises; None for a name
    that promises none (any other extension)."""
    return NAMED_LAYOUTS.get(Path(path).suffix.lower())


def check_layout(output: PathLike, container: str, *, source: PathLike) -> None:
    """Raise :class:`OutputError` when the name of ``output`` promises another layout
    than the one its records are written in: the layout of ``source``, whose records are
    copied byte for byte and whose ``container`` (:func:`ftdata.io.container_of`) is
    kept, JSON Lines as JSON Lines and any JSON document as one JSON array. Readers trust
    the name (a ``.jsonl`` file is read a line at a time), so a ``.jsonl`` holding an
    array, or a ``.json`` holding lines, reads as one broken record, or not at all."""
    written = "jsonl" if container == "jsonl" else "json"
    named = layout_named(output)
    if named is None or named == written:
        return
    out = Path(output)
    suffix = ".jsonl" if written == "jsonl" else ".json"
    raise OutputError(
        f"the input {source} is {_HELD.get(container, container)}; its records are copied byte for byte, "
        f"so {out} would hold {_NAMED[written]}, not the {_NAMED[named]} its name promises: "
        f"name the output {out.with_suffix(suffix)}"
    )


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What identifies the bytes of an input: size, modification time, inode (and device)
    and the sha256 of its content."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    sha256: str

    @classmethod
    def of(cls, path: PathLike) -> Fingerprint:
        """Fingerprint ``path`` now (one streaming read); an input that changes while it is
        hashed raises :class:`InputChangedError`."""
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
            h = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
            after = os.fstat(f.fileno())
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            raise InputChangedError(f"the input {path} changed while it was read")
        return cls(str(path), after.st_size, after.st_mtime_ns, after.st_ino, after.st_dev, h.hexdigest())

    def check(self, path: PathLike | None = None) -> None:
        """Raise :class:`InputChangedError` unless ``path`` (default: the fingerprinted
        path) still holds the same bytes under the same identity."""
        where = self.path if path is None else path
        try:
            now = Fingerprint.of(where)
        except FileNotFoundError:
            raise InputChangedError(f"the input {where} was removed while it was read; nothing was written") from None
        if (now.size, now.mtime_ns, now.inode, now.device, now.sha256) != (
            self.size,
            self.mtime_ns,
            self.inode,
            self.device,
            self.sha256,
        ):
            raise InputChangedError(
                f"the input {where} changed between two reads (it was replaced or written to); nothing was written"
            )

    def to_dict(self, records: int | None = None) -> dict[str, Any]:
        """The manifest's entry for this input."""
        out: dict[str, Any] = {"path": self.path, "size": self.size, "sha256": self.sha256}
        if records is not None:
            out["records"] = records
        return out
