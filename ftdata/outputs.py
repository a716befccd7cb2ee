"""What every command that writes files promises: no output replaces an input or another
output, and the output's folder exists and is writable, all checked before any data is read.

``check_outputs`` is the one guard; commands and API functions call it first.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PathLike = str | os.PathLike[str]


class OutputError(ValueError):
    """An output path that would destroy an input or another output, or cannot be written."""


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
