"""FT4xx: duplicates, repeated prompts, conflicting answers and near duplicates."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from ftdata.engine.dataset import DatasetView
from ftdata.findings import Issue, Severity, plural
from ftdata.records import Record
from ftdata.registry import Scope, rule
from ftdata.requirements import EmbeddingModel, Module
from ftdata.similarity.clusters import Cluster, build_clusters, exact_clusters
from ftdata.similarity.text import (
    canonical_json,
    conversation_key,
    digest_bytes,
    normalise_text,
    prompt_key,
    scope_key,
    scope_text,
    turn_extras,
    turn_key,
    turn_keys,
)

WARNING = Severity.WARNING


def _duplicate_key(record: Record, *, casefold: bool = False, scope: str = "conversation") -> int | None:
    if scope == "conversation":
        return conversation_key(record, casefold=casefold)
    return scope_key(record, scope, casefold=casefold)


def _related(cluster: Cluster, member: int) -> tuple[int, ...]:
    return tuple(m for m in cluster.members if m != member)


def _cluster_issues(
    dataset: DatasetView, clusters: Sequence[Cluster], what: str, *, scored: bool = True
) -> Iterator[Issue]:
    """One issue per member left out; with ``scored``, ``Issue.score`` carries the exact
    similarity that joined it to its group (its best verified pair there), which the
    message rounds."""
    for cluster in clusters:
        rep = cluster.representative
        for member in cluster.dropped:
            sim = cluster.similarity_of(member)
            how = "" if sim >= 1.0 else f" (similarity {sim:.2f})"
            yield Issue(
                f"{what} of {dataset.where(rep)}{how}; {plural(len(cluster), 'copy', 'copies')} in this group",
                index=member,
                related=_related(cluster, member),
                score=sim if scored else None,
            )


@rule("FT401", "duplicate-record", scope=Scope.DATASET, severity=WARNING, collect=_duplicate_key)
def duplicate_record(
    dataset: DatasetView, *, casefold: bool = False, scope: str = "conversation", keep: str = "first"
) -> Iterator[Issue]:
    """## What it does
    Checks for records that train on exactly the same thing as another: every turn's
    role and text after Unicode NFC normalisation and whitespace collapsing (and
    case-folding, with `casefold`), and everything else that changes what is learned:
    tool calls (name and arguments, whatever their key order or spacing), tool results
    and the call they answer, the `tools` offered, per-turn `weight`, preference fields
    (`chosen`, `rejected`), labels and image or audio references. Call ids and metadata
    do not count. Each copy after the first is reported, with the other members of its
    group. Records ftdata cannot read are never compared.

    ## Why is this bad?
    Duplicates weigh some examples several times over, which the model memorises, and
    they leak between train and eval when the data is split.

    ## Fix
    `ftdata dedup IN -o OUT` keeps one record of each group.

    ## Options
    - `casefold` (bool, default false): treat text that differs only in case as equal.
    - `scope` (str, default "conversation"): compare the `prompt` (without the system
      prompt), the `answer` or the whole `conversation`.
    - `keep` (str, default "first"): the representative of a group, the record not
      reported: `first` or `longest` (the longest text of `scope`, roles included).
    """
    keys: list[int | None] = [None] * len(dataset)
    for index, key in dataset.collected:
        keys[index] = key
    clusters = exact_clusters(keys)
    if keep != "first" and clusters:
        # Lengths only matter inside a group: read just those records again.
        members = {m for c in clusters for m in c.members}
        lengths = [0] * len(dataset)
        for index, rec in dataset.fetch(members).items():
            lengths[index] = len(scope_text(rec, scope, casefold=casefold, roles=True))
        clusters = exact_clusters(keys, keep=keep, lengths=lengths)
    yield from _cluster_issues(dataset, clusters, "duplicate", scored=False)


def _first_reply(record: Record) -> str | None:
    """The first assistant reply as compared words: its text, and its tool calls (name
    and arguments) when it makes some."""
    for k, m in enumerate(record.messages):
        if m.role == "assistant":
            extras = turn_extras(record)[k]
            text = m.text or ""
            return f"{text} {extras.decode('utf-8', 'replace')}" if extras else text
    return None


def _prompt_answer(record: Record, *, min_prompt_words: int = 3) -> tuple[int, int] | None:
    """(prompt key, first reply key): the prompt is every turn before the first reply."""
    return record.memo(("prompt-answer", min_prompt_words), lambda: _compute_prompt_answer(record, min_prompt_words))


def _compute_prompt_answer(record: Record, min_prompt_words: int) -> tuple[int, int] | None:
    if not record.readable:
        return None
    messages = record.messages
    first = next((k for k, m in enumerate(messages) if m.role == "assistant"), None)
    if first is None or first == 0:
        return None
    turns = turn_key(record)
    if sum(turns[k].count(b" ") + 1 for k in range(first)) < min_prompt_words:  # "hi", "thanks": openers
        return None
    prompt = prompt_key(record, system=True)
    if prompt is None:
        return None
    labels = {k: record.data[k] for k in _LABELS if k in record.data}
    if labels:  # a desirable and an undesirable answer (KTO) to one prompt do not conflict
        prompt = digest_bytes(prompt.to_bytes(8, "big") + canonical_json(labels))
    # What the reply says and does; its loss weight is not part of what it answers.
    reply = turn_keys(record, drop=_NOT_ANSWER)[first].partition(b"\x1f")[2]
    return (prompt, digest_bytes(reply))


_NOT_ANSWER = frozenset({"weight"})
_LABELS = ("label", "kto_tag")


_WORD = re.compile(r"\w+")
_YES = frozenset({"yes", "yeah", "yep", "sure", "correct", "true", "right", "absolutely", "definitely"})
_NO = frozenset({"no", "nope", "false", "incorrect", "wrong", "never"})
_NEGATIONS = frozenset({"not", "no", "never", "cannot", "nothing", "none", "neither", "nor"})


#: Answers up to this many words are short: a yes/no, a negation or a number decides them.
SHORT_ANSWER_WORDS = 40


class _Answer:
    """What the comparison of two answers needs: words, leading yes/no, negation, numbers."""

    __slots__ = ("negated", "numbers", "polarity", "short", "words")

    def __init__(self, text: str) -> None:
        tokens = _WORD.findall(normalise_text(text, casefold=True).replace("n't", " not"))
        self.short = len(tokens) <= SHORT_ANSWER_WORDS
        self.words = frozenset(tokens)
        first = tokens[0] if tokens else ""
        self.polarity = "yes" if first in _YES else "no" if first in _NO else None
        self.negated = not self.words.isdisjoint(_NEGATIONS)
        self.numbers = frozenset(t for t in tokens if t.isdigit())


def _agreement(a: _Answer, b: _Answer) -> tuple[float, str]:
    """Word overlap of two answers and how it was judged; 0.0 when they visibly disagree
    (opposite yes/no, one negated and not the other, different numbers). Those signals
    only decide short answers: in a long one a changed number or a "not" is detail."""
    if a.polarity and b.polarity and a.polarity != b.polarity:
        return 0.0, "one says yes, the other no"
    if a.short and b.short:
        if a.negated != b.negated:
            return 0.0, "one is negated, the other not"
        if a.numbers and b.numbers and a.numbers != b.numbers:
            return 0.0, "they give different numbers"
    if not a.words and not b.words:
        return 1.0, "word overlap 1.00"
    overlap = len(a.words & b.words) / len(a.words | b.words)
    return overlap, f"word overlap {overlap:.2f}"


def _prompt_groups(
    dataset: DatasetView, near: float = 0.0
) -> Iterator[tuple[list[int], dict[int, list[int]], dict[int, _Answer]]]:
    """Groups of records sharing a prompt but not the same answer: (members, answer key ->
    members, answer key -> answer words). With ``near``, prompts whose MinHash-verified
    Jaccard similarity reaches it count as the same prompt."""
    by_prompt: dict[int, list[tuple[int, int]]] = {}
    for index, (prompt, answer) in dataset.collected:
        by_prompt.setdefault(prompt, []).append((index, answer))
    if near > 0:
        by_prompt = _merge_near_prompts(dataset, by_prompt, near)
    groups = [g for g in by_prompt.values() if len({a for _, a in g}) > 1]
    if not groups:
        return
    wanted = {g[0][0] for g in groups}
    for g in groups:
        seen = set()
        for index, answer in g:
            if answer not in seen:
                seen.add(answer)
                wanted.add(index)
    records = dataset.fetch(wanted)
    for g in groups:
        answers: dict[int, list[int]] = {}
        for index, answer in g:
            answers.setdefault(answer, []).append(index)
        words = {}
        for answer, members in answers.items():
            rec = records.get(members[0])
            words[answer] = _Answer((_first_reply(rec) or "") if rec is not None else "")
        yield [i for i, _ in g], answers, words


def _merge_near_prompts(
    dataset: DatasetView, by_prompt: dict[int, list[tuple[int, int]]], near: float
) -> dict[int, list[tuple[int, int]]]:
    """Merge the groups of prompts that are near duplicates of each other."""
    from ftdata.similarity.clusters import UnionFind
    from ftdata.similarity.minhash import near_duplicate_pairs

    keys = list(by_prompt)
    first = {by_prompt[k][0][0]: k for k in keys}
    texts: dict[int, str] = {}
    for rec in dataset.records():
        if rec.index in first:
            texts[rec.index] = scope_text(rec, "prompt", casefold=True)
    order = sorted(texts)
    uf = UnionFind(len(order))
    for i, j, _ in near_duplicate_pairs([texts[k] for k in order], threshold=near, n=3):
        uf.union(i, j)
    merged: dict[int, list[tuple[int, int]]] = {}
    for pos, index in enumerate(order):
        root = first[order[uf.find(pos)]]
        merged.setdefault(root, []).extend(by_prompt[first[index]])
    return merged


def _least_agreement(answers: dict[int, _Answer]) -> tuple[float, str]:
    found = list(answers.values())
    pairs = [_agreement(found[x], found[y]) for x in range(len(found)) for y in range(x + 1, len(found))]
    return min(pairs, default=(1.0, "word overlap 1.00"))


@rule(
    "FT402",
    "duplicate-prompt",
    scope=Scope.DATASET,
    severity=WARNING,
    collect=_prompt_answer,
    ranges={"paraphrase": (0.0, 1.0), "min_prompt_words": (0, 10_000)},
)
def duplicate_prompt(dataset: DatasetView, *, paraphrase: float = 0.5, min_prompt_words: int = 3) -> Iterator[Issue]:
    """## What it does
    Checks for the same prompt (every turn before the first assistant reply, with the
    `tools` offered and attached media; for Alpaca the instruction and input) answered
    several times with first replies that say much
    the same thing in other words (word overlap of at least `paraphrase`). Prompts
    answered differently are reported by FT403 instead; identical records by FT401.
    Conversations that share a prompt and its reply and go on differently are not
    reported, nor prompts shorter than `min_prompt_words` words ("hi", "thanks").

    ## Why is this bad?
    The prompt weighs several times in training for no new information, and the copies
    leak between train and eval when the data is split.

    ## Fix
    Keep the best answer, or vary the prompts.

    ## Options
    - `paraphrase` (float, default 0.5): the word-overlap (Jaccard) similarity from which
      two answers count as saying the same thing.
    - `min_prompt_words` (int, default 3): shorter prompts are not compared.
    """
    for members, _, words in _prompt_groups(dataset):
        low, how = _least_agreement(words)
        if low < paraphrase:
            continue
        first = members[0]
        yield Issue(
            f"the same prompt is answered {len(members)} times with similar answers (lowest {how})",
            index=first,
            related=tuple(members[1:]),
        )


@rule(
    "FT403",
    "conflicting-answers",
    scope=Scope.DATASET,
    severity=WARNING,
    collect=_prompt_answer,
    ranges={"paraphrase": (0.0, 1.0), "min_prompt_words": (0, 10_000), "near": (0.0, 1.0)},
)
def conflicting_answers(
    dataset: DatasetView, *, paraphrase: float = 0.5, min_prompt_words: int = 3, near: float = 0.0
) -> Iterator[Issue]:
    """## What it does
    Checks for the same prompt (every turn before the first assistant reply, with the
    `tools` offered and attached media, and the same label) answered differently; a
    first reply that calls tools is compared by its calls too. Two first replies conflict when their word overlap is below
    `paraphrase`, or when they visibly disagree however many words they share: one starts
    with yes and the other with no, or, for short answers (40 words or fewer), one is
    negated and the other not, or they give different numbers. Each group is reported at its first record, with the records of
    every distinct answer. Prompts shorter than `min_prompt_words` words are skipped.

    ## Why is this bad?
    The model is trained toward both answers at once: it learns to hedge, to pick one at
    random, or to average them into something wrong. Contradictions usually come from
    labelling disagreements or from data merged from several sources.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Can I export to PDF?"}, {"role": "assistant", "content": "Yes, from Share > Export."}]}
    {"messages": [{"role": "user", "content": "Can I export to PDF?"}, {"role": "assistant", "content": "No, that is not available."}]}
    ```

    ## Fix
    Decide which answer is right and keep that one. Creative tasks (write a poem) may
    have several good answers: ignore the rule for them.

    ## Options
    - `paraphrase` (float, default 0.5): the word-overlap (Jaccard) similarity from which
      two answers count as saying the same thing.
    - `min_prompt_words` (int, default 3): shorter prompts are not compared.
    - `near` (float, default 0.0): when above 0, prompts whose Jaccard similarity (word
      3-grams, MinHash-LSH, verified exactly) reaches it count as the same prompt, so
      rephrased questions with contradicting answers are found too (one more read).
    """
    for members, answers, words in _prompt_groups(dataset, near):
        low, how = _least_agreement(words)
        if low >= paraphrase:
            continue
        variants = "; ".join(
            f"answer {k + 1} in {plural(len(ix), 'record')} (first: {dataset.where(ix[0])})"
            for k, ix in enumerate(sorted(answers.values(), key=lambda ix: ix[0]))
        )
        yield Issue(
            f"{'the same prompt' if near <= 0 else 'the same or a near-identical prompt'} has "
            f"{len(answers)} conflicting answers ({how}): {variants}",
            index=members[0],
            related=tuple(members[1:]),
        )


def _scope_texts(dataset: DatasetView, scope: str) -> tuple[list[int], list[str]]:
    """The records to compare and their text of ``scope``: unreadable records, and those
    with no text in ``scope``, are left out (an empty text would match every other)."""
    indices, texts = [], []
    for rec in dataset.records():
        if rec.readable:
            text = scope_text(rec, scope, casefold=True)
            if text.strip():
                indices.append(rec.index)
                texts.append(text)
    return indices, texts


@rule(
    "FT404",
    "near-duplicate",
    scope=Scope.DATASET,
    severity=WARNING,
    default=False,
    ranges={"threshold": (1e-9, 1.0), "num_perm": (1, 8192), "bands": (0, 8192), "n": (1, 64), "seed": (0, 2**63 - 1)},
)
def near_duplicate(
    dataset: DatasetView,
    *,
    scope: str = "conversation",
    threshold: float = 0.8,
    num_perm: int = 128,
    bands: int = 0,
    shingle: str = "word",
    n: int = 5,
    seed: int = 0,
    keep: str = "first",
) -> Iterator[Issue]:
    """## What it does
    Finds records whose text is nearly the same as another's with MinHash and LSH
    banding: Jaccard similarity of word (or character) n-gram shingles of at least
    `threshold`. Every candidate pair is checked against the exact Jaccard similarity, so
    nothing below the threshold is reported; pairs are joined into groups, and each record
    after the group's representative is reported with its similarity. Opt-in: select it.

    ## Why is this bad?
    Near duplicates (templated generations, the same answer with a changed name) weigh a
    few patterns many times, reduce diversity, and leak between train and eval splits
    where exact matching does not see them.

    ## Fix
    `ftdata dedup IN -o OUT --method minhash` keeps one record per group.

    ## Options
    - `scope` (str, default "conversation"): compare the `prompt`, the `answer` or the
      whole `conversation`.
    - `threshold` (float, default 0.8): the smallest Jaccard similarity reported.
    - `num_perm` (int, default 128): MinHash permutations.
    - `bands` (int, default 0): LSH bands; 0 picks them so that a pair at the threshold is
      found with probability 0.97 or more.
    - `shingle` (str, default "word"): `word` or `char` n-grams.
    - `n` (int, default 5): the n of the n-grams.
    - `seed` (int, default 0): the seed of the hash functions.
    - `keep` (str, default "first"): the representative of a group: `first` or `longest`.
    """
    from ftdata.similarity.minhash import near_duplicate_pairs

    indices, texts = _scope_texts(dataset, scope)
    pairs = near_duplicate_pairs(
        texts,
        threshold=threshold,
        num_perm=num_perm,
        bands=bands or None,
        shingle=shingle,
        n=n,
        seed=seed,
        progress=dataset.progress,
    )
    lengths = [len(t) for t in texts]
    clusters = build_clusters(len(texts), pairs, keep=keep, lengths=lengths)
    yield from _cluster_issues(dataset, _reindex(clusters, indices), "near duplicate")


def _reindex(clusters: Sequence[Cluster], indices: Sequence[int]) -> list[Cluster]:
    """Clusters over positions in a list of texts, renumbered as record indices."""
    return [Cluster(indices[c.representative], tuple(indices[m] for m in c.members), c.similarity) for c in clusters]


@rule(
    "FT405",
    "semantic-duplicate",
    scope=Scope.DATASET,
    severity=WARNING,
    default=False,
    requires=(Module("sentence_transformers", extra="embed"), EmbeddingModel()),
    ranges={"threshold": (1e-9, 1.0), "batch_size": (1, 65_536)},
)
def semantic_duplicate(
    dataset: DatasetView,
    *,
    scope: str = "conversation",
    threshold: float = 0.95,
    model: str = "sentence-transformers/all-MiniLM-L6-v2",
    batch_size: int = 64,
    keep: str = "first",
) -> Iterator[Issue]:
    """## What it does
    Finds records that mean nearly the same thing with sentence embeddings: cosine
    similarity of at least `threshold`. Needs the `embed` extra; the model is any
    sentence-transformers name or local path. Opt-in: select it.

    ## Why is this bad?
    Paraphrased duplicates escape exact and MinHash matching but still over-weigh one
    example and leak between train and eval.

    ## Fix
    `ftdata dedup IN -o OUT --method semantic` keeps one record per group.

    ## Options
    - `scope` (str, default "conversation"): `prompt`, `answer` or `conversation`.
    - `threshold` (float, default 0.95): the smallest cosine similarity reported.
    - `model` (str, default "sentence-transformers/all-MiniLM-L6-v2"): the embedding model.
    - `batch_size` (int, default 64): texts encoded at once.
    - `keep` (str, default "first"): the representative of a group: `first` or `longest`.
    """
    from ftdata.similarity.embeddings import encode, neighbour_pairs

    indices, texts = _scope_texts(dataset, scope)
    vectors = encode(texts, model=model, batch_size=batch_size, progress=dataset.progress)
    pairs = neighbour_pairs(vectors, threshold, progress=dataset.progress)
    clusters = build_clusters(len(texts), pairs, keep=keep, lengths=[len(t) for t in texts])
    yield from _cluster_issues(dataset, _reindex(clusters, indices), "semantic duplicate")
