"""Scoring one reply against its reference: exact match and token F1 (SQuAD's normalisation),
repetition, and format compliance judged by ftdata's own rules."""

from __future__ import annotations

import copy
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftdata_train.evaluate.examples import EvalError, content_text, last_assistant

if TYPE_CHECKING:  # pragma: no cover
    pass


#: The rules that judge a generated reply's form when the caller names none: empty reply,
#: inconsistent output structure, speaker labels, chat-template tokens, unbalanced code
#: fences. FT206 (output schema) joins them when a schema is given.
FORMAT_RULES: tuple[str, ...] = ("FT110", "FT205", "FT305", "FT306", "FT307")
#: Rules that look at the whole set of replies rather than one: run over the references and
#: the generations of one model together, so the references set the dominant structure.
_DATASET_RULES = frozenset({"FT205"})
#: Word n-gram size of the repetition score.
REPETITION_N = 3


# ---------------------------------------------------------------------------------------------
# Scores


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = frozenset(string.punctuation)


def exact_match(prediction: str, reference: str) -> bool:
    """True when both texts are equal after :func:`normalize_answer`."""
    return normalize_answer(prediction) == normalize_answer(reference)


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD's token F1 between the normalised texts (1.0 when both are empty, 0.0 when only
    one is)."""
    pred = normalize_answer(prediction).split()
    ref = normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred)
    recall = common / len(ref)
    return 2 * precision * recall / (precision + recall)


def repetition(text: str, *, n: int = REPETITION_N) -> float:
    """Share of the word n-grams of ``text`` that repeat an earlier one (0.0: none repeat;
    degenerate loops approach 1.0). A text shorter than ``n`` words scores 0.0."""
    from ftdata.stats import distinct_ngram_ratio

    if not text.strip():
        return 0.0
    return 1.0 - distinct_ngram_ratio([text], n=n)


@dataclass(frozen=True, slots=True)
class FormatFinding:
    """A finding of a format rule on a generated reply."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Score:
    """How one generated reply compares with its reference."""

    exact_match: bool
    f1: float
    repetition: float
    findings: tuple[FormatFinding, ...] = ()

    @property
    def compliant(self) -> bool:
        """True when no format rule found anything in the reply."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "exact_match": self.exact_match,
            "f1": self.f1,
            "repetition": self.repetition,
            "compliant": self.compliant,
            "findings": [f.to_dict() for f in self.findings],
        }


def format_rules(rules: Iterable[str] | None = None, *, schema: str | None = None) -> tuple[str, ...]:
    """The rules that judge a reply: ``rules`` (default :data:`FORMAT_RULES`), plus FT206
    when a ``schema`` is given."""
    chosen = list(FORMAT_RULES if rules is None else rules)
    if schema and "FT206" not in chosen:
        chosen.append("FT206")
    return tuple(dict.fromkeys(chosen))


def score_examples(
    references: Sequence[Mapping[str, Any]],
    generations: Sequence[str],
    *,
    rules: Iterable[str] | None = None,
    schema: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Score]:
    """Score each generation against its reference record (a ``messages`` or
    ``prompt``/``completion`` record whose last assistant reply is the reference).

    Format compliance runs ftdata's rules ``rules`` (see :func:`format_rules`; ``schema`` is
    FT206's JSON Schema, inline or a path, and ``options`` maps other rules to their options)
    on each reference record with its last reply replaced by the generation, and keeps the
    findings about that reply. Raises :class:`EvalError` for an unknown rule or a bad option
    or schema.
    """
    from ftdata.config import ConfigError

    try:
        return _score_examples(references, generations, rules=rules, schema=schema, options=options)
    except ConfigError as exc:
        raise EvalError(f"format rules: {exc}") from None


def _score_examples(
    references: Sequence[Mapping[str, Any]],
    generations: Sequence[str],
    *,
    rules: Iterable[str] | None,
    schema: str | None,
    options: Mapping[str, Mapping[str, Any]] | None,
) -> list[Score]:
    import ftdata

    if len(references) != len(generations):
        raise ValueError(f"{len(references)} references but {len(generations)} generations")
    chosen = format_rules(rules, schema=schema)
    opts = {k: dict(v) for k, v in (options or {}).items()}
    if schema:
        opts.setdefault("FT206", {})["schema"] = schema
    count = len(references)
    targets: list[tuple[dict[str, Any], tuple[Any, ...]] | None] = [
        _with_reply(ref, gen) for ref, gen in zip(references, generations, strict=True)
    ]
    found: list[list[FormatFinding]] = [[] for _ in range(count)]
    generated = [t[0] if t is not None else {"messages": []} for t in targets]
    per_record = [code for code in chosen if code not in _DATASET_RULES]
    dataset = [code for code in chosen if code in _DATASET_RULES]
    if per_record and count:
        report = ftdata.lint(generated, select=per_record, options=_only(opts, per_record), config=False)
        for f in report.findings:
            target = targets[f.index] if f.index is not None and f.index < count else None
            if target is not None and _about(f.path, target[1]):
                found[f.index].append(FormatFinding(f.code, f.message))  # type: ignore[index]
    if dataset and count:
        # The references come first and the dominant structure needs only half its usual
        # share, so the references alone can establish it even when every generation deviates.
        dataset_opts = _only(opts, dataset)
        ft205 = dataset_opts.setdefault("FT205", {})
        ft205["min_share"] = float(ft205.get("min_share", 0.8)) / 2
        records = [dict(r) for r in references] + generated
        report = ftdata.lint(records, select=dataset, options=dataset_opts, config=False)
        for f in report.findings:
            if f.index is not None and count <= f.index < 2 * count and targets[f.index - count] is not None:
                found[f.index - count].append(FormatFinding(f.code, f.message))
    return [
        Score(
            exact_match=exact_match(gen, _reference_text(ref)),
            f1=token_f1(gen, _reference_text(ref)),
            repetition=repetition(gen),
            findings=tuple(sorted(found[k], key=lambda x: (x.code, x.message))),
        )
        for k, (ref, gen) in enumerate(zip(references, generations, strict=True))
    ]


def score_example(
    reference: Mapping[str, Any],
    generated: str,
    *,
    rules: Iterable[str] | None = None,
    schema: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Score:
    """:func:`score_examples` for one reference record and one generation."""
    return score_examples([reference], [generated], rules=rules, schema=schema, options=options)[0]


def _only(options: dict[str, dict[str, Any]], codes: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in options.items() if k in codes}


def _about(path: Sequence[Any], reply: tuple[Any, ...]) -> bool:
    """True when a finding's path points into the generated reply."""
    return tuple(path[: len(reply)]) == reply


def _with_reply(reference: Mapping[str, Any], generated: str) -> tuple[dict[str, Any], tuple[Any, ...]] | None:
    """The reference record with its last reply replaced by ``generated``, and the path of
    that reply; None when the record has no reply to replace."""
    record = copy.deepcopy(dict(reference))
    messages = record.get("messages")
    if isinstance(messages, list):
        k = last_assistant(messages)
        if k is None:
            return None
        messages[k] = {**messages[k], "content": generated}
        messages[k].pop("tool_calls", None)
        del messages[k + 1 :]
        return record, ("messages", k)
    completion = record.get("completion")
    if isinstance(completion, str):
        record["completion"] = generated
        return record, ("completion",)
    if isinstance(completion, list):
        k = last_assistant(completion)
        if k is None:
            return None
        completion[k] = {**completion[k], "content": generated}
        del completion[k + 1 :]
        return record, ("completion", k)
    return None


def _reference_text(reference: Mapping[str, Any]) -> str:
    messages = reference.get("messages")
    if not isinstance(messages, list):
        messages = reference.get("completion")
        if isinstance(messages, str):
            return messages
    if isinstance(messages, list):
        k = last_assistant(messages)
        if k is not None:
            return content_text(messages[k].get("content"))
    return ""
