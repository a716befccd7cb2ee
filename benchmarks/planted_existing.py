"""Plant the problems of the existing content rules into real records, to measure recall.

Each ``plant_<CODE>(record, rng)`` takes one real record, as read from its file (OpenAI
``messages``, ShareGPT ``conversations``, Alpaca, ``prompt``/``completion``), and returns a
changed deep copy that has exactly the problem ``CODE`` is meant to find, or ``None`` when
the record offers no place for it (no reply text, a reply too short to alter). For the
dataset rules (FT401, FT403, FT404) the returned record is a second record, meant to be
added to the dataset beside the original: the duplicate, the conflicting answer, the near
duplicate.

``benchmarks/precision.py`` calls every planter it finds in this module (and in
``planted.py`` and ``planted_text.py``) on records of the real corpus and reports the share
of planted records the rule reports.
"""

from __future__ import annotations

import copy
import random
import re
import unicodedata
from collections.abc import Callable
from typing import Any

Record = dict[str, Any]
Planter = Callable[[Record, random.Random], Record | None]

_REPLY_ROLES = frozenset({"assistant", "gpt"})


def reply_slots(record: Record) -> list[tuple[Any, Any]]:
    """The places (container, key) of the record's reply texts, first reply first."""
    slots: list[tuple[Any, Any]] = []
    messages = record.get("messages")
    turns = record.get("conversations")
    if isinstance(messages, list):
        for turn in messages:
            if isinstance(turn, dict) and turn.get("role") == "assistant" and isinstance(turn.get("content"), str):
                slots.append((turn, "content"))
    elif isinstance(turns, list):
        for turn in turns:
            if isinstance(turn, dict) and turn.get("from") in _REPLY_ROLES and isinstance(turn.get("value"), str):
                slots.append((turn, "value"))
    elif isinstance(record.get("output"), str):
        slots.append((record, "output"))
    elif isinstance(record.get("completion"), str):
        slots.append((record, "completion"))
    return [(c, k) for c, k in slots if c[k].strip()]


def _pick(record: Record, rng: random.Random, first: bool = False) -> tuple[Record, Any, Any] | None:
    """A deep copy of ``record`` and one of its reply slots (the first, with ``first``)."""
    out = copy.deepcopy(record)
    slots = reply_slots(out)
    if not slots:
        return None
    container, key = slots[0] if first else rng.choice(slots)
    return out, container, key


def _insert_in_word(text: str, rng: random.Random, piece: str) -> str:
    """``text`` with ``piece`` put inside one of its words (after its first letter)."""
    words = [m for m in re.finditer(r"[^\W\d_]{3,}", text)]
    if not words:
        at = rng.randrange(len(text) + 1)
    else:
        at = rng.choice(words).start() + 1
    return text[:at] + piece + text[at:]


def _insert_between_words(text: str, rng: random.Random, piece: str) -> str:
    """``text`` with ``piece`` put after one of its spaces (or at its end)."""
    spaces = [m.end() for m in re.finditer(r" ", text)]
    at = rng.choice(spaces) if spaces else len(text)
    return text[:at] + piece + text[at:]


def plant_FT301(record: Record, rng: random.Random) -> Record | None:
    """A control character inside a word of a reply, as broken conversions leave them:
    NUL, BEL, backspace, ESC, DEL or a C1 control from cp1252 read as Latin-1."""
    picked = _pick(record, rng)
    if picked is None:
        return None
    out, container, key = picked
    char = rng.choice(["\x00", "\x07", "\x08", "\x1b", "\x7f", "\x92", "\x93", "\x9d", "\x0c", "\x1f"])
    container[key] = _insert_in_word(container[key], rng, char)
    return out


def plant_FT302(record: Record, rng: random.Random) -> Record | None:
    """U+FFFD in place of a letter of a reply (or two, as a bad decoder of a two-byte
    character leaves them)."""
    picked = _pick(record, rng)
    if picked is None:
        return None
    out, container, key = picked
    text = container[key]
    letters = [m.start() for m in re.finditer(r"[^\W\d_]", text)]
    if not letters:
        return None
    at = rng.choice(letters)
    container[key] = text[:at] + "\ufffd" * rng.choice([1, 1, 2]) + text[at + 1 :]
    return out


# Whole-turn stand-ins that no reply means literally, whatever the question.
_PLACEHOLDERS = ("nan", "NaN", "<nooutput>", "<noinput>", "TODO", "<no output>", "[TODO]", "NULL", "nooutput")


def plant_FT303(record: Record, rng: random.Random) -> Record | None:
    """A reply replaced by a stand-in for a missing value (``nan``, ``<nooutput>``,
    ``TODO``), as a pandas export or the self-instruct pipeline leaves it."""
    picked = _pick(record, rng)
    if picked is None:
        return None
    out, container, key = picked
    container[key] = rng.choice(_PLACEHOLDERS)
    return out


_TEMPLATE_TOKENS = (
    "<|im_end|>",
    "<|im_start|>assistant\n",
    "<|eot_id|>",
    "<|endoftext|>",
    "</s>[INST]",
    "[/INST]",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "<end_of_turn>\n<start_of_turn>model\n",
    "<|assistant|>\n",
)


def plant_FT306(record: Record, rng: random.Random) -> Record | None:
    """A chat-template control token inside a reply, between two of its words, as data
    templated twice (or split from a rendered transcript) carries them."""
    picked = _pick(record, rng)
    if picked is None:
        return None
    out, container, key = picked
    container[key] = _insert_between_words(container[key], rng, rng.choice(_TEMPLATE_TOKENS))
    return out


_OPEN_FENCES = ("```python\n", "```\n", "```js\n", "```bash\n", "```json\n", "~~~\n", "```sql\n")
_CODE_LINES = (
    "result = compute(values)\nprint(result)",
    "for item in items:\n    total += item",
    "const data = await fetch(url);",
    "pip install requests",
    '{"name": "example",',
    "SELECT name FROM users WHERE",
    "def main():\n    return 0",
)


def plant_FT307(record: Record, rng: random.Random) -> Record | None:
    """A reply cut off inside a code block: an opening fence and some code, never closed."""
    picked = _pick(record, rng)
    if picked is None:
        return None
    out, container, key = picked
    text = container[key].rstrip()
    if text.count("```") % 2 or text.count("~~~") % 2:
        return None  # already unbalanced: nothing would be planted
    container[key] = f"{text}\n\n{rng.choice(_OPEN_FENCES)}{rng.choice(_CODE_LINES)}"
    return out


_ACCENTED_WORDS = ("café", "naïve", "résumé", "Zürich", "São Paulo", "piñata", "déjà vu", "Ångström", "Dvořák")


def plant_FT308(record: Record, rng: random.Random) -> Record | None:
    """A reply in decomposed form (NFD): its own accented letters when it has some,
    otherwise an accented word added in NFD, as macOS file names and PDF extractors give."""
    picked = _pick(record, rng)
    if picked is None:
        return None
    out, container, key = picked
    text = container[key]
    decomposed = unicodedata.normalize("NFD", text)
    if decomposed == text:
        word = unicodedata.normalize("NFD", rng.choice(_ACCENTED_WORDS))
        decomposed = _insert_between_words(text, rng, word + " ")
    container[key] = decomposed
    return out


def plant_FT401(record: Record, rng: random.Random) -> Record | None:
    """A second copy of the record: byte for byte, or with the whitespace of one reply
    changed (a trailing newline, a doubled space), which trains on the same thing."""
    out = copy.deepcopy(record)
    slots = reply_slots(out)
    if not slots:
        return None
    variant = rng.choice(["same", "trailing", "double-space"])
    container, key = rng.choice(slots)
    if variant == "trailing":
        container[key] += "\n"
    elif variant == "double-space" and " " in container[key]:
        container[key] = container[key].replace(" ", "  ", 1)
    return out


_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_ENUMERATOR = re.compile(r"(?m)^[ \t>*#-]*\(?(\d{1,3})[.)](?=\s|$)")
_YES_NO = re.compile(r"^(\W*)(yes|no)\b", re.IGNORECASE)


#: Turns that answer a prompt: a reply's text or a call of a tool.
_ANSWER_TURNS = frozenset({"assistant", "gpt", "function_call", "tool_call"})


def _first_answer(record: Record) -> Any:
    """The first turn that answers the prompt (text or a tool call), or ``None``."""
    turns = record.get("messages")
    role = "role"
    if not isinstance(turns, list):
        turns, role = record.get("conversations"), "from"
    if not isinstance(turns, list):
        return None
    return next((t for t in turns if isinstance(t, dict) and t.get(role) in _ANSWER_TURNS), None)


def plant_FT403(record: Record, rng: random.Random) -> Record | None:
    """The same prompt answered so that it contradicts the original's first reply: every
    number in it changed, or its leading yes turned into no (and the other way round).
    ``None`` when the first reply has neither, since any other edit could be a paraphrase,
    and when the first answer is a tool call: the text after the call's result answers
    that result, not the prompt, and FT403 compares the first answer only."""
    picked = _pick(record, rng, first=True)
    if picked is None:
        return None
    out, container, key = picked
    first = _first_answer(out)
    if first is not None and first is not container:
        return None
    text = container[key]
    match = _YES_NO.match(text)
    if match:
        flipped = {"yes": "no", "no": "yes"}[match.group(2).lower()]
        if match.group(2)[0].isupper():
            flipped = flipped.capitalize()
        container[key] = match.group(1) + flipped + text[match.end() :]
        return out
    # A list enumerator ("1)" at the start of a line) numbers items and says nothing.
    enumerators = {m.start(1) for m in _ENUMERATOR.finditer(text)}
    if not any(m.start() not in enumerators for m in _NUMBER.finditer(text)):
        return None
    shift = rng.randint(2, 9)

    def changed(m: re.Match[str]) -> str:
        value = m.group(0)
        if m.start() in enumerators:
            return value
        if "." in value:
            return f"{float(value) + shift:.{len(value.split('.')[1])}f}"
        return str(int(value) + shift)

    container[key] = _NUMBER.sub(changed, text)
    return out


_WORD = re.compile(r"\b[^\W\d_]{4,}\b")


def plant_FT404(record: Record, rng: random.Random) -> Record | None:
    """A near copy: the record with one or two words of one long reply replaced, as a
    templated generation with a changed name or adjective is. ``None`` for replies under
    120 words, where two changed words already move the word 5-gram overlap below 0.8."""
    out = copy.deepcopy(record)
    slots = [(c, k) for c, k in reply_slots(out) if len(c[k].split()) >= 120]
    if not slots:
        return None
    container, key = rng.choice(slots)
    text = container[key]
    words = list(_WORD.finditer(text))
    for m in sorted(rng.sample(words, k=min(len(words), rng.choice([1, 2]))), key=lambda m: -m.start()):
        text = (
            text[: m.start()]
            + rng.choice(["remarkable", "particular", "Gregory", "Lisbon", "ordinary"])
            + text[m.end() :]
        )
    if text == container[key]:
        return None
    container[key] = text
    return out


PLANTERS: dict[str, Planter] = {
    "FT301": plant_FT301,
    "FT302": plant_FT302,
    "FT303": plant_FT303,
    "FT306": plant_FT306,
    "FT307": plant_FT307,
    "FT308": plant_FT308,
    "FT401": plant_FT401,
    "FT403": plant_FT403,
    "FT404": plant_FT404,
}
