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
import copy
import html
import json
import math
import os
import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

    from ftdata_train.labels import TokenizedExample

PathLike = str | os.PathLike[str]

#: The rules that judge a generated reply's form when the caller names none: empty reply,
#: inconsistent output structure, speaker labels, chat-template tokens, unbalanced code
#: fences. FT206 (output schema) joins them when a schema is given.
FORMAT_RULES: tuple[str, ...] = ("FT110", "FT205", "FT305", "FT306", "FT307")
#: Rules that look at the whole set of replies rather than one: run over the references and
#: the generations of one model together, so the references set the dominant structure.
_DATASET_RULES = frozenset({"FT205"})
#: Word n-gram size of the repetition score.
REPETITION_N = 3


class EvalError(ValueError):
    """An evaluation that cannot run: an unreadable model, adapter or eval file."""


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


def _last_assistant(messages: Sequence[Any]) -> int | None:
    for k in range(len(messages) - 1, -1, -1):
        m = messages[k]
        if isinstance(m, Mapping) and m.get("role") == "assistant":
            return k
    return None


def _with_reply(reference: Mapping[str, Any], generated: str) -> tuple[dict[str, Any], tuple[Any, ...]] | None:
    """The reference record with its last reply replaced by ``generated``, and the path of
    that reply; None when the record has no reply to replace."""
    record = copy.deepcopy(dict(reference))
    messages = record.get("messages")
    if isinstance(messages, list):
        k = _last_assistant(messages)
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
        k = _last_assistant(completion)
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
        k = _last_assistant(messages)
        if k is not None:
            return _content(messages[k].get("content"))
    return ""


def _content(value: Any) -> str:
    """A turn's text: a string, or the text parts of a content list joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p.get("text", "") for p in value if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


# ---------------------------------------------------------------------------------------------
# Eval examples


@dataclass(frozen=True, slots=True)
class EvalExample:
    """One eval record, in the shapes the model and the scorer need.

    ``record`` is a ``messages`` or ``prompt``/``completion`` record (other formats are
    converted to ``messages``); ``conversation`` is what the loss is computed on (the whole
    record as trained), ``prompt`` what the model continues (every turn before the last
    assistant reply, or the prompt text) and ``reference`` that reply.
    """

    index: int
    line: int | None
    record: dict[str, Any]
    prompt: list[dict[str, Any]] | str
    reference: str
    tools: Any = None

    @property
    def chat(self) -> bool:
        return not isinstance(self.prompt, str)

    def prompt_text(self) -> str:
        """The prompt as plain text, one ``role: content`` line group per turn."""
        if isinstance(self.prompt, str):
            return self.prompt
        return "\n\n".join(f"{m.get('role')}: {_content(m.get('content'))}" for m in self.prompt)


def read_examples(path: PathLike, *, limit: int | None = None) -> tuple[list[EvalExample], list[str]]:
    """The eval examples of a JSONL or JSON file and notes on what was skipped (unreadable
    records and records without an assistant reply are skipped, counted, with their lines).
    Raises :class:`EvalError` when the file cannot be read."""
    from ftdata.formats import normalise
    from ftdata.io import ReadStats, read
    from ftdata.records import Record

    file = Path(path)
    if not file.is_file():
        raise EvalError(f"{file}: no such eval file")
    examples: list[EvalExample] = []
    unreadable: list[int | None] = []
    no_reply: list[int | None] = []
    try:
        for item in read(file, ReadStats()):
            if not isinstance(item, Record):
                continue
            if limit is not None and len(examples) >= limit:
                break
            if type(item.data) is dict:
                normalise(item)
            if not item.readable:
                unreadable.append(item.line)
                continue
            example = _example(item)
            if example is None:
                no_reply.append(item.line)
            else:
                examples.append(example)
    except OSError as exc:
        raise EvalError(f"{file}: cannot read the eval file ({exc.strerror or exc})") from exc
    notes = []
    if unreadable:
        notes.append(f"skipped {len(unreadable)} unreadable record(s) at line(s) {_lines(unreadable)}")
    if no_reply:
        notes.append(f"skipped {len(no_reply)} record(s) without an assistant reply at line(s) {_lines(no_reply)}")
    return examples, notes


def _lines(lines: Sequence[int | None]) -> str:
    shown = ", ".join(str(n) for n in lines[:10] if n is not None)
    return shown + (", ..." if len(lines) > 10 else "")


def _example(record: Any) -> EvalExample | None:
    data = record.data
    if record.format == "prompt-completion" and isinstance(data.get("prompt"), str):
        if not isinstance(data.get("completion"), str):
            return None
        return EvalExample(
            record.index,
            record.line,
            {"prompt": data["prompt"], "completion": data["completion"]},
            data["prompt"],
            data["completion"],
        )
    if record.format == "messages" and isinstance(data.get("messages"), list):
        messages = [dict(m) for m in data["messages"] if isinstance(m, Mapping)]
        tools = data.get("tools")
    elif record.format == "prompt-completion":
        prompt, completion = data.get("prompt"), data.get("completion")
        if not isinstance(prompt, list) or not isinstance(completion, list):
            return None
        messages = [dict(m) for m in prompt + completion if isinstance(m, Mapping)]
        tools = data.get("tools")
    else:
        messages = [{"role": m.role, "content": m.text or ""} for m in record.messages]
        tools = None
    k = _last_assistant(messages)
    if k is None:
        return None
    reference = _content(messages[k].get("content"))
    out: dict[str, Any] = {"messages": messages}
    if tools is not None:
        out["tools"] = tools
    return EvalExample(record.index, record.line, out, messages[:k], reference, tools)


# ---------------------------------------------------------------------------------------------
# Tokenisation, loss, generation


def training_row(example: EvalExample) -> dict[str, Any]:
    """The example as a row in TRL's shape (``messages`` with optional ``tools``, or plain-text
    ``prompt``/``completion``), for :func:`ftdata_train.labels.tokenize_example`."""
    if not example.chat:
        return {"prompt": example.prompt, "completion": example.reference}
    row: dict[str, Any] = {"messages": example.record["messages"]}
    if example.tools is not None:
        row["tools"] = example.tools
    return row


def tokenize_for_loss(
    example: EvalExample, tokenizer: Any, *, max_length: int | None = None, loss: str = "auto"
) -> TokenizedExample:
    """Tokenise ``example`` exactly as training did (:func:`ftdata_train.labels.tokenize_example`:
    the chat template's assistant-token mask for a conversation, the completion and its
    end-of-sequence token for prompt/completion text), truncated to ``max_length``. Raises
    :class:`EvalError` when the loss cannot be had (a template without ``{% generation %}``
    markers)."""
    from ftdata_train.labels import LossError, example_kind, resolve_loss, tokenize_example, training_chat_template

    row = training_row(example)
    try:
        resolved = resolve_loss(example_kind(row), loss)
        template = training_chat_template(tokenizer, resolved)
        return tokenize_example(row, tokenizer, max_length=max_length, loss=resolved, chat_template=template)
    except LossError as exc:
        raise EvalError(str(exc)) from None


def _prompt_ids(example: EvalExample, tokenizer: Any, max_length: int | None) -> list[int]:
    if example.chat:
        encoded = tokenizer.apply_chat_template(
            example.prompt, tools=example.tools, tokenize=True, return_dict=True, add_generation_prompt=True
        )
        ids = list(encoded["input_ids"])
    else:
        ids = list(tokenizer(example.prompt)["input_ids"])
    # Keep the end of an overlong prompt: it holds the question and the generation prompt.
    return ids[-max_length:] if max_length is not None else ids


def example_losses(model: Any, items: Sequence[TokenizedExample], *, batch_size: int = 8) -> list[tuple[float, int]]:
    """Summed negative log-likelihood of the trained tokens of each item, and their count
    (a token is predicted from the ones before it, as in the model's own loss)."""
    import torch

    device = _device_of(model)
    out: list[tuple[float, int]] = []
    pad = 0
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            width = max(len(t.input_ids) for t in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for row, t in enumerate(batch):
                n = len(t.input_ids)
                ids[row, :n] = torch.tensor(t.input_ids)
                attention[row, :n] = 1
                trained = torch.tensor(t.trained, dtype=torch.bool)
                labels[row, :n] = torch.where(trained, ids[row, :n], torch.full_like(ids[row, :n], -100))
            logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits.float()
            shift_logits = logits[:, :-1, :]
            shift_labels = labels[:, 1:].to(device)
            nll = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)),
                shift_labels.reshape(-1),
                ignore_index=-100,
                reduction="none",
            ).view(shift_labels.shape)
            counts = (shift_labels != -100).sum(dim=1)
            for row in range(len(batch)):
                out.append((float(nll[row].sum()), int(counts[row])))
    return out


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[int]],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
) -> list[str]:
    """Greedy continuations of tokenised prompts (left-padded in batches), decoded without
    special tokens."""
    import torch
    from transformers import GenerationConfig

    device = _device_of(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = _eos_ids(model, tokenizer)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=pad, eos_token_id=eos or None
    )
    texts: list[str] = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            width = max(len(p) for p in batch)
            ids = torch.full((len(batch), width), pad if pad is not None else 0, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, p in enumerate(batch):
                if p:
                    ids[row, width - len(p) :] = torch.tensor(p)
                    attention[row, width - len(p) :] = 1
            output = model.generate(
                input_ids=ids.to(device), attention_mask=attention.to(device), generation_config=config
            )
            for row in range(len(batch)):
                new = output[row, width:].tolist()
                for k, token in enumerate(new):
                    if token in eos:
                        new = new[:k]
                        break
                texts.append(tokenizer.decode(new, skip_special_tokens=True))
    return texts


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    found: list[int] = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        found.append(configured)
    elif isinstance(configured, list):
        found.extend(int(v) for v in configured)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in found:
        found.append(tokenizer.eos_token_id)
    return found


def _device_of(model: Any) -> Any:
    import torch

    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        return torch.device("cpu")


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass
class _Loaded:
    tuned: Any
    tuned_tokenizer: Any
    base: Any = None
    base_tokenizer: Any = None
    #: The tuned model is a peft model whose adapter, disabled, gives the base.
    shared: bool = False
    base_name: str | None = None
    adapter: bool = False


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the model libraries' progress bars, import-time log lines and deprecation
    warnings about their own internals off the caller's stderr for the length of a call."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    bnb = logging.getLogger("bitsandbytes")
    level = bnb.level
    bnb.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)(\.|$)")
            yield
    finally:
        bnb.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


def _dtype(device: str) -> Any:
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _load_causal_lm(name: str, device: str) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        model: Any = AutoModelForCausalLM.from_pretrained(name, dtype=_dtype(device))
    except (OSError, ValueError, KeyError) as exc:
        raise EvalError(f"{name}: cannot load the model ({_first_line(exc)})") from exc
    model.to(device)
    model.eval()
    return model


def _load_tokenizer(*names: str) -> Any:
    from transformers import AutoTokenizer

    error: Exception | None = None
    for name in names:
        if Path(name).is_dir() and not (Path(name) / "tokenizer_config.json").is_file():
            continue
        try:
            return AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError, KeyError) as exc:
            error = exc
    raise EvalError(f"{names[0]}: cannot load a tokenizer ({_first_line(error) if error else 'none found'})")


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


def _adapter_base(folder: Path) -> str:
    try:
        data = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalError(f"{folder}: unreadable adapter_config.json ({_first_line(exc)})") from exc
    base = data.get("base_model_name_or_path") if isinstance(data, dict) else None
    if not isinstance(base, str) or not base:
        raise EvalError(f"{folder}: adapter_config.json names no base model; pass base=")
    return base


def _load(model: PathLike, base: str | None, device: str) -> _Loaded:
    folder = Path(model)
    if not folder.is_dir():
        raise EvalError(f"{folder}: not a model or adapter folder")
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        own_base = _adapter_base(folder)
        base_model = _load_causal_lm(own_base, device)
        try:
            tuned = PeftModel.from_pretrained(base_model, str(folder))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise EvalError(f"{folder}: cannot load the adapter ({_first_line(exc)})") from exc
        tuned.to(device)
        tuned.eval()
        tokenizer = _load_tokenizer(str(folder), own_base)
        loaded = _Loaded(tuned, tokenizer, base_name=own_base, adapter=True)
        if base is None or base == own_base:
            loaded.shared, loaded.base_tokenizer, loaded.base_name = True, tokenizer, own_base
        else:
            loaded.base, loaded.base_tokenizer, loaded.base_name = (
                _load_causal_lm(base, device),
                _load_tokenizer(base, str(folder)),
                base,
            )
        return loaded
    if not (folder / "config.json").is_file():
        raise EvalError(f"{folder}: neither an adapter (adapter_config.json) nor a model (config.json)")
    tuned = _load_causal_lm(str(folder), device)
    loaded = _Loaded(tuned, _load_tokenizer(str(folder)))
    if base is not None:
        loaded.base, loaded.base_tokenizer, loaded.base_name = (
            _load_causal_lm(base, device),
            _load_tokenizer(base, str(folder)),
            base,
        )
    return loaded


# ---------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True, slots=True)
class Generation:
    """One model's reply to one eval prompt, its score and its loss on the reference."""

    text: str
    score: Score
    loss: float | None
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "loss": self.loss, "trained_tokens": self.tokens, **self.score.to_dict()}


@dataclass(frozen=True, slots=True)
class ExampleResult:
    """An eval example with every model's reply."""

    index: int
    line: int | None
    prompt: str
    reference: str
    outputs: dict[str, Generation]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.line,
            "prompt": self.prompt,
            "reference": self.reference,
            "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
        }


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """One model's figures over the eval set."""

    label: str
    name: str
    loss: float | None
    perplexity: float | None
    trained_tokens: int
    examples: int
    exact_match: float
    f1: float
    repetition: float
    compliance: float
    findings: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "name": self.name,
            "loss": self.loss,
            "perplexity": self.perplexity,
            "trained_tokens": self.trained_tokens,
            "examples": self.examples,
            "exact_match": self.exact_match,
            "f1": self.f1,
            "repetition": self.repetition,
            "compliance": self.compliance,
            "findings": dict(self.findings),
        }


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Base versus tuned on one eval file. ``models`` is keyed ``"base"`` (absent when a full
    model was evaluated without a base) and ``"tuned"``."""

    eval_file: str
    models: dict[str, ModelSummary]
    examples: tuple[ExampleResult, ...]
    rules: tuple[str, ...]
    max_new_tokens: int
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-serialisable."""
        return {
            "eval_file": self.eval_file,
            "rules": list(self.rules),
            "max_new_tokens": self.max_new_tokens,
            "models": {k: v.to_dict() for k, v in self.models.items()},
            "examples": [e.to_dict() for e in self.examples],
            "notes": list(self.notes),
        }

    def worst(self, n: int = 20) -> list[ExampleResult]:
        """The ``n`` examples the tuned model does worst on: lowest F1, then most format
        findings, then highest loss."""

        def key(e: ExampleResult) -> tuple[float, int, float]:
            g = e.outputs["tuned"]
            return (g.score.f1, -len(g.score.findings), -(g.loss if g.loss is not None else 0.0))

        return sorted(self.examples, key=key)[:n]

    def table(self) -> Table:
        """The summary, one column per model, for a terminal."""
        from rich.table import Table
        from rich.text import Text

        # Text, not str: a path or a rule message may hold [brackets] rich would read as markup.
        table = Table(title=Text(f"eval: {self.eval_file}"), title_justify="left")
        table.add_column("metric")
        for label, summary in self.models.items():
            table.add_column(Text(f"{label}\n{summary.name}"), justify="right", overflow="fold")
        for name, cells in self._rows():
            table.add_row(Text(name), *(Text(c) for c in cells))
        return table

    def _rows(self) -> list[tuple[str, list[str]]]:
        models = list(self.models.values())
        codes = sorted({c for m in models for c in m.findings})
        rows = [
            ("eval loss", [_num(m.loss, 4) for m in models]),
            ("perplexity", [_num(m.perplexity, 2) for m in models]),
            ("trained tokens", [f"{m.trained_tokens:,}" for m in models]),
            ("exact match", [f"{m.exact_match:.1%}" for m in models]),
            ("token F1", [f"{m.f1:.3f}" for m in models]),
            ("repetition", [f"{m.repetition:.3f}" for m in models]),
            ("format compliance", [f"{m.compliance:.1%}" for m in models]),
        ]
        rows.extend((f"  {code} findings", [str(m.findings.get(code, 0)) for m in models]) for code in codes)
        return rows

    def _html_body(self, worst: int = 20) -> str:
        e = html.escape
        labels = list(self.models)
        head = "".join(f"<th>{e(label)}<br><small>{e(self.models[label].name)}</small></th>" for label in labels)
        rows = "".join(
            "<tr><td>" + e(name) + "</td>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>"
            for name, cells in self._rows()
        )
        parts = [
            f"<h1>Evaluation of {e(self.eval_file)}</h1>",
            f"<p>{len(self.examples)} examples; greedy generation, at most {self.max_new_tokens} new tokens;"
            f" format rules: {e(', '.join(self.rules))}.</p>",
            f"<table class='summary'><tr><th>metric</th>{head}</tr>{rows}</table>",
        ]
        parts.extend(f"<p class='note'>{e(note)}</p>" for note in self.notes)
        parts.append(f"<h2>Worst examples (tuned), {min(worst, len(self.examples))} of {len(self.examples)}</h2>")
        for example in self.worst(worst):
            where = f"line {example.line}" if example.line is not None else f"record {example.index}"
            cells = [f"<div class='cell'><h4>reference</h4><pre>{e(example.reference)}</pre></div>"]
            for label in labels:
                g = example.outputs[label]
                findings = "".join(f"<li>{e(f.code)}: {e(f.message)}</li>" for f in g.score.findings)
                cells.append(
                    f"<div class='cell'><h4>{e(label)}</h4><pre>{e(g.text)}</pre>"
                    f"<p class='score'>F1 {g.score.f1:.3f} · exact {'yes' if g.score.exact_match else 'no'}"
                    f" · repetition {g.score.repetition:.2f} · loss {e(_num(g.loss, 3))}</p>"
                    + (f"<ul>{findings}</ul>" if findings else "")
                    + "</div>"
                )
            parts.append(
                f"<section><h3>{e(where)}</h3><details><summary>prompt</summary><pre>{e(example.prompt)}</pre>"
                f"</details><div class='row'>{''.join(cells)}</div></section>"
            )
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return f"<div class='ftdata-eval'>{_CSS}{self._html_body(worst=5)}</div>"

    def to_html(self, path: PathLike, *, worst: int = 20) -> Path:
        """Write a self-contained HTML page (no scripts, no external files): the summary
        table, then the ``worst`` examples with prompt, reference and every model's reply.
        Raises ``ftdata.outputs.OutputError`` when ``path`` is the eval file or its folder
        is missing or read-only."""
        from ftdata.io import atomic_write
        from ftdata.outputs import check_outputs

        target = Path(path)
        check_outputs([self.eval_file], [target])
        page = (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>ftdata eval: {html.escape(Path(self.eval_file).name)}</title>{_CSS}</head>"
            f"<body>{self._html_body(worst=worst)}</body></html>\n"
        )
        with atomic_write(target, "wb") as fh:
            fh.write(page.encode("utf-8"))
        return target


_CSS = (
    "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
    "table.summary{border-collapse:collapse}table.summary td,table.summary th{border:1px solid #ccc;"
    "padding:.3em .7em;text-align:right}table.summary td:first-child{text-align:left}"
    ".row{display:flex;gap:1em}.cell{flex:1;min-width:0}pre{white-space:pre-wrap;background:#f6f6f6;"
    "padding:.5em;margin:0}.score{color:#555;font-size:.9em}.note{color:#8a5a00}"
    "section{border-top:1px solid #ddd;margin-top:1em}</style>"
)


def _num(value: float | None, digits: int) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# The front door


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
    examples, notes = read_examples(eval_file, limit=limit)
    if not examples:
        raise EvalError(
            f"{eval_file}: no eval example with an assistant reply" + (f" ({'; '.join(notes)})" if notes else "")
        )
    # Check the rule settings before minutes of loading and generation.
    score_examples([examples[0].record], [examples[0].reference], rules=chosen, schema=schema, options=options)
    with _quiet():
        return _evaluate(
            model,
            eval_file,
            examples,
            notes,
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
    loaded = _load(model, base, device)

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
            prompts = [_prompt_ids(ex, tokenizer, max_length) for ex in examples]
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
    return EvalReport(str(eval_file), summaries, results, rules, max_new_tokens, tuple(notes))


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
