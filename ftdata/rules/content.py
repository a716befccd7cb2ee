"""FT3xx: the text inside the turns."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator

from ftdata.engine.dataset import DatasetView
from ftdata.findings import Issue, PathT, Severity, plural
from ftdata.formats import ALPACA
from ftdata.records import Record
from ftdata.registry import Scope, rule
from ftdata.rules.replies import code_question, where
from ftdata.similarity import native

WARNING = Severity.WARNING

_CONTROL = native.CONTROL


@rule("FT301", "control-character", severity=WARNING)
def control_character(record: Record) -> list[Issue] | None:
    """## What it does
    Checks turn text for control characters other than tab, newline and carriage
    return: C0 controls, DEL, C1 controls (U+0080-U+009F) and a stray U+FEFF.

    ## Why is this bad?
    They are invisible when you read the data, tokenise into odd byte tokens, and come
    from broken conversions (PDF extraction, Windows-1252 decoded as Latin-1, pasted
    terminal output). The model learns to emit them.

    ## Example
    ```json
    {"prompt": "Ring the bell\\u0007", "completion": "Done."}
    ```

    ## Fix
    Remove them, or fix the conversion that produced them.
    """
    if native.control_at(record.text) < 0:
        return None
    out = []
    for role, text, path in record.segments:
        found = _CONTROL.findall(text)
        if found:
            first = f"U+{ord(found[0]):04X}"
            more = f" and {len(found) - 1} more" if len(found) > 1 else ""
            out.append(Issue(f"{where(role, path)} contains control character {first}{more}", path=path))
    return out or None


@rule("FT302", "replacement-character", severity=WARNING)
def replacement_character(record: Record) -> list[Issue] | None:
    """## What it does
    Checks turn text for U+FFFD, the character decoders put where bytes were invalid.

    ## Why is this bad?
    The original character is gone for good: the text was decoded with the wrong
    encoding or cut in the middle of a multi-byte character somewhere upstream. The
    model learns to produce "�".

    ## Example
    ```json
    {"prompt": "Caf\\ufffd au lait?", "completion": "Coffee with milk."}
    ```

    ## Fix
    Go back to the source and decode it with the right encoding.
    """
    text = record.text
    if text.isascii() or "\ufffd" not in text:
        return None
    return [
        Issue(
            f"{where(role, path)} contains {plural(text.count(chr(0xFFFD)), 'U+FFFD replacement character')}", path=path
        )
        for role, text, path in record.segments
        if "\ufffd" in text
    ] or None


# Stand-ins no writer means as text: what str() makes of missing values, and template
# placeholders. Flagged in every turn.
_ARTIFACTS = frozenset(
    {
        "nan",
        "null",
        "undefined",
        "noinput",
        "<noinput>",
        "<no input>",
        "[no input]",
        "nooutput",
        "<nooutput>",
        "<no output>",
        "[no output]",
        "<placeholder>",
        "[placeholder]",
        "todo",
        "tbd",
    }
)
# Words that mark a missing value in an input but can be a real answer ("How many? None."):
# flagged everywhere except in assistant turns.
_MISSING_MARKERS = frozenset({"none", "n/a", "no input", "(no input)", "no output", "(no output)", "placeholder"})
# Values a program really evaluates to: the right answer to a question about code.
_CODE_VALUES = frozenset({"nan", "null", "undefined", "none"})


def _key(text: str) -> str:
    key = text.strip().lower().rstrip(".").strip()
    # "[TODO]", "(TBD)", "<todo>": the same stand-in in brackets
    if len(key) > 2 and key[0] + key[-1] in ("[]", "()", "<>") and key[1:-1].strip() in ("todo", "tbd"):
        return key[1:-1].strip()
    return key


def placeholder(text: str, role: str = "user") -> bool:
    """True when ``text`` is a well-known stand-in for a missing value in a ``role`` turn."""
    if len(text) > 24:
        return False
    key = _key(text)
    return key in _ARTIFACTS or (role != "assistant" and key in _MISSING_MARKERS)


@rule("FT303", "placeholder-value", severity=WARNING)
def placeholder_value(record: Record) -> list[Issue] | None:
    """## What it does
    Checks for turns (and Alpaca inputs) whose whole text is a stand-in for a missing
    value: `nan`, `null`, `undefined`, `<noinput>`, `<nooutput>`, `TODO` and the like in any
    turn, and `None`, `N/A` or `No input` in prompts and inputs (an assistant may really
    answer "None"). A reply of `undefined`, `null`, `None` or `NaN` to a question about
    code (the prompt names a language or holds code) is the program's value, not a gap,
    and is left alone. The completion of an undesirable KTO example and the rejected
    reply of a preference pair are not judged: they are what the model moves away from.

    ## Why is this bad?
    `nan` and `None` are what `str()` makes of a missing value in pandas and Python;
    `<noinput>`/`<nooutput>` are self-instruct placeholders (the original Alpaca data has
    them). The model learns to answer `<nooutput>`, and an input of "N/A" is rendered into
    every such prompt.

    ## Example
    ```json
    {"instruction": "Name a primary colour.", "input": "N/A", "output": "Red"}
    ```

    Use instead:
    ```json
    {"instruction": "Name a primary colour.", "input": "", "output": "Red"}
    ```
    """
    out = None
    for role, text, path in record.segments:
        if len(text) <= 24 and placeholder(text, role) and record.judged(path):
            if role == "assistant" and _key(text) in _CODE_VALUES and code_question(record):
                continue  # `undefined` is what this JavaScript prints: an answer, not a gap
            out = out or []
            out.append(Issue(f"{where(role, path)} is the placeholder {text.strip()!r}", path=path))
    return out


def _input_marker(record: Record) -> str | None:
    """How an Alpaca record says "no input": "" (empty or absent), "null", or a placeholder."""
    if record.format != ALPACA or not record.readable:
        return None
    value = record.data.get("input", "")
    if value is None:
        return "null"
    if type(value) is not str:
        return None
    if not value.strip():
        return ""
    if placeholder(value):
        return value.strip()
    return None


@rule("FT304", "inconsistent-no-input-marker", scope=Scope.DATASET, severity=WARNING, collect=_input_marker)
def inconsistent_no_input_marker(dataset: DatasetView) -> Iterator[Issue]:
    """## What it does
    Checks that Alpaca records without an input all say so the same way. When several
    spellings are used (an empty string, `null`, `N/A`, `<noinput>`), every spelling other
    than the most common one is reported once, with the records that use it.

    ## Why is this bad?
    Prompt templates branch on an empty input; with several spellings some examples get
    an "Input:" section holding "N/A" and others none, so the model sees two prompt
    shapes for the same kind of task.

    ## Example
    ```json
    {"instruction": "Name a colour.", "input": "", "output": "Red"}
    {"instruction": "Name a shape.", "input": "<noinput>", "output": "Circle"}
    ```

    ## Fix
    Use an empty string everywhere.
    """
    members: dict[str, list[int]] = {}
    for index, marker in dataset.collected:
        members.setdefault(marker, []).append(index)
    if len(members) < 2:
        return
    counts = Counter({m: len(ix) for m, ix in members.items()})
    dominant, dominant_count = max(counts.items(), key=lambda kv: (kv[1], kv[0] == ""))
    for marker, indices in sorted(members.items()):
        if marker == dominant:
            continue
        yield Issue(
            f"no-input marker {_show(marker)} is used by {plural(len(indices), 'record')} while "
            f"{plural(dominant_count, 'record')} {'uses' if dominant_count == 1 else 'use'} {_show(dominant)} "
            f"({len(members)} spellings in this file)",
            index=indices[0],
            path=("input",),
            related=tuple(indices[1:]),
        )


def _show(marker: str) -> str:
    return "an empty string" if marker == "" else repr(marker)


_TEMPLATE_TOKEN = re.compile(
    r"<\|(?:im_start|im_end|endoftext|eot_id|eom_id|start_header_id|end_header_id|begin_of_text|"
    r"end_of_text|user|assistant|system|end|python_tag|fim_prefix|fim_middle|fim_suffix)\|>"
    r"|<(?:start|end)_of_turn>|\[/?INST\]|<</?SYS>>"
)


def _template_tokens(record: Record) -> tuple[tuple[str, PathT, str, bool], ...] | None:
    """Each turn of ``record`` holding a chat-template token: (role, path, first token,
    whether the turn ends with that token). The fold FT306 gathers during the pass."""
    text = record.text
    if not (
        ("<" in text and ("<|" in text or "_of_turn>" in text or "SYS>>" in text)) or ("[" in text and "INST]" in text)
    ):
        return None
    out = []
    for role, seg, path in record.segments:
        found = _TEMPLATE_TOKEN.findall(seg)
        if found:
            last = found[-1]
            at_end = len(found) == 1 and seg.rstrip().endswith(last)
            out.append((role, path, found[0], at_end))
    return tuple(out) or None


@rule(
    "FT306",
    "chat-template-token",
    scope=Scope.DATASET,
    severity=WARNING,
    collect=_template_tokens,
    ranges={"min_habit": (0, 1_000_000)},
)
def chat_template_token(dataset: DatasetView, *, min_habit: int = 10) -> Iterator[Issue]:
    """## What it does
    Checks turn text for chat-template control tokens: `<|im_start|>`, `<|eot_id|>`,
    `<|endoftext|>`, `[INST]`, `<<SYS>>`, `<start_of_turn>` and their kin. When one token
    ends the turns of at least `min_habit` records (a habit of the file, such as every
    reply ending with `<|endoftext|>`), it is reported once, at the first of them, with
    their count and the others as related records; every other token is reported at its
    record.

    ## Why is this bad?
    The chat template adds these itself. Inside the text they are either tokenised as
    the real special token (ending the turn in the middle of the data) or as plain text
    the model learns to imitate; either way the data was templated twice.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "<|im_start|>user\\nHi<|im_end|>"}, {"role": "assistant", "content": "Hello"}]}
    ```

    ## Fix
    Store the plain turn text and let the template add the tokens.

    ## Options
    - `min_habit` (int, default 10): the number of records whose turns end with the same
      token from which it is reported once for the file; 0 reports every record.
    """
    endings: dict[tuple[str, str], list[int]] = {}
    for index, turns in dataset.collected:
        for role, _path, token, at_end in turns:
            if at_end:
                ids = endings.setdefault((token, role), [])
                if not ids or ids[-1] != index:
                    ids.append(index)
    habits = {key: ids for key, ids in endings.items() if min_habit and len(ids) >= min_habit}
    for (token, role), ids in sorted(habits.items(), key=lambda kv: kv[1][0]):
        lines = [dataset.line_of(i) for i in ids[:5]]
        first = (
            f"first on lines {', '.join(map(str, lines))}"
            if None not in lines
            else f"first in records {', '.join(map(str, ids[:5]))}"
        )
        yield Issue(
            f"{plural(len(ids), f'{role} turn')} end with the chat-template token {token!r} "
            f"({first}); strip it once for the file",
            index=ids[0],
            related=tuple(ids[1:]),
        )
    for index, turns in dataset.collected:
        for role, path, token, at_end in turns:
            if at_end and (token, role) in habits:
                continue
            yield Issue(f"{where(role, path)} contains the chat-template token {token!r}", index=index, path=path)


@rule("FT307", "unbalanced-code-fence", severity=WARNING)
def unbalanced_code_fence(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that Markdown code fences (lines starting with three backticks or tildes)
    come in pairs within each turn (not in an undesirable KTO completion nor a rejected
    reply, which the model moves away from).

    ## Why is this bad?
    An odd number of fences means a reply was truncated inside a code block or a fence
    was lost in conversion. The model learns to leave code blocks open, and everything
    after the fence renders as code.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Print hi in Python"}, {"role": "assistant", "content": "```python\\nprint('hi')"}]}
    ```
    """
    joined = record.text
    if "`" not in joined and "~" not in joined:  # one-character searches are the fast ones
        return None
    out = None
    for role, text, path in record.segments:
        no_fence = "```" not in text and ("~" not in text or "~~~" not in text)  # "~" is rare: memchr first
        if role == "tool" or no_fence or not record.judged(path):
            continue
        ticks = _fences(text, "```")
        tildes = _fences(text, "~~~")
        if ticks % 2 or tildes % 2:
            out = out or []
            count = ticks if ticks % 2 else tildes
            out.append(Issue(f"{where(role, path)} has {plural(count, 'code fence')}: one is not closed", path=path))
    return out


def _fences(text: str, marker: str) -> int:
    """Lines of ``text`` that open or close a code fence made of ``marker``."""
    count = 0
    i = text.find(marker)
    while i != -1:
        start = text.rfind("\n", 0, i) + 1
        end = text.find("\n", i)
        # A fence line may not hold the marker again ("```code```" is inline code).
        rest = text[i + len(marker) : end if end != -1 else len(text)].lstrip(marker[0])
        if i - start <= 3 and not text[start:i].strip(" ") and marker not in rest:
            count += 1
        if end == -1:
            break
        i = text.find(marker, end)
    return count


@rule("FT308", "non-nfc-text", severity=WARNING, fixable=True)
def non_nfc_text(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that turn text is in Unicode normalisation form C (NFC), the composed form
    nearly all text on the web uses.

    ## Why is this bad?
    "é" written as "e" plus a combining accent looks identical but tokenises into
    different, rarer tokens, and exact-match deduplication misses it. Text from macOS
    file names and some PDF extractors is decomposed (NFD).

    ## Fix
    `ftdata lint --fix` normalises every string that is not in NFC.
    """
    text = record.text
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return None
    return [
        Issue(f"{where(role, path)} is not in Unicode NFC form", path=path)
        for role, text, path in record.segments
        if not unicodedata.is_normalized("NFC", text)
    ] or None
