"""What a file's name says about the split it holds, and which files are splits of one
dataset. Pure functions of paths; rules and the front door both use them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

_SPLIT = re.compile(r"(?:^|[-_.])(train|training|eval|evaluation|valid|validation|val|dev|test|testing)$", re.I)


def split_word(path: str | os.PathLike[str]) -> str:
    """The split a file's name says it holds (``"train"``, ``"eval"``...), or ``""``."""
    m = _SPLIT.search(Path(path).stem)
    return m.group(1).lower() if m else ""


def dataset_groups(paths: Iterable[Path]) -> list[list[Path]]:
    """Files that look like splits of one dataset: same folder, same name but for a split
    word (``train.jsonl``/``eval.jsonl``, ``support_train.jsonl``/``support_test.jsonl``).
    Train comes first in each group."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for path in paths:
        m = _SPLIT.search(path.stem)
        if m:
            groups.setdefault((path.parent, path.stem[: m.start()].lower()), []).append(path)
    order = {"train": 0, "training": 0}
    return [sorted(g, key=lambda p: (order.get(split_word(p), 1), p.name)) for g in groups.values() if len(g) > 1]
