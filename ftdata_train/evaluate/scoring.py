"""Scoring one reply against its reference: exact match and token F1 (SQuAD's normalisation),
repetition, and format compliance judged by ftdata's own rules; a reference that is a tool call
is matched call for call (:mod:`ftdata_train.evaluate.toolcalls`)."""

from __future__ import annotations

import copy
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftdata_train.evaluate.examples import EvalError, content_text, last_assistant
from ftdata_train.evaluate.toolcalls import (
    ToolCall,
    ToolCallScore,
    calls_text,
    openai_calls,
    parse_tool_calls,
    reference_calls,
    score_calls,
)

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
#: The rule that judges the calls of a reply whose reference is a tool call (declared function,
#: JSON object arguments), with the options that accept what open-model templates write.
TOOL_CALL_RULE = "FT116"
TOOL_CALL_OPTIONS = {"arguments": "any", "require_ids": False}
#: A reply that makes no tool call where the reference makes one.
NO_TOOL_CALL = "FTT201"


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
    tool_calls: ToolCallScore | None = None

    @property
    def compliant(self) -> bool:
        """True when no format rule found anything in the reply."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        out = {
            "exact_match": self.exact_match,
            "f1": self.f1,
            "repetition": self.repetition,
            "compliant": self.compliant,
            "findings": [f.to_dict() for f in self.findings],
        }
        if self.tool_calls is not None:
            out["tool_calls"] = self.tool_calls.to_dict()
        return out


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

    When the reference reply is a tool call, the generation's calls are parsed
    (:func:`~ftdata_train.evaluate.toolcalls.parse_tool_calls`) and put in the record as
    ``tool_calls``, which FT116 judges too; a reply with no call is an ``FTT201`` finding.
    Exact match then means the same calls (names and arguments), token F1 is computed on the
    calls as JSON, and ``Score.tool_calls`` says whether names and arguments agree.
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
    expected = [_expected_calls(ref) for ref in references]
    made = [parse_tool_calls(gen) if calls else ((), gen) for gen, calls in zip(generations, expected, strict=True)]
    targets: list[tuple[dict[str, Any], tuple[Any, ...]] | None] = [
        _with_reply(ref, gen, calls=list(calls) if want else None)
        for ref, (calls, gen), want in zip(references, made, expected, strict=True)
    ]
    found: list[list[FormatFinding]] = [[] for _ in range(count)]
    for k, want in enumerate(expected):
        if want and not made[k][0] and targets[k] is not None:
            names = ", ".join(dict.fromkeys(c.name for c in want))
            why = " (its <tool_call> block holds no JSON call)" if "<tool_call>" in generations[k] else ""
            found[k].append(
                FormatFinding(NO_TOOL_CALL, f"the reply makes no tool call{why}; the reference calls {names}")
            )
    generated = [t[0] if t is not None else {"messages": []} for t in targets]
    per_record = [code for code in chosen if code not in _DATASET_RULES]
    dataset = [code for code in chosen if code in _DATASET_RULES]
    tools_judged = any(expected) and TOOL_CALL_RULE not in per_record
    if tools_judged:
        per_record.append(TOOL_CALL_RULE)
        opts.setdefault(TOOL_CALL_RULE, dict(TOOL_CALL_OPTIONS))
    if per_record and count:
        report = ftdata.lint(generated, select=per_record, options=_only(opts, per_record), config=False)
        for f in report.findings:
            target = targets[f.index] if f.index is not None and f.index < count else None
            if target is None or not _about(f.path, target[1]):
                continue
            if tools_judged and f.code == TOOL_CALL_RULE and not expected[f.index]:  # type: ignore[index]
                continue  # judged only where the reference is a tool call
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
    scores = []
    for k, (ref, gen) in enumerate(zip(references, generations, strict=True)):
        findings = tuple(sorted(found[k], key=lambda x: (x.code, x.message)))
        if expected[k]:
            calls = score_calls(expected[k], made[k][0])
            text = calls_text(made[k][0]) if made[k][0] else gen
            f1 = token_f1(text, calls_text(expected[k]))
            scores.append(Score(calls.arguments_match, f1, repetition(gen), findings, calls))
        else:
            reference = _reference_text(ref)
            scores.append(Score(exact_match(gen, reference), token_f1(gen, reference), repetition(gen), findings))
    return scores


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


def _expected_calls(reference: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The tool calls of the reference reply (its last assistant turn); empty when it makes none."""
    for key in ("messages", "completion"):
        turns = reference.get(key)
        if isinstance(turns, list):
            k = last_assistant(turns)
            return reference_calls(turns[k]) if k is not None else ()
    return ()


def _with_reply(
    reference: Mapping[str, Any], generated: str, *, calls: list[ToolCall] | None = None
) -> tuple[dict[str, Any], tuple[Any, ...]] | None:
    """The reference record with its last reply replaced by ``generated`` (and, where the
    reference is a tool call, the reply's ``calls`` as its ``tool_calls``), and the path of
    that reply; None when the record has no reply to replace."""
    record = copy.deepcopy(dict(reference))
    messages = record.get("messages")
    if isinstance(messages, list):
        k = last_assistant(messages)
        if k is None:
            return None
        messages[k] = {**messages[k], "content": generated}
        messages[k].pop("tool_calls", None)
        if calls:
            messages[k]["tool_calls"] = openai_calls(calls)
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
        completion[k].pop("tool_calls", None)
        if calls:
            completion[k]["tool_calls"] = openai_calls(calls)
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
