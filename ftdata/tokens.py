"""Token counts with a real tokenizer and its chat template (a name or a local path loaded
through transformers, imported on first use), or without one an estimate, marked as such."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from ftdata.formats.chat import REASONING_PARTS, tool_call_parts
from ftdata.records import Message, Record

#: Characters per token for the estimate (a typical figure for English with BPE tokenizers).
CHARS_PER_TOKEN = 4.0
#: Tokens a template adds around each turn, for the estimate.
TURN_OVERHEAD = 4


#: A conversation and its tools to its text after the chat template and its generation spans.
Render = Callable[[list[dict[str, Any]], list[Any] | None], tuple[str, list[tuple[int, int]] | None]]


@dataclass
class TokenCount:
    """Tokens of one record: in all (after the chat template), per role, and where the
    first assistant reply starts. ``error`` is set when the template failed to render."""

    index: int
    total: int = 0
    by_role: dict[str, int] = field(default_factory=dict)
    reply_start: int | None = None
    trainable: int | None = None
    error: str | None = None
    estimated: bool = False
    #: What the count depends on, hashed: the key of :func:`shared_counts`. None for estimates.
    key: bytes | None = field(default=None, compare=False, repr=False)


#: An exact count without its record: total, per role, reply start, trainable, template error.
PackedCount = tuple[int, tuple[tuple[str, int], ...], int | None, int | None, str | None]

#: Most counts :func:`shared_counts` keeps (~150 bytes each); past it new ones are not kept.
SHARED_COUNTS_MAX = 1 << 20

# Tokenizer name -> count key -> packed count, while a shared_counts() block is open.
_SHARED: dict[str, dict[bytes, PackedCount]] = {}
_SHARED_OPEN = 0


@contextmanager
def shared_counts() -> Iterator[None]:
    """Within the block, exact counts are kept by tokenizer and by a hash of what they
    depend on, so that a record counted twice in one run (the audit's figures, then a token
    rule) is tokenised once; counts of other processes join through :func:`remember`.
    Blocks nest; the counts are dropped when the outermost ends: nothing outlives the run."""
    global _SHARED_OPEN
    _SHARED_OPEN += 1
    try:
        yield
    finally:
        _SHARED_OPEN -= 1
        if not _SHARED_OPEN:
            _SHARED.clear()


def pack(count: TokenCount) -> PackedCount:
    """``count`` without its record index, as :func:`remember` takes it."""
    return (count.total, tuple(count.by_role.items()), count.reply_start, count.trainable, count.error)


def remember(tokenizer: str, counts: Iterable[tuple[bytes, PackedCount]]) -> None:
    """Keep exact counts of ``tokenizer`` made in another process for the open :func:`shared_counts` block."""
    memo = _shared(tokenizer)
    if memo is not None:
        for key, packed in counts:
            if len(memo) >= SHARED_COUNTS_MAX:
                break
            memo.setdefault(key, packed)


def _shared(tokenizer: str) -> dict[bytes, PackedCount] | None:
    return _SHARED.setdefault(tokenizer, {}) if _SHARED_OPEN else None


def _unpack(index: int, key: bytes, packed: PackedCount) -> TokenCount:
    return TokenCount(index, packed[0], dict(packed[1]), *packed[2:], key=key)


def _count_key(messages: list[dict[str, Any]], tools: list[Any] | None) -> bytes | None:
    """A hash of all an exact count depends on besides the tokenizer; ``repr``, not JSON, keeps
    what a template may render differently (key order, a tuple, NaN, lone surrogates). None
    when the repr fails."""
    try:
        text = repr((messages, tools))
    except Exception:
        return None
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@lru_cache(maxsize=4)
def load_tokenizer(name_or_path: str) -> Any:
    """A transformers tokenizer from a local folder, the local cache, or the hub when it answers
    within seconds; :class:`~ftdata.requirements.RequirementError` when none of them has it."""
    from ftdata.requirements import RequirementError, hub_reachable, looks_like_path, missing_local
    from ftdata.similarity.embeddings import quiet_hugging_face

    quiet_hugging_face()
    try:
        from transformers import AutoTokenizer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RequirementError("token counts need the 'train' extra: pip install 'ftdata[train]'") from e
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        try:
            return AutoTokenizer.from_pretrained(str(local), local_files_only=True)
        except (OSError, ValueError) as e:
            raise RequirementError(f"{local} holds no loadable tokenizer: {e}") from None
    if local.exists() or looks_like_path(name_or_path):
        raise missing_local("tokenizer", name_or_path)
    try:
        return AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
    except (OSError, ValueError):
        pass
    if not hub_reachable():
        raise missing_local("tokenizer", name_or_path)
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as e:
        raise RequirementError(f"tokenizer {name_or_path!r} could not be loaded from the hub: {e}") from None


def has_generation_markers(tokenizer: Any) -> bool:
    """Whether the chat template marks assistant text with ``{% generation %}`` (TRL's assistant-only loss)."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = " ".join(template.values())
    return "generation" in template and "endgeneration" in template


def chat_messages(record: Record) -> list[dict[str, Any]]:
    """The record as the ``messages`` list chat templates take. Reasoning (``reasoning_content``
    or ``reasoning``/``thinking`` parts) is ``reasoning_content``, as the Qwen3 and DeepSeek-R1
    templates read it. Tool calls are ``tool_calls`` of ``{"type": "function", "function":
    {"name", "arguments"}}``: OpenAI ones as in the file (FT116 checks them), a legacy
    ``function_call`` as one call; a ShareGPT ``function_call`` turn (a JSON call or a list of
    them) and ``tool_call`` content parts (LLaMA-Factory v1) with arguments as an object, as the
    Qwen and Llama templates write them with ``tojson`` (the ShareGPT turn's content then
    empty). A call that is not JSON stays out (FT116 reports it)."""
    out: list[dict[str, Any]] = []
    for m in record.messages:
        message: dict[str, Any] = {"role": m.role, "content": m.text or ""}
        if type(m.data) is dict:
            reasoning = _reasoning(m.data)
            if reasoning:
                message["reasoning_content"] = reasoning
            calls = _tool_calls(m.data) if m.tool_calls else None
            if calls is not None:
                message["tool_calls"] = calls
                if "from" in m.data:  # the ShareGPT value was the call itself
                    message["content"] = ""
        out.append(message)
    return out


def _reasoning(data: dict[str, Any]) -> str | None:
    """The reasoning of one turn: its ``reasoning_content``, else its reasoning parts joined."""
    own = data.get("reasoning_content")
    if type(own) is str:
        return own
    content = data.get("content")
    if type(content) is not list:
        return None
    parts = [p for p in content if type(p) is dict and p.get("type") in REASONING_PARTS]
    texts = [t for t in (p.get("text") if "text" in p else p.get("value") for p in parts) if type(t) is str]
    return "".join(texts) if texts else None


def chat_tools(record: Record) -> list[Any] | None:
    """The record's ``tools`` (a list, or a JSON string of one) as a template takes them; None without."""
    data = record.data
    tools = data.get("tools") if type(data) is dict else None
    tools = _loads(tools) if isinstance(tools, str) else tools
    return tools if type(tools) is list and tools else None


def _tool_calls(data: dict[str, Any]) -> list[Any] | None:
    """The ``tool_calls`` of one turn as a template takes them, or None when it holds no call."""
    if type(data.get("tool_calls")) is list:
        return data["tool_calls"]
    if type(data.get("function_call")) is dict:
        return [{"type": "function", "function": data["function_call"]}]
    value, content = data.get("value"), data.get("content")
    if data.get("from") == "function_call" and type(value) is str:
        values: list[Any] = [value]
    elif "from" not in data and type(content) is list:
        values = [content[k].get("value", content[k].get("text")) for k in tool_call_parts(content)]
    else:
        return None
    calls: list[Any] = []
    for value in values:
        if type(value) is str:
            value = _loads(value)  # None when it is not JSON: no call then
        calls += value if type(value) is list else [value]
    functions = [_function(call) for call in calls]
    if not functions or any(f is None for f in functions):
        return None
    return [{"type": "function", "function": f} for f in functions]


def _function(call: Any) -> dict[str, Any] | None:
    """``{"name", "arguments"}`` of one call, arguments decoded from a JSON string; None for no call."""
    if type(call) is not dict or type(call.get("name")) is not str:
        return None
    arguments = call.get("arguments", call.get("parameters", {}))
    decoded = _loads(arguments) if isinstance(arguments, str) else None
    return {"name": call["name"], "arguments": decoded if type(decoded) is dict else arguments}


def _loads(text: str) -> Any:
    """``text`` as JSON, or None when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def count_tokens(
    records: Iterable[Record], *, tokenizer: str = "", chars_per_token: float = CHARS_PER_TOKEN, batch: int = 256
) -> Iterator[TokenCount]:
    """Token counts of ``records``, in order; within :func:`shared_counts`, exact ones are reused."""
    if not tokenizer:
        for rec in records:
            yield _estimate(rec, chars_per_token)
        return
    tok = load_tokenizer(tokenizer)
    marked = has_generation_markers(tok)
    render = _renderer(tok, marked)
    memo = _shared(tokenizer)
    pending: list[Record] = []
    for rec in records:
        pending.append(rec)
        if len(pending) >= batch:
            yield from _exact(tok, pending, marked, render, memo)
            pending = []
    if pending:
        yield from _exact(tok, pending, marked, render, memo)


def _estimate(rec: Record, chars_per_token: float) -> TokenCount:
    count = TokenCount(rec.index, estimated=True)
    position = 0
    for m in rec.messages:
        n = int((len(m.text or "") + _unwritten(m)) / chars_per_token + 0.5) + TURN_OVERHEAD
        count.by_role[m.role] = count.by_role.get(m.role, 0) + n
        if m.role == "assistant" and count.reply_start is None:
            count.reply_start = position + TURN_OVERHEAD
        position += n
    count.total = position
    return count


def _unwritten(m: Message) -> int:
    """Characters a template renders besides the text: reasoning, tool calls (JSON) but a ShareGPT call's."""
    if type(data := m.data) is not dict or "from" in data:
        return 0
    n = len(_reasoning(data) or "")
    for call in (_tool_calls(data) if m.tool_calls else None) or ():
        function = call.get("function") if type(call) is dict else None
        if type(function) is dict:
            n += len(json.dumps(function, ensure_ascii=False))
    return n


def _exact(
    tok: Any, records: list[Record], marked: bool, render: Render, memo: dict[bytes, PackedCount] | None = None
) -> Iterator[TokenCount]:
    counts: list[TokenCount] = []
    fresh: list[TokenCount] = []  # counted here, to be kept in memo
    done: list[tuple[TokenCount, list[dict[str, Any]], list[Any] | None, str, list[tuple[int, int]] | None]] = []
    for rec in records:
        messages, tools = chat_messages(rec), chat_tools(rec)
        key = _count_key(messages, tools)
        known = memo.get(key) if memo is not None and key is not None else None
        if known is not None:
            counts.append(_unpack(rec.index, key, known))  # type: ignore[arg-type]
            continue
        count = TokenCount(rec.index, key=key)
        counts.append(count)
        if memo is not None and key is not None:
            fresh.append(count)
        try:
            text, spans = render(messages, tools)
        except Exception as e:  # templates raise plain exceptions on roles they refuse
            count.error = f"{type(e).__name__}: {e}"
            continue
        done.append((count, messages, tools, text, spans))
    if done:  # one call encodes the batch, on every core
        encoded = tok([text for *_, text, _ in done], add_special_tokens=False)
        apart: list[tuple[TokenCount, str, str]] = []  # text the template changed: encoded on its own
        for i, (count, messages, tools, text, spans) in enumerate(done):
            count.total = len(encoded["input_ids"][i])
            apart += _count_roles(count, messages, text, encoded, i)
            _count_trained(tok, count, messages, tools, text, spans, encoded, i, marked)
        if apart:
            alone = tok([t for *_, t in apart], add_special_tokens=False)["input_ids"]
            for (count, role, _), ids in zip(apart, alone, strict=True):
                count.by_role[role] += len(ids)
    if memo is not None:
        for count in fresh:
            if len(memo) >= SHARED_COUNTS_MAX:
                break
            memo[count.key] = pack(count)  # type: ignore[index]
    yield from counts


def _span(encoded: Any, i: int, start: int, end: int) -> tuple[int, int] | None:
    """The tokens ``[first, last]`` covering characters ``[start, end)`` of text ``i``."""
    first = encoded.char_to_token(i, start) if end > start else None
    last = None if first is None else encoded.char_to_token(i, end - 1)
    if first is None or last is None:
        return None
    size = len(encoded["input_ids"][i])  # a character split into byte tokens ends at its last one
    while last + 1 < size and (chars := encoded.token_to_chars(i, last + 1)) is not None and chars.start < end:
        last += 1
    return first, last


def _count_roles(
    count: TokenCount, messages: list[dict[str, Any]], text: str, encoded: Any, i: int
) -> list[tuple[TokenCount, str, str]]:
    """Tokens of each message's text where the template put it; texts it did not put verbatim
    are returned, to be encoded alone (a tool call as the JSON object most templates write)."""
    apart = []
    cursor = 0
    for m in messages:
        role, content = m["role"], m["content"]
        count.by_role.setdefault(role, 0)
        for call in m.get("tool_calls") or ():
            function = call.get("function") if type(call) is dict else None
            if type(function) is dict:
                apart.append((count, role, json.dumps(function, ensure_ascii=False)))
        # Reasoning counts where the template wrote it (Qwen3's writes only the last turns').
        for piece, own in (((m.get("reasoning_content") or "").strip(), False), (content, True)):
            found = text.find(piece, cursor) if piece else -1
            span = _span(encoded, i, found, found + len(piece)) if found >= 0 else None
            if span is not None:
                count.by_role[role] += span[1] - span[0] + 1
                cursor = found + len(piece)
            elif piece and own:
                apart.append((count, role, piece))
    return apart


def _count_trained(
    tok: Any,
    count: TokenCount,
    messages: list[dict[str, Any]],
    tools: list[Any] | None,
    text: str,
    spans: list[tuple[int, int]] | None,
    encoded: Any,
    i: int,
    marked: bool,
) -> None:
    """Tokens inside ``{% generation %}`` blocks and where the first reply starts."""
    if marked:
        if spans is None:  # the public API: a mask per token
            out = tok.apply_chat_template(messages, tools=tools, return_dict=True, return_assistant_tokens_mask=True)
            mask = list(out["assistant_masks"])
            count.trainable = sum(mask)
            count.reply_start = mask.index(1) if 1 in mask else None
        else:
            count.trainable = 0
            for start, end in spans:
                span = _span(encoded, i, start, end)
                if span is not None:
                    count.trainable += span[1] - span[0] + 1
                    if count.reply_start is None:
                        count.reply_start = span[0]
    reply = next((j for j, m in enumerate(messages) if m["role"] == "assistant"), None)
    if count.reply_start is None and reply is not None:
        # the reply starts where the prompt with a generation prompt ends
        prompt = tok.apply_chat_template(messages[:reply], tools=tools, tokenize=False, add_generation_prompt=True)
        at = encoded.char_to_token(i, len(prompt)) if text.startswith(prompt) and len(prompt) < len(text) else None
        count.reply_start = at if at is not None else len(tok(prompt, add_special_tokens=False)["input_ids"])


def _renderer(tok: Any, marked: bool) -> Render:
    """A function from a conversation to its text after the chat template and, with ``{% generation %}``
    markers, the spans they enclose: transformers' own renderer (both in one pass), or where it is
    missing or disagrees with the public API (another version), the public API alone (spans None)."""

    def public(messages: list[dict[str, Any]], tools: list[Any] | None) -> tuple[str, list[tuple[int, int]] | None]:
        return tok.apply_chat_template(messages, tools=tools, tokenize=False), None

    try:
        from transformers.utils.chat_template_utils import render_jinja_template

        template = tok.get_chat_template()
        variables = dict(tok.special_tokens_map)

        def direct(messages: list[dict[str, Any]], tools: list[Any] | None) -> tuple[str, list[tuple[int, int]] | None]:
            texts, spans = render_jinja_template(  # type: ignore[misc,str-unpack]
                [messages], tools=tools, chat_template=template, return_assistant_tokens_mask=marked, **variables
            )
            return texts[0], [(int(s[0]), int(s[1])) for s in spans[0]] if marked else None

        probe = [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "Hi."}]
        if direct(probe, None)[0] == public(probe, None)[0]:
            return direct
    except Exception:  # any failure of the internal API means: use the public one
        pass
    return public
