"""FT6xx: the files of one dataset linted together (``train.jsonl`` beside ``eval.jsonl``):
leaks between them, and the field's guidance on held-out sets. Defaults come from
``[tool.ftdata.splits]``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from ftdata.engine.dataset import DatasetView
from ftdata.findings import Issue, RecordRef, Severity, plural
from ftdata.records import Record, field_label
from ftdata.registry import Scope, rule
from ftdata.requirements import EmbeddingModel, Module
from ftdata.similarity.keys import scope_key
from ftdata.similarity.text import scope_text


def _prompt_key(record: Record, *, scope: str = "prompt", strict: bool = False) -> int | None:
    return scope_key(record, scope, loose=not strict)


def _ref(view: DatasetView, index: int) -> RecordRef:
    return RecordRef(view.source, index, view.line_of(index))


def _describe(ref: RecordRef) -> str:
    return f"{ref.source}:{ref.line}" if ref.line is not None else f"{ref.source} record {ref.index}"


@rule("FT601", "leaked-record", scope=Scope.FILES, severity=Severity.ERROR, collect=_prompt_key)
def leaked_record(
    files: Sequence[DatasetView], *, scope: str = "prompt", strict: bool = False
) -> Iterator[tuple[int, Issue]]:
    """## What it does
    Checks that no record of a held-out file (eval, test) has the same normalised prompt
    (or `scope`) as a record of an earlier file of the dataset (train first): texts are
    compared after case-folding, removing punctuation and collapsing whitespace, unless
    `strict`. The prompt
    includes the `tools` offered and attached media; the answer and the conversation
    include tool calls with their arguments, tool results and preference fields. Files
    are taken as one dataset when they are linted together and named as splits of it.
    Records ftdata cannot read are never compared.

    ## Why is this bad?
    An eval question the model was trained on measures memory, not skill: the eval score
    goes up while the model gets no better.

    ## Fix
    Split with `ftdata split`, which keeps identical and near-identical prompts on one side.

    ## Options
    - `scope` (str, default "prompt"): compare the `prompt`, the `answer` or the whole
      `conversation` (default from `[tool.ftdata.splits] scope`).
    - `strict` (bool, default false): compare texts exactly (after Unicode NFC and
      whitespace collapsing only): case and punctuation variants are then no leak.
    """
    seen: dict[int, tuple[int, int]] = {}
    for position, view in enumerate(files):
        for index, key in view.collected:
            earlier = seen.get(key)
            if earlier is not None and earlier[0] != position:
                ref = _ref(files[earlier[0]], earlier[1])
                yield position, Issue(f"the same {scope} as the record at {_describe(ref)}", index=index, other=ref)
            elif earlier is None:
                seen[key] = (position, index)


def _texts(files: Sequence[DatasetView], scope: str) -> tuple[list[tuple[int, int]], list[str]]:
    owners, texts = [], []
    for position, view in enumerate(files):
        for rec in view.records():
            if rec.readable:
                text = scope_text(rec, scope, casefold=True)
                if text.strip():  # an empty text would match every other
                    owners.append((position, rec.index))
                    texts.append(text)
    return owners, texts


def _cross(
    files: Sequence[DatasetView],
    owners: list[tuple[int, int]],
    pairs: Iterable[tuple[int, int, float]],
    what: str,
) -> Iterator[tuple[int, Issue]]:
    """One issue per record of a later file that matches a record of an earlier one, at its
    most similar match (the earliest of equals): each leaked record is reported once."""
    best: dict[tuple[int, int], tuple[float, tuple[int, int]]] = {}
    for x, y, sim in pairs:
        earlier, later = sorted((owners[x], owners[y]))
        if earlier[0] == later[0]:
            continue
        found = best.get(later)
        if found is None or (-sim, earlier) < (-found[0], found[1]):
            best[later] = (sim, earlier)
    for (position, index), (sim, (pa, ia)) in sorted(best.items()):
        ref = _ref(files[pa], ia)
        yield position, Issue(f"{what} (similarity {sim:.2f}) of {_describe(ref)}", index=index, score=sim, other=ref)


@rule(
    "FT602",
    "near-duplicate-leak",
    scope=Scope.FILES,
    severity=Severity.ERROR,
    default=False,
    ranges={"threshold": (1e-9, 1.0)},
)
def near_duplicate_leak(
    files: Sequence[DatasetView], *, scope: str = "prompt", threshold: float = 0.8
) -> Iterator[tuple[int, Issue]]:
    """## What it does
    Like FT601, with near duplicates: MinHash-LSH over word 5-grams (characters are the
    words of scripts written without spaces, such as Chinese), each pair verified
    against the exact Jaccard similarity (at least `threshold`). Opt-in: select it.

    ## Why is this bad?
    A lightly edited copy of a training example in eval leaks the answer just as well.

    ## Options
    - `scope` (str, default "prompt"): `prompt`, `answer` or `conversation`.
    - `threshold` (float, default 0.8): the smallest Jaccard similarity reported.
    """
    from ftdata.similarity.minhash import near_duplicate_pairs

    owners, texts = _texts(files, scope)
    yield from _cross(files, owners, near_duplicate_pairs(texts, threshold=threshold), f"a near duplicate {scope}")


@rule(
    "FT603",
    "semantic-leak",
    scope=Scope.FILES,
    severity=Severity.ERROR,
    default=False,
    requires=(Module("sentence_transformers", extra="embed"), EmbeddingModel()),
    ranges={"threshold": (1e-9, 1.0)},
)
def semantic_leak(
    files: Sequence[DatasetView],
    *,
    scope: str = "prompt",
    threshold: float = 0.9,
    model: str = "sentence-transformers/all-MiniLM-L6-v2",
) -> Iterator[tuple[int, Issue]]:
    """## What it does
    Like FT601, with sentence embeddings: pairs whose cosine similarity reaches
    `threshold`. Needs the `embed` extra. Opt-in: select it.

    ## Why is this bad?
    A paraphrased eval question tests recall of a training answer.

    ## Options
    - `scope` (str, default "prompt"): `prompt`, `answer` or `conversation`.
    - `threshold` (float, default 0.9): the smallest cosine similarity reported.
    - `model` (str, default "sentence-transformers/all-MiniLM-L6-v2"): the embedding model:
      any sentence-transformers name or path, or `minilm-static` (fast, see FT405).
    """
    from ftdata.similarity.embeddings import encode, neighbour_pairs

    owners, texts = _texts(files, scope)
    # A cluster's engine gives its views an embedder (model-holding workers); else this process.
    embedder = next((e for e in (getattr(f, "embedder", None) for f in files) if e is not None), None)
    vectors = encode(texts, model=model, embedder=embedder)
    yield from _cross(files, owners, neighbour_pairs(vectors, threshold), f"a paraphrased {scope}")


_HELD_OUT = ("eval", "evaluation", "valid", "validation", "val", "dev")


def _split_name(view: DatasetView) -> str:
    from ftdata.splitnames import split_word

    return split_word(view.source)


@rule(
    "FT604", "eval-share", scope=Scope.FILES, severity=Severity.WARNING, ranges={"low": (0.0, 1.0), "high": (0.0, 1.0)}
)
def eval_share(files: Sequence[DatasetView], *, low: float = 0.1, high: float = 0.2) -> Iterator[tuple[int, Issue]]:
    """## What it does
    Checks that the evaluation file holds between `low` and `high` of the dataset's records
    (the files linted together as splits of one dataset).

    ## Why is this bad?
    Below 10% the evaluation is too small to measure a difference; above 20% training data
    is wasted. The usual advice is a 10-20% hold-out.

    ## Options
    - `low` (float, default 0.1): the smallest share not reported.
    - `high` (float, default 0.2): the largest share not reported.
    """
    total = sum(len(v) for v in files)
    for position, view in enumerate(files):
        if _split_name(view) in _HELD_OUT and total:
            share = len(view) / total
            if not low <= share <= high:
                yield (
                    position,
                    Issue(
                        f"this evaluation file holds {share:.1%} of the {total:,} records; {low:.0%}-{high:.0%} is the usual advice"
                    ),
                )


@rule("FT605", "small-eval-set", scope=Scope.FILES, severity=Severity.WARNING, ranges={"min_records": (0, 2**31)})
def small_eval_set(files: Sequence[DatasetView], *, min_records: int = 100) -> Iterator[tuple[int, Issue]]:
    """## What it does
    Checks that each held-out file (eval, test) has at least `min_records` records.

    ## Why is this bad?
    With a few dozen examples one answer moves the metric by several points: the
    evaluation cannot tell a better model from noise.

    ## Options
    - `min_records` (int, default 100): the smallest held-out file not reported.
    """
    for position, view in enumerate(files):
        if position > 0 and len(view) < min_records:
            yield position, Issue(f"this held-out file has {plural(len(view), 'record')}, fewer than {min_records}")


@rule(
    "FT606",
    "stratum-missing-from-eval",
    scope=Scope.FILES,
    severity=Severity.WARNING,
    default=False,
    collect=field_label,
)
def stratum_missing_from_eval(files: Sequence[DatasetView], *, field: str = "") -> Iterator[tuple[int, Issue]]:
    """## What it does
    Checks that every value of `field` (a label or category, such as `metadata.task`)
    present in the train file also appears in each held-out file. Opt-in: set `field`
    (default from `[tool.ftdata.splits] stratify-by`).

    ## Why is this bad?
    Whatever the model does on the missing category goes unmeasured.

    ## Options
    - `field` (str, default ""): the dotted path of the field.
    """
    if not field or len(files) < 2:
        return
    train = Counter(v for _, v in files[0].collected if v)
    for position, view in enumerate(files[1:], start=1):
        present = {v for _, v in view.collected}
        missing = sorted(set(train) - present)
        if missing:
            shown = ", ".join(repr(m) for m in missing[:10])
            yield position, Issue(f"{field} values in {files[0].source} but not in this file: {shown}")
