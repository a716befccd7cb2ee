"""FT2xx: properties of the dataset as a whole."""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from ftdata.engine.dataset import DatasetView
from ftdata.findings import Issue, Severity, plural
from ftdata.formats import TEXT
from ftdata.jsonstrict import syntax_error
from ftdata.records import Record, field_label
from ftdata.registry import Scope, rule
from ftdata.requirements import JsonSchema, SchemaFile


@rule("FT200", "dataset-too-small", scope=Scope.DATASET, severity=Severity.WARNING, ranges={"min_records": (0, 2**31)})
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


_INTERNED: dict[str, str] = {}


def intern(text: str) -> str:
    """One shared copy of a repeated string (system prompts repeat in every record)."""
    if len(_INTERNED) > 200_000:
        _INTERNED.clear()
    return _INTERNED.setdefault(text, text)


def _system_prompt(record: Record) -> str | None:
    """The record's system prompt ("" when it has none); None when it is not readable
    (unreadable records have no say in what the dataset's prompts are)."""
    if not record.readable or record.format == TEXT:
        return None  # language-modelling text has no turns, so no system prompt to compare
    messages = record.messages
    first = messages[0]
    if first.role == "system":
        return intern(first.text or "")
    return ""


_DIFF_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def diff_excerpt(expected: str, found: str, context: int = 24) -> str:
    """Where ``found`` first differs from ``expected`` (compared word by word), with a
    little context on each side: ``…for Acme ['Notes' → 'notes']. Answer…``."""
    a, b = _DIFF_TOKEN.findall(expected), _DIFF_TOKEN.findall(found)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start = sum(len(t) for t in a[:i1])
        end = start + sum(len(t) for t in a[i1:i2])
        before = expected[max(0, start - context) : start]
        after = expected[end : end + context]
        lead = "…" if start > context else ""
        tail = "…" if end + context < len(expected) else ""
        return f"{lead}{before}[{''.join(a[i1:i2])!r} → {''.join(b[j1:j2])!r}]{after}{tail}"
    return ""


def _shorten(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@rule(
    "FT201",
    "missing-system-prompt",
    scope=Scope.DATASET,
    severity=Severity.WARNING,
    collect=_system_prompt,
    ranges={"min_share": (0.0, 1.0)},
)
def missing_system_prompt(dataset: DatasetView, *, min_share: float = 0.5) -> Iterator[Issue]:
    """## What it does
    Checks for records without a system prompt when most records (at least `min_share`)
    have one. Reported once, at the first such record, with the others as related records.
    Language-modelling `text` records have no turns and are left out.

    ## Why is this bad?
    The model learns two behaviours: one with the system prompt and one without, and at
    inference it gets only one of them. Usually a conversion step dropped the prompt.

    ## Options
    - `min_share` (float, default 0.5): the share of records with a system prompt from
      which the others are reported.
    """
    without = [index for index, text in dataset.collected if text == ""]
    total = len(dataset.collected)
    if not without or total == 0 or (total - len(without)) / total < min_share:
        return
    yield Issue(
        f"{plural(len(without), 'record')} of {total:,} {'has' if len(without) == 1 else 'have'} no system prompt "
        "while the others do",
        index=without[0],
        path=(),
        related=tuple(without[1:]),
    )


def _distinct_prompts(dataset: DatasetView) -> tuple[Counter[str], dict[str, list[int]]]:
    counts: Counter[str] = Counter()
    members: dict[str, list[int]] = {}
    for index, text in dataset.collected:
        if text:
            counts[text] += 1
            members.setdefault(text, []).append(index)
    return counts, members


#: Template tokens: a value with internal separators (a date, a time, an id, an e-mail
#: address) is one token, so that one slot holds it whole.
_SLOT_TOKEN = re.compile(r"\s+|\w+(?:[-:/.@+]\w+)*|[^\w\s]")
#: A position of the dominant prompt is a slot when at least this many distinct values
#: fill it (the dominant's own included): one typo is a variant, three names are a slot.
MIN_SLOT_VALUES = 3
#: The most tokens a slot value may have (a name, a date, an id; not a sentence).
MAX_SLOT_TOKENS = 6
SLOT = "{…}"


def template_fills(dominant: str, prompts: Sequence[str]) -> tuple[str, list[str]] | None:
    """When several of ``prompts`` are ``dominant`` with the same few short spans filled
    differently (session ids, dates, names, numbers), the template (``dominant`` with
    those spans shown as ``{…}``) and the prompts that fill it; None when there is no
    such template. A span is a slot when at least ``MIN_SLOT_VALUES`` distinct values
    fill it; a prompt that differs anywhere else is not a fill."""
    a = _SLOT_TOKEN.findall(dominant)
    diffs_of: dict[str, list[tuple[int, int, str]]] = {}
    for text in prompts:
        b = _SLOT_TOKEN.findall(text)
        diffs = []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            value = "".join(b[j1:j2])
            if "\n" in value or "\n" in "".join(a[i1:i2]) or max(i2 - i1, j2 - j1) > 2 * MAX_SLOT_TOKENS:
                break
            diffs.append((i1, i2, value.strip()))
        else:
            if diffs:
                diffs_of[text] = diffs
    values: dict[tuple[int, int], set[str]] = {}
    for diffs in diffs_of.values():
        for i1, i2, value in diffs:
            values.setdefault((i1, i2), {"".join(a[i1:i2]).strip()}).add(value)
    slots = {span for span, found in values.items() if len(found) >= MIN_SLOT_VALUES}
    members = [t for t, diffs in diffs_of.items() if all((i1, i2) in slots for i1, i2, _ in diffs)]
    if len(members) < MIN_SLOT_VALUES - 1:
        return None
    used = {(i1, i2) for t in members for i1, i2, _ in diffs_of[t]}
    starts: dict[int, int] = {}
    for i1, i2 in used:
        starts[i1] = max(starts.get(i1, i1), i2)
    out: list[str] = []
    k = 0
    while k <= len(a):
        if k in starts:
            if not out or out[-1] != SLOT:  # adjacent slots read as one
                out.append(SLOT)
            if starts[k] > k:
                k = starts[k]
                continue
        if k < len(a):
            out.append(a[k])
        k += 1
    return "".join(out), members


@rule(
    "FT202",
    "system-prompt-variant",
    scope=Scope.DATASET,
    severity=Severity.WARNING,
    collect=_system_prompt,
    ranges={"similarity": (0.0, 1.0)},
)
def system_prompt_variant(dataset: DatasetView, *, similarity: float = 0.8) -> Iterator[Issue]:
    """## What it does
    Checks for system prompts that are almost, but not exactly, the most common one: a
    typo, an older version, trailing whitespace. Each variant is reported once, at its
    first record, with a diff excerpt against the dominant prompt and its other records.
    Prompts far from the dominant one (another persona) are not variants. Prompts that
    are one template with a few short slots filled differently (session ids, dates,
    names, numbers: at least three distinct values in a slot) are reported once, as the
    template with its slots shown as `{…}` and the number of variants, instead of one
    finding per variant.

    ## Why is this bad?
    The variants are noise the model has to learn around, and at inference the prompt you
    use matches only part of the training data.

    ## Example
    `You are the support assistant for Acme Notes.` in 800 records and
    `You are the support assistant for Acme notes. ` in 12.

    ## Options
    - `similarity` (float, default 0.8): how similar (difflib ratio) a prompt must be to
      the dominant one to count as a variant of it.
    """
    counts, members = _distinct_prompts(dataset)
    if len(counts) < 2:
        return
    dominant, dominant_count = counts.most_common(1)[0]
    close: list[tuple[str, int, float]] = []
    for text, count in counts.most_common(5000)[1:]:
        matcher = difflib.SequenceMatcher(None, dominant, text, autojunk=False)
        if matcher.real_quick_ratio() < similarity or matcher.quick_ratio() < similarity:
            continue
        ratio = matcher.ratio()
        if ratio >= similarity:
            close.append((text, count, ratio))
    found = template_fills(dominant, [t for t, _, _ in close]) if len(close) >= MIN_SLOT_VALUES - 1 else None
    filled: set[str] = set()
    if found is not None:
        template, fills = found
        filled = set(fills)
        indices = sorted(i for t in (dominant, *fills) for i in members[t])
        slots = template.count(SLOT)
        yield Issue(
            f"{plural(len(fills) + 1, 'system-prompt variant')} in {plural(len(indices), 'record')} are one "
            f"template with {plural(slots, 'slot')} filled in: {_shorten(template, 160)!r}",
            index=indices[0],
            path=("messages", 0, "content") if dataset.formats[indices[0]] == "messages" else (),
            related=tuple(indices[1:]),
        )
    for text, count, ratio in close:
        if text in filled:
            continue
        indices = members[text]
        yield Issue(
            f"system prompt is a variant of the one in {plural(dominant_count, 'record')} "
            f"(similarity {ratio:.2f}; {plural(count, 'record')} {'uses' if count == 1 else 'use'} it): "
            f"{diff_excerpt(dominant, text)}",
            index=indices[0],
            path=("messages", 0, "content") if dataset.formats[indices[0]] == "messages" else (),
            related=tuple(indices[1:]),
        )


@rule("FT204", "system-prompt-mismatch", scope=Scope.FILES, severity=Severity.WARNING, collect=_system_prompt)
def system_prompt_mismatch(files: Sequence[DatasetView]) -> Iterator[tuple[int, Issue]]:
    """## What it does
    Compares the files of one dataset linted together (`train.jsonl` beside `eval.jsonl`
    or `test.jsonl`, `x_train.jsonl` beside `x_eval.jsonl`): the most common system prompt
    of each file must be the one of the train file.

    ## Why is this bad?
    Evaluating with another system prompt than the one trained on measures something else
    than the fine-tune: scores drop or rise for reasons that have nothing to do with the
    model.

    ## Fix
    Regenerate the evaluation split from the same source, or fix the prompt in one place.
    """
    dominant = []
    for view in files:
        counts, members = _distinct_prompts(view)
        text = counts.most_common(1)[0][0] if counts else ""
        dominant.append((text, members.get(text, [None])[0]))
    reference = dominant[0][0]
    for position, (text, first) in enumerate(dominant[1:], start=1):
        if text == reference:
            continue
        if not reference or not text:
            what = "has no system prompt" if not text else "has a system prompt"
            yield position, Issue(f"this file {what}, unlike {files[0].source}", index=first)
            continue
        ratio = difflib.SequenceMatcher(None, reference, text, autojunk=False).ratio()
        yield (
            position,
            Issue(
                f"the most common system prompt differs from the one of {files[0].source} "
                f"(similarity {ratio:.2f}): {diff_excerpt(reference, text)}",
                index=first,
            ),
        )


@rule(
    "FT203",
    "many-system-prompts",
    scope=Scope.DATASET,
    severity=Severity.WARNING,
    collect=_system_prompt,
    ranges={"max_distinct": (0, 2**31), "context_chars": (0, 10_000_000)},
)
def many_system_prompts(dataset: DatasetView, *, max_distinct: int = 16, context_chars: int = 400) -> Iterator[Issue]:
    """## What it does
    Checks that a dataset uses at most `max_distinct` distinct system prompts, and names
    the most common ones when it uses more. A dataset that carries each record's own
    context in its system prompt (a story or a document per record, as CoQA-style reading
    sets do: most records with a prompt of their own, of `context_chars` characters or
    more) is a layout, not a drift, and is not reported.

    ## Why is this bad?
    Fine-tuning works best with one consistent system prompt (or a few personas: Orca-style
    mixes use up to 16 on purpose). More distinct prompts than that usually mean
    something varying was templated into it (a date, a user name) and the model cannot
    learn what the prompt means; FT202 names the template when there is one.

    ## Options
    - `max_distinct` (int, default 16): the most distinct system prompts not reported.
    - `context_chars` (int, default 400): the median length from which system prompts
      that are mostly one per record are read as per-record context.
    """
    counts, members = _distinct_prompts(dataset)
    if len(counts) <= max_distinct:
        return
    with_prompt = sum(counts.values())
    lengths = sorted(len(text) for text in counts)
    if len(counts) * 2 >= with_prompt and lengths[len(lengths) // 2] >= context_chars:
        return  # each record brings its own passage: per-record context, not a drifting prompt
    top = "; ".join(f"{_shorten(text)!r} ({n:,})" for text, n in counts.most_common(3))
    first = min(members[text][0] for text in counts)
    yield Issue(f"{len(counts):,} distinct system prompts; the most common: {top}", index=first)


def _shape(record: Record) -> str | None:
    """The structure of the record's last assistant reply (JSON keys, table, headings...);
    None for language-modelling text and for an undesirable KTO completion (not a reply
    the model is taught to give)."""
    if not record.readable or record.format == TEXT or record.label is False:
        return None
    last = None
    for m in reversed(record.messages):
        if m.role == "assistant":
            last = m.text
            break
    if last is None:
        return None
    return intern(output_shape(last))


def output_shape(text: str) -> str:
    """``json-object:key1,key2``, ``json-array``, ``json-invalid``, ``table``,
    ``headings:a|b``, ``code`` or ``text``."""
    t = text.strip()
    if t[:1] in ("{", "[") and t[-1:] in ("}", "]"):
        try:
            value = orjson.loads(t)
        except orjson.JSONDecodeError:
            return "json-invalid"
        if type(value) is dict:
            return "json-object:" + ",".join(sorted(value))[:300]
        return "json-array" if type(value) is list else "json"
    if t.startswith("```") and t.endswith("```"):
        return "code"
    if "\n|" in t or t.startswith("|"):
        rows = [line for line in t.split("\n") if line.lstrip().startswith("|")]
        if len(rows) >= 2:
            return "table"
    if "#" in t:
        headings = [line.strip("# ").lower() for line in t.split("\n") if line.startswith("#")]
        if headings:
            return "headings:" + "|".join(headings[:12])[:300]
    return "text"


def _describe(shape: str) -> str:
    kind, _, detail = shape.partition(":")
    if kind == "json-object":
        keys = ", ".join(repr(k) for k in detail.split(",") if k) or "no keys"
        return f"a JSON object with keys {keys}"
    if kind == "headings":
        return "markdown with the headings " + ", ".join(repr(h) for h in detail.split("|"))
    return {
        "json-array": "a JSON array",
        "json": "a JSON value",
        "json-invalid": "JSON that does not parse",
        "table": "a markdown table",
        "code": "a code block",
        "text": "plain text",
    }.get(kind, kind)


@rule(
    "FT205",
    "inconsistent-output-format",
    scope=Scope.DATASET,
    severity=Severity.WARNING,
    collect=_shape,
    ranges={"min_share": (0.0, 1.0)},
)
def inconsistent_output_format(dataset: DatasetView, *, min_share: float = 0.8) -> Iterator[Issue]:
    """## What it does
    When at least `min_share` of the final assistant replies share one structure (a JSON
    object with the same keys, a JSON array, a markdown table, the same markdown
    headings), reports the replies that do not. Plain-text datasets are left alone, and so
    are language-modelling `text` and undesirable KTO completions (not replies the model
    is taught to give).

    ## Why is this bad?
    A structured-output fine-tune is only as reliable as its least consistent examples:
    a few replies with a missing key or prose around the JSON teach the model that the
    format is optional, and the parser downstream fails in production.

    ## Example
    950 replies `{"label": ..., "confidence": ...}` and 12 replies `{"label": ...}`.

    ## Options
    - `min_share` (float, default 0.8): the share of replies with one structure from
      which the others are reported.
    """
    counts: Counter[str] = Counter(shape for _, shape in dataset.collected)
    total = sum(counts.values())
    if total < 2:
        return
    dominant, dominant_count = counts.most_common(1)[0]
    if dominant == "text" or dominant_count / total < min_share or dominant_count == total:
        return
    expected = _describe(dominant)
    share = f"{dominant_count:,} of {total:,}"
    wanted_keys = set(dominant.partition(":")[2].split(",")) if dominant.startswith("json-object:") else None
    for index, shape in dataset.collected:
        if shape == dominant:
            continue
        detail = ""
        if wanted_keys is not None and shape.startswith("json-object:"):
            keys = set(shape.partition(":")[2].split(",")) - {""}
            missing, extra = sorted(wanted_keys - keys - {""}), sorted(keys - wanted_keys)
            parts = []
            if missing:
                parts.append("missing " + ", ".join(repr(k) for k in missing))
            if extra:
                parts.append("extra " + ", ".join(repr(k) for k in extra))
            detail = f" ({'; '.join(parts)})"
        yield Issue(f"final reply is {_describe(shape)}{detail} while {share} are {expected}", index=index)


@rule("FT206", "output-schema", severity=Severity.ERROR, default=False, requires=(SchemaFile(),))
def output_schema(record: Record, *, schema: str | JsonSchema = "") -> list[Issue] | None:
    """## What it does
    Checks that the final assistant reply is JSON valid against a JSON Schema (the
    structured-output use case). Opt-in: select it and set `schema`.

    ## Why is this bad?
    Every example that breaks the schema teaches the model that the schema is optional;
    the application parsing its output then fails on exactly those cases.

    ## Options
    - `schema` (str, default ""): a JSON Schema, inline (starting with `{`) or the path of
      a file holding one.
    """
    # The plan loads the schema (SchemaFile) and binds it here; a text means it did not.
    if not schema:
        return None
    if isinstance(schema, str):
        raise TypeError("FT206 runs with the schema its plan loaded, not the option text")
    reply = None
    for m in reversed(record.messages):
        if m.role == "assistant":
            reply = m
            break
    if reply is None or reply.text is None or record.format == TEXT or not record.judged(reply.path):
        return None
    path = (*reply.path, "content") if record.format == "messages" else reply.path
    try:
        value = orjson.loads(reply.text)
    except orjson.JSONDecodeError:
        return [Issue(f"final reply is not valid JSON: {syntax_error(reply.text) or 'unreadable'}", path=path)]
    errors = sorted(schema.iter_errors(value), key=lambda e: list(e.absolute_path))
    return [
        Issue(f"final reply does not match the schema at {_pointer(e.absolute_path)}: {e.message}", path=path)
        for e in errors[:5]
    ] or None


def _pointer(parts: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


@rule(
    "FT207",
    "label-imbalance",
    scope=Scope.DATASET,
    severity=Severity.WARNING,
    default=False,
    collect=field_label,
    ranges={"max_ratio": (1.0, 1e12)},
)
def label_imbalance(dataset: DatasetView, *, field: str = "", max_ratio: float = 10.0) -> Iterator[Issue]:
    """## What it does
    Checks the distribution of a label or metadata field (a dotted path such as
    `metadata.category`): every value with more than `max_ratio` times fewer records than
    the most common one is reported, and so are records without the field. Opt-in:
    select it and set `field`.

    ## Why is this bad?
    The model sees the rare classes too seldom to learn them and leans toward the common
    one; a split stratified on the field also needs every class present.

    ## Options
    - `field` (str, default ""): the dotted path of the field, e.g. `metadata.category`.
    - `max_ratio` (float, default 10.0): the largest ratio between the most common value and
      another allowed.
    """
    if not field:
        return
    members: dict[str, list[int]] = {}
    for index, value in dataset.collected:
        members.setdefault(value, []).append(index)
    missing = members.pop("", [])
    if missing:
        verb = "has" if len(missing) == 1 else "have"
        yield Issue(
            f"{plural(len(missing), 'record')} {verb} no {field!r}", index=missing[0], related=tuple(missing[1:])
        )
    if len(members) < 2:
        return
    top, top_members = max(members.items(), key=lambda kv: (len(kv[1]), kv[0]))
    for value, indices in sorted(members.items(), key=lambda kv: (len(kv[1]), kv[0])):
        if len(indices) * max_ratio < len(top_members):
            yield Issue(
                f"{field} = {value!r} has {plural(len(indices), 'record')}, "
                f"{len(top_members) / len(indices):.0f}x fewer than {top!r} ({len(top_members):,})",
                index=indices[0],
                related=tuple(indices[1:]),
            )


@rule(
    "FT208",
    "low-diversity",
    scope=Scope.DATASET,
    severity=Severity.WARNING,
    default=False,
    ranges={"n": (1, 64), "min_ratio": (0.0, 1.0)},
)
def low_diversity(
    dataset: DatasetView, *, scope: str = "prompt", n: int = 2, min_ratio: float = 0.1
) -> Iterator[Issue]:
    """## What it does
    Measures how varied the texts are: the distinct word n-gram ratio (distinct n-grams
    over all n-grams) of the prompts (or `scope`), and reports it when it is below
    `min_ratio`; each character of a script written without spaces (Chinese, Japanese,
    Thai) is a word. Opt-in: select it.

    ## Why is this bad?
    A dataset built from a few templates teaches the templates, not the task: the model
    breaks on the first input phrased otherwise.

    ## Options
    - `scope` (str, default "prompt"): `prompt`, `answer` or `conversation`.
    - `n` (int, default 2): the n of the n-grams.
    - `min_ratio` (float, default 0.1): the lowest distinct-n ratio not reported.
    """
    from ftdata.similarity.text import scope_text
    from ftdata.stats import distinct_ngram_ratio

    texts = [scope_text(r, scope, casefold=True) for r in dataset.records() if r.readable]
    ratio = distinct_ngram_ratio(texts, n=n)
    if texts and ratio < min_ratio:
        yield Issue(
            f"distinct {n}-gram ratio of the {scope}s is {ratio:.3f} (below {min_ratio}): "
            "the texts repeat a few templates"
        )
