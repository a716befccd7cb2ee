"""Base versus tuned: eval loss, greedy generations and per-example scores on an eval file.

:func:`evaluate` loads a fine-tuned model (a peft adapter folder, whose ``adapter_config.json``
names its base, or a full model folder) and, when there is one, its base. For each it measures
the loss and perplexity on the eval file's trained tokens (the assistant turns of a
conversation, the completion of a prompt/completion record: the masking training used),
generates a greedy reply to every eval prompt, and scores each reply against the reference:
exact match and token F1 (SQuAD's normalisation), repetition (the share of repeated word
3-grams) and format compliance, judged by running ftdata's own rules (speaker labels,
chat-template tokens, code fences, empty replies, the output structure of FT205 and, with a
schema, FT206) on the reference conversation with its last reply replaced by the generation.

The report renders as JSON (:meth:`EvalReport.to_dict`), a rich table
(:meth:`EvalReport.table`) and a self-contained HTML page with the worst examples
(:meth:`EvalReport.to_html`).
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ftdata_train.evaluate.examples import (
    EvalError,
    EvalExample,
    PathLike,
    Skipped,
    prompt_ids,
    read_eval_file,
    read_examples,
    skipped_notes,
    tokenize_for_loss,
    training_row,
)
from ftdata_train.evaluate.generation import example_losses, generate
from ftdata_train.evaluate.loading import load_models, quiet_libraries
from ftdata_train.evaluate.report import EvalReport, ExampleResult, Generation, ModelSummary
from ftdata_train.evaluate.scoring import (
    FORMAT_RULES,
    REPETITION_N,
    FormatFinding,
    Score,
    exact_match,
    format_rules,
    normalize_answer,
    repetition,
    score_example,
    score_examples,
    token_f1,
)


def evaluate(
    model: PathLike,
    eval_file: PathLike,
    *,
    base: str | None = None,
    max_new_tokens: int = 128,
    limit: int | None = None,
    batch_size: int = 8,
    max_length: int | None = None,
    loss: str = "auto",
    rules: Iterable[str] | None = None,
    schema: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    device: str | None = None,
) -> EvalReport:
    """Evaluate a fine-tuned model against its base on ``eval_file``.

    ``model`` is a peft adapter folder (its ``adapter_config.json`` names the base, which
    ``base`` may replace) or a full model folder (compared with ``base`` when given). Reads at
    most ``limit`` examples; generates at most ``max_new_tokens`` tokens greedily, in batches
    of ``batch_size``; truncates loss inputs to ``max_length`` tokens as training would.
    ``loss`` is the config's loss setting (``auto``: assistant turns of conversations, the
    completion of prompt/completion data), so the eval loss counts the tokens training did.
    ``rules``, ``schema`` and ``options`` choose the format rules (see
    :func:`score_examples`). ``device`` defaults to CUDA when available.

    Raises :class:`EvalError` for an unreadable model, adapter, tokenizer or eval file, or an
    eval file with no usable example, and for bad rule settings.
    """
    import torch

    if max_new_tokens < 1:
        raise EvalError("max_new_tokens must be at least 1")
    if batch_size < 1:
        raise EvalError("batch_size must be at least 1")
    chosen = format_rules(rules, schema=schema)
    examples, skipped = read_eval_file(eval_file, limit=limit)
    notes = skipped_notes(skipped)
    if not examples:
        raise EvalError(
            f"{eval_file}: no eval example with an assistant reply" + (f" ({'; '.join(notes)})" if notes else "")
        )
    # Check the rule settings before minutes of loading and generation.
    score_examples([examples[0].record], [examples[0].reference], rules=chosen, schema=schema, options=options)
    with quiet_libraries():
        return _evaluate(
            model,
            eval_file,
            examples,
            notes,
            skipped,
            base=base,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            max_length=max_length,
            loss=loss,
            rules=chosen,
            schema=schema,
            options=options,
            device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
        )


def _evaluate(
    model: PathLike,
    eval_file: PathLike,
    examples: list[EvalExample],
    notes: list[str],
    skipped: list[Skipped],
    *,
    base: str | None,
    max_new_tokens: int,
    batch_size: int,
    max_length: int | None,
    loss: str,
    rules: tuple[str, ...],
    schema: str | None,
    options: Mapping[str, Mapping[str, Any]] | None,
    device: str,
) -> EvalReport:
    loaded = load_models(model, base, device)

    runs: list[tuple[str, str, Any, Any]] = []
    if loaded.shared or loaded.base is not None:
        runs.append(
            (
                "base",
                loaded.base_name or "base",
                loaded.base if loaded.base is not None else loaded.tuned,
                loaded.base_tokenizer,
            )
        )
    runs.append(("tuned", str(model), loaded.tuned, loaded.tuned_tokenizer))

    references = [ex.record for ex in examples]
    summaries: dict[str, ModelSummary] = {}
    per_model: dict[str, list[Generation]] = {}
    for label, name, net, tokenizer in runs:
        disable = label == "base" and loaded.shared
        with net.disable_adapter() if disable else contextlib.nullcontext():
            items = [tokenize_for_loss(ex, tokenizer, max_length=max_length, loss=loss) for ex in examples]
            losses = example_losses(net, items, batch_size=batch_size)
            prompts = [prompt_ids(ex, tokenizer, max_length) for ex in examples]
            texts = generate(net, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
        scores = score_examples(references, texts, rules=rules, schema=schema, options=options)
        generations = [
            Generation(text, score, (nll / count) if count else None, count)
            for text, score, (nll, count) in zip(texts, scores, losses, strict=True)
        ]
        per_model[label] = generations
        summaries[label] = _summary(label, name, generations, losses)

    results = tuple(
        ExampleResult(
            ex.index, ex.line, ex.prompt_text(), ex.reference, {label: per_model[label][k] for label in per_model}
        )
        for k, ex in enumerate(examples)
    )
    if "base" not in summaries:
        notes.append("no base model to compare with: pass base= (--base) to evaluate it too")
    return EvalReport(str(eval_file), summaries, results, rules, max_new_tokens, tuple(notes), tuple(skipped))


def _summary(
    label: str, name: str, generations: Sequence[Generation], losses: Sequence[tuple[float, int]]
) -> ModelSummary:
    total_nll = sum(nll for nll, _ in losses)
    tokens = sum(count for _, count in losses)
    loss = total_nll / tokens if tokens else None
    perplexity = None
    if loss is not None:
        perplexity = math.exp(loss) if loss < 700 else math.inf
    n = len(generations)
    findings: Counter[str] = Counter(f.code for g in generations for f in g.score.findings)
    return ModelSummary(
        label=label,
        name=name,
        loss=loss,
        perplexity=perplexity,
        trained_tokens=tokens,
        examples=n,
        exact_match=sum(g.score.exact_match for g in generations) / n,
        f1=sum(g.score.f1 for g in generations) / n,
        repetition=sum(g.score.repetition for g in generations) / n,
        compliance=sum(g.score.compliant for g in generations) / n,
        findings=dict(sorted(findings.items())),
    )


__all__ = [
    "FORMAT_RULES",
    "REPETITION_N",
    "EvalError",
    "EvalExample",
    "EvalReport",
    "ExampleResult",
    "FormatFinding",
    "Generation",
    "ModelSummary",
    "Score",
    "Skipped",
    "evaluate",
    "exact_match",
    "format_rules",
    "generate",
    "normalize_answer",
    "read_eval_file",
    "read_examples",
    "repetition",
    "score_example",
    "score_examples",
    "token_f1",
    "tokenize_for_loss",
    "training_row",
]
