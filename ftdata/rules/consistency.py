"""FT2xx: properties of the dataset as a whole."""

from __future__ import annotations

from collections.abc import Iterator

from ftdata.dataset import DatasetView
from ftdata.findings import Issue, Severity, plural
from ftdata.registry import Scope, rule


@rule("FT200", "dataset-too-small", scope=Scope.DATASET, severity=Severity.WARNING)
def dataset_too_small(dataset: DatasetView, *, min_records: int = 100) -> Iterator[Issue]:
    """## What it does
    Checks that a file holds at least `min_records` records.

    ## Why is this bad?
    Fine-tuning on a few dozen examples rarely changes behaviour reliably and overfits
    quickly; OpenAI requires at least 10 and recommends 50 to 100 as a start, and most
    guides suggest a few hundred to a few thousand well-chosen examples.

    ## Options
    - `min_records` (int, default 100): the smallest dataset that is not reported.
    """
    if len(dataset) < min_records:
        yield Issue(f"dataset has {plural(len(dataset), 'record')}; at least {min_records:,} are recommended")
