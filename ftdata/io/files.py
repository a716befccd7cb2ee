"""What a reader says about a file as a whole, and which files hold data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ftdata import problems
from ftdata.problems import Problem as Kind

BOM = b"\xef\xbb\xbf"
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")
DATA_SUFFIXES = (*JSONL_SUFFIXES, ".json")

#: Every problem kind the readers emit; each is the name of a registered rule.
PROBLEM_KINDS = problems.READER


@dataclass(slots=True)
class FileProblem:
    """A problem of the file rather than of one record (a blank line, CRLF endings)."""

    kind: Kind
    line: int
    column: int
    message: str


@dataclass(slots=True)
class ReadStats:
    """Filled in by a reader as it goes."""

    lines: int = 0
    records: int = 0
    crlf_lines: int = 0
    first_crlf_line: int = 0
    missing_final_newline: bool = False
    container: str = "jsonl"


def iter_data_files(paths: list[Path]) -> Iterator[Path]:
    """Files to lint: the given files, and data files found under given directories."""
    for p in paths:
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                # LLaMA-Factory's dataset_info.json describes the data beside it; it is not data.
                if (
                    child.is_file()
                    and child.suffix.lower() in DATA_SUFFIXES
                    and child.name != "dataset_info.json"
                    and not _hidden(child, p)
                ):
                    yield child
        else:
            yield p


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
