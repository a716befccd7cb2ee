"""FT305, FT309, FT310: what a reply holds that is not part of the answer."""

from __future__ import annotations

import re
import zlib
from collections import Counter
from heapq import nlargest

from ftdata.findings import Issue, PathT, Severity, plural
from ftdata.formats import TEXT
from ftdata.records import Record
from ftdata.registry import rule
from ftdata.similarity import native

WARNING = Severity.WARNING


def where(role: str, path: PathT) -> str:
    """How a message names the text at ``path``: a top-level field by name, else the role."""
    if len(path) == 1 and isinstance(path[0], str):
        return repr(path[0])
    return f"{role} text"


def prompt_text(record: Record) -> str:
    """The system and user turns of ``record`` joined: what the reply answers."""
    return record.memo("prompt-text", lambda: "\n".join(t for r, t, _ in record.segments if r in ("system", "user")))


_CODE_PROMPT = re.compile(
    r"```|\b(?:code|programming|function|script|snippet|python|javascript|typescript|java|node\.?js|react|"
    r"angular|vue|svelte|jinja2?|handlebars|mustache|liquid|django|flask|template|f-?strings?|format strings?|"
    r"str\.format|printf|json|yaml|regex|sql|html|css|php|ruby|golang|rust|c\+\+|c#|bash|shell|variable|"
    r"placeholder|undefined|null|console\.log|def |return |class |import )",
    re.I,
)


def code_question(record: Record) -> bool:
    """True when the prompt of ``record`` is about code or templates (it names a language,
    a template engine or format strings, or holds a code block)."""
    return record.memo("code-question", lambda: _CODE_PROMPT.search(prompt_text(record)) is not None)


_FENCED = re.compile(r"^[ \t]{0,3}(```|~~~)[^\n]*\n.*?(?:^[ \t]{0,3}\1[^\n]*$|\Z)", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]+`")


def without_code(text: str) -> str:
    """``text`` with fenced code blocks and inline code removed."""
    if "`" not in text and ("~" not in text or "~~~" not in text):  # memchr first: "~" is rare
        return text
    if "```" in text or "~~~" in text:  # a fence: the costly search, tried at every line
        text = _FENCED.sub("\n", text)
    return _INLINE_CODE.sub(" ", text) if "`" in text else text


def prose_of(record: Record, text: str, path: PathT) -> str:
    """:func:`without_code` of the turn text ``text`` at ``path`` of ``record``, computed
    once per record for all the rules that judge a reply's prose."""
    if "`" not in text and ("~" not in text or "~~~" not in text):  # memchr first: "~" is rare
        return text
    return record.memo(("without-code", path), lambda: without_code(text))


# ---------------------------------------------------------------------------------------------
# FT305

_LEADING_LABEL = re.compile(
    r"\A\s*(?:(?:assistant|user|human|system|ai|gpt|chatgpt|bot)[ \t]*:|#{2,4}[ \t]*(?:response|assistant|answer)[ \t]*:)",
    re.I,
)
_INNER_LABEL = re.compile(
    r"\n[ \t]*(?:(?:User|USER|Human|HUMAN|Patient|PATIENT|Customer|CUSTOMER)[ \t]*:"
    r"|#{2,4}[ \t]*(?:Instruction|Input|Human|User|Response)[ \t]*:)"
    r"(?![ \t]*_{3,})"  # "User: ________" is a form's signature line, not a turn
)
_DIALOGUE_TASK = re.compile(
    r"dialog|conversation|script|transcript|interview|role[- ]?play|screenplay|chat log|skit|scene|exchange between",
    re.I,
)
# A system prompt names the conversation ("a chat between a customer and an agent") without
# asking for one: only a request for a dialogue turns the check off there.
_DIALOGUE_REQUEST = re.compile(
    r"\b(?:write|create|generate|compose|draft|produce|simulate|continue|act out|make up|transcribe)\b"
    r"[^.?!\n]{0,60}\b(?:dialog|conversation|script|transcript|interview|screenplay|skit|scene|role[- ]?play)",
    re.I,
)
#: Labels a reply never speaks under inside its own text.
COMMON_LABELS = ("User", "Human", "Assistant", "AI")
#: Roles a conversation's frame may give its parties; a label only when the prompt names it.
FRAME_LABELS = (
    "Customer",
    "Agent",
    "Patient",
    "Doctor",
    "Client",
    "Therapist",
    "Student",
    "Teacher",
    "Tutor",
    "Interviewer",
    "Candidate",
    "Caller",
    "Guest",
    "Buyer",
    "Seller",
    "Support",
    "Representative",
    "Operator",
    "Bot",
    "Chatbot",
)
# A label that goes on in the same line: after the end of a sentence, then the next speaker.
# The sentence's last character is matched, not looked behind at: the search then skips
# to the few places a stop occurs instead of testing every character.
_INLINE_LABEL = re.compile(r"[.!?)\]]([ \t]+)([A-Z][A-Za-z]{1,13}|Q|A)[ \t]*:[ \t]+(?=\S)")
_LIST_MARK = re.compile(r"[ \t]*(?:\d{1,3}|[A-Za-z]|[ivxIVX]{1,4})[.)]")
_PROMPT_QA = re.compile(r"(?:^|\n)[ \t]*Q[ \t]*:", re.M)


def _frame_labels(record: Record) -> frozenset[str]:
    """The labels a reply of ``record`` must not speak under: the common ones, the frame's
    roles its prompt names, and Q/A when the prompt is written in Q:/A: form."""

    def compute() -> frozenset[str]:
        prompt = prompt_text(record)
        lowered = prompt.lower()
        labels = set(COMMON_LABELS)
        labels.update(x for x in FRAME_LABELS if x.lower() in lowered)
        if _PROMPT_QA.search(prompt):
            labels.update(("Q", "A"))
        return frozenset(labels)

    return record.memo("frame-labels", compute)


def _inline_label(record: Record, text: str, path: PathT) -> str | None:
    """The first label of the frame that ``text`` goes on with in the middle of a line."""
    if ":" not in text:
        return None
    labels = None
    prose = prose_of(record, text, path)
    for m in _INLINE_LABEL.finditer(prose):
        stop = m.start(1)  # just past the sentence's last character
        if _LIST_MARK.fullmatch(prose, prose.rfind("\n", 0, stop) + 1, stop):
            continue  # "2. Client: GreenTech": a list item's number, not a sentence's end
        word = m.group(2)
        if labels is None:
            labels = _frame_labels(record)
        if word in labels or (word.isupper() and word.capitalize() in labels):
            return f"{word}:"
    return None


def _dialogue_requested(record: Record) -> bool:
    users = "\n".join(t for r, t, _ in record.segments if r == "user")
    if _DIALOGUE_TASK.search(users):
        return True
    system = "\n".join(t for r, t, _ in record.segments if r == "system")
    return bool(system) and _DIALOGUE_REQUEST.search(system) is not None


@rule("FT305", "speaker-label", severity=WARNING)
def speaker_label(record: Record) -> list[Issue] | None:
    """## What it does
    Checks assistant turns for speaker labels that belong to the conversation's frame,
    not to the answer: a reply that starts with `Assistant:` or `### Response:`, that
    goes on into a new `User:`, `Human:`, `Patient:` or `### Instruction:` turn, or that
    goes on into the other party's turn in the same line ("... I hope this helps.
    Customer: Thanks, that works"). Inline labels are the common ones (`User`, `Human`,
    `Assistant`, `AI`) and the roles the prompt itself names (`Customer`, `Agent`,
    `Patient`, `Doctor`, `Client` and the like; `Q`/`A` when the prompt is written as
    `Q:`/`A:`), after the end of a sentence; words such as `Note:` and labels inside code
    or quotes are not labels. A reply to a request for a dialogue, a script, an interview
    or a transcript is left alone, and so are language-modelling `text` (a document may
    quote a dialogue), an undesirable KTO completion and a preference pair's rejected
    reply.

    ## Why is this bad?
    The data was flattened from a transcript or generated with a template and not cut
    where the answer ends. The model learns to prefix its answers with a label, or to
    keep talking in the user's voice.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "I have a headache."}, {"role": "assistant", "content": "Drink water and rest.\\nPatient: Thanks, doctor."}]}
    {"messages": [{"role": "system", "content": "You are a support agent helping a customer."}, {"role": "user", "content": "My order is late."}, {"role": "assistant", "content": "It ships today. Customer: Thanks, that works."}]}
    ```

    ## Fix
    Cut the reply where the answer ends and drop the label.
    """
    if record.format == TEXT:
        return None
    out = None
    dialogue: bool | None = None
    joined = record.text
    if ":" not in joined:
        return None
    inner = _INNER_LABEL.search(joined) is not None
    for role, text, path in record.segments:
        if role != "assistant" or not record.judged(path) or ":" not in text:
            continue
        m = _LEADING_LABEL.match(text)
        if m is None and inner:
            m = _INNER_LABEL.search(text)
        label = m.group().strip() if m is not None else _inline_label(record, text, path)
        if label is None:
            continue
        if dialogue is None:
            dialogue = _dialogue_requested(record)
        if dialogue:
            return None
        verb = "starts with" if m is not None and (m.start() == 0 or not text[: m.start()].strip()) else "contains"
        out = out or []
        out.append(Issue(f"{where(role, path)} {verb} the speaker label {label!r}", path=path))
    return out


# ---------------------------------------------------------------------------------------------
# FT309

# Characters that draw rules and table borders: long runs of them are markup, not a loop.
_MARKUP = frozenset("-=_*#~.+|/\\<>─━═│┃ \t\n\r")
_MARKUP_CHARS = "".join(sorted(_MARKUP))


def _char_run(text: str, limit: int) -> tuple[str, int] | None:
    """The first run of one character longer than ``limit`` (four times ``limit`` for rule
    and border characters), as (character, length)."""
    if native.NATIVE:
        return native.char_run(text, limit, _MARKUP_CHARS)
    if not _may_run(text):
        return None
    return _char_run_scan(text, limit)


def _may_run(text: str) -> bool:
    """False when ``text`` has no run of :data:`_RUN_MIN` equal characters. Such a run
    holds two characters :data:`_STRIDE` apart with every character between them equal,
    so looking at every ``_STRIDE``-th character finds each place one may start, at a
    sixteenth of the cost of the scan."""
    for m in _PAIR.finditer(text[::_STRIDE]):
        at = m.start() * _STRIDE
        piece = text[at : at + _STRIDE + 1]
        if piece == piece[0] * len(piece):
            return True
    return False


def _char_run_scan(text: str, limit: int) -> tuple[str, int] | None:
    """:func:`_char_run` by scanning the whole of ``text`` (the reference)."""
    return native.py_char_run(text, limit, _MARKUP_CHARS)


_RUN_MIN = 32  # the shortest run native.py_char_run reports
_STRIDE = _RUN_MIN // 2
# Overlapping pairs of equal characters (the lookahead keeps a third one in play).
_PAIR = re.compile(r"(.)(?=\1)", re.S)


_BORDER = "+-=|: \t"


def _without_tables(text: str) -> str:
    """``text`` without its table rows (lines with two or more ``|``): each row repeats
    the borders of the one above, which is layout, not a loop; a row equal to the row
    above is kept, so a table that loops on one row still does, and so is a line that
    holds one row many times over, cut into its rows (:func:`_row_loop`)."""
    if "|" not in text and ("+" not in text or "+-" not in text):
        return text
    out: list[str] = []
    previous = None
    for line in text.split("\n"):
        border = not line.strip(_BORDER) and "-" in line  # +----+----+ of an ASCII table
        pipes = line.count("|")
        if (pipes < 2 and not border) or line == previous:
            out.append(line)
        elif pipes >= _ROW_LOOP_CELLS:
            out.extend(_row_loop(line))
        previous = line
    return "\n".join(out)


# A line of this many cells or more may be one row written many times on one line (the
# last few hundred characters of one, judged as a reply's tail, hold a few dozen cells).
_ROW_LOOP_CELLS = 30


def _row_loop(line: str) -> list[str]:
    """The rows of the table line ``line`` when it repeats one row many times over (what a
    generation that lost its line breaks writes), one row a line, so that they count as
    a loop; an empty list for a wide row, which is left out as any table row is. A row
    loop has at least :data:`_ROW_LOOP_CELLS` cells of which a fifth or fewer are
    distinct, its cells repeat, four times in five, one row of at most a fifth of them
    further on, and that row has a cell of three characters or more with a letter (a
    grid of marks, ``| X | | X |``, repeats cells too)."""
    cells = [c.strip() for c in line.split("|")]
    if 5 * len(set(cells)) > len(cells):
        return []
    for q in range(1, len(cells) // 5 + 1):
        same = sum(1 for a, b in zip(cells, cells[q:], strict=False) if a == b)
        if 5 * same >= 4 * (len(cells) - q):
            row = cells[len(cells) // 2 : len(cells) // 2 + q]
            if not any(len(c) > 2 and any(ch.isalpha() for ch in c) for c in row):
                return []
            return [" | ".join(cells[k : k + q]) for k in range(0, len(cells), q)]
    return []


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over bytes of its zlib compression: about 2-3.5 for prose and code,
    far higher for text that repeats itself."""
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw) / len(zlib.compress(raw, 6)) if raw else 0.0


#: Where a sentence or line ends: the spaces after a full stop, a question or an
#: exclamation mark, and line breaks.
_UNIT = re.compile(r"(?<=[.!?])[ \t]+|\n+")

#: The sentences and lines of a text, stripped, empty ones left out: the pieces of
#: ``_UNIT.split(text)`` (the reference) that hold something.
units_of = native.py_units


def _looped_units(text: str, period: int = 8) -> tuple[list[str], float]:
    """The sentences or lines of ``text`` equal to one of the ``period`` before them, and
    their share of its characters (the unit half of :func:`repeated_share`)."""
    return _looped_of(units_of(text), period)


def _looped_of(units: list[str], period: int = 8) -> tuple[list[str], float]:
    total = sum(map(len, units)) or 1
    looped = [u for i, u in enumerate(units) if len(u) > 3 and u in units[max(0, i - period) : i]]
    return looped, sum(map(len, looped)) / total


def _units_loop(text: str, max_share: float) -> bool:
    """``_looped_units(text)[1] > max_share``, ruled out first by the distinct units: the
    first occurrence of a unit never repeats one before it, so the looped units hold at
    most the characters of all units less those of the distinct ones."""
    if native.NATIVE:
        total, looped = native.looped_units(text, 8)
        return looped / (total or 1) > max_share  # the share _looped_of computes
    units = units_of(text)
    total = len("".join(units))
    if total - len("".join(set(units))) + 1 <= max_share * total:
        return False
    return _looped_of(units)[1] > max_share


def repeated_share(text: str, *, n: int = 4, period: int = 8) -> tuple[float, str]:
    """How much of ``text`` loops, and the phrase it loops on: the larger of the share of
    its words covered by its most repeated word ``n``-gram and the share of its characters
    in sentences or lines equal to one of the ``period`` before them (a loop repeats whole
    units; a list or a table changes every line)."""
    words = text.split()
    if len(words) < 3 * n:
        return 0.0, ""
    grams = list(zip(*(words[i:] for i in range(n)), strict=False))
    top, count = Counter(grams).most_common(1)[0]
    covered = bytearray(len(words))
    for i, g in enumerate(grams):
        if g == top:
            covered[i : i + n] = b"\x01" * n
    gram_share = sum(covered) / len(words) if count >= 3 else 0.0
    looped, loop_share = _looped_units(text, period)
    if loop_share > gram_share:
        return loop_share, Counter(looped).most_common(1)[0][0]
    return gram_share, " ".join(top)


def may_repeat(text: str, max_share: float, n: int) -> bool:
    """False when ``repeated_share(text, n=n)`` is at most ``max_share`` for certain,
    without zlib or the n-gram count (the costly parts).

    With W words of which V are distinct, and share s = ``max_share``:

    - n-grams: the words covered by the most repeated n-gram are all occurrences of its at
      most n distinct words, so they number at most the n largest word counts added up
      (which is itself at most W - V + n, the cheap bound tried first: each other distinct
      word occurs at least once). Text whose most common words are function words ("the",
      "of") passes the cheap bound and fails this one.
    - units: a sentence or line that repeats one before it holds only words that occur
      before it, so the first occurrence of every distinct word lies in a unit that does
      not repeat. Units split ``text`` at whitespace, so no word straddles two, and
      their lengths add up to at most len(text): the repeated units' share of the
      characters is above s only if the distinct words add up to fewer than
      (1 - s) len(text) characters. When they do, the units' share is computed exactly
      (a split and a comparison of a few lines, far cheaper than zlib).

    The word comparisons allow one word and one character more than these bounds, which
    covers any rounding of the floating-point products.
    """
    return _may_repeat(text, None, max_share, n)


def _may_repeat(text: str, words: list[str] | None, max_share: float, n: int) -> bool:
    """:func:`may_repeat` of ``text``, from its word statistics in C when the extension is
    built, else from ``words`` (``text.split()``, split here when None)."""
    if native.NATIVE:
        return _may_repeat_stats(text, native.word_stats(text, n), max_share, n)
    return _may_repeat_words(text, text.split() if words is None else words, max_share, n)


def _may_repeat_stats(text: str, stats: tuple[int, int, int, int], max_share: float, n: int) -> bool:
    """:func:`may_repeat` of ``text`` from its :func:`ftdata.similarity.native.word_stats`: the bounds
    of :func:`_may_repeat_words`, every figure computed in one pass."""
    words, distinct, top, chars = stats
    if words < 3 * n:
        return False
    limit = max_share * words
    if words - distinct + n + 1 > limit and top + 1 > limit:
        return True
    if chars < (1.0 - max_share) * len(text) + 1:
        return _units_loop(text, max_share)
    return False


def _may_repeat_words(text: str, words: list[str], max_share: float, n: int) -> bool:
    """:func:`may_repeat` of ``text`` split into ``words`` (``text.split()``)."""
    if len(words) < 3 * n:
        return False  # repeated_share is 0.0
    distinct = set(words)
    limit = max_share * len(words)
    if len(words) - len(distinct) + n + 1 > limit and sum(nlargest(n, Counter(words).values())) + 1 > limit:
        return True
    # the distinct words' characters, joined: a C loop rather than a sum of lengths
    if len("".join(distinct)) < (1.0 - max_share) * len(text) + 1:
        return _units_loop(text, max_share)
    return False


def _looping(
    prose: str,
    max_compression: float,
    max_share: float,
    ngram: int,
    words: list[str] | None = None,
) -> str | None:
    """What to say of ``prose`` when it compresses above ``max_compression`` and more than
    ``max_share`` of it loops; None when it does not. ``words``: the words of ``prose``
    when it holds no table (so that it is its own table-free text), split already."""
    table_free = prose if words is not None else _without_tables(prose)
    if not _may_repeat(table_free, words, max_share, ngram):
        return None
    return _compressed(prose, table_free, max_compression, max_share, ngram)


def _compressed(prose: str, table_free: str, max_compression: float, max_share: float, ngram: int) -> str | None:
    """What :func:`_looping` says of ``prose`` (``table_free`` without its tables) once
    the bounds have not ruled a loop out: the compression ratio, then the share itself."""
    ratio = compression_ratio(prose)
    if ratio <= max_compression:
        return None
    return _said(table_free, ratio, max_share, ngram)


def _looping_prose(prose: str, min_length: int, max_compression: float, max_share: float, ngram: int) -> str | None:
    """What to say of the prose of a turn (``min_length`` characters or more) that loops,
    as a whole or in its last ``min_length`` characters; None when it does not. Without
    tables, the prose is split once: the tail's words are the last words of the whole,
    the first of them cut where the tail starts."""
    cut = len(prose) - min_length
    tail_words = None
    if cut <= 0 or "|" in prose or ("+" in prose and "+-" in prose):
        message = _looping(prose, max_compression, max_share, ngram)
    elif native.NATIVE:
        # both bounds, of the whole and of the tail, in one call to C, which needs no list of words
        may_whole, may_tail = native.may_loop(prose, cut, ngram, max_share)
        message = _compressed(prose, prose, max_compression, max_share, ngram) if may_whole else None
        if message is None and may_tail:
            message = _compressed(prose[cut:], prose[cut:], max_compression, max_share, ngram)
            message = message and message.replace("repeats itself", "ends in a loop", 1)
        return message
    else:
        head = prose[:cut].split()
        tail_words = prose[cut:].split()
        if head and tail_words and not prose[cut - 1].isspace() and not prose[cut].isspace():
            words = [*head[:-1], head[-1] + tail_words[0], *tail_words[1:]]  # a word across the cut
        else:
            words = head + tail_words
        message = _looping(prose, max_compression, max_share, ngram, words)
    if message is None and cut > 0:
        # a generation that went wrong loops at its end, after a sound start that keeps
        # the whole turn's figures low: judge the tail on its own
        tail = _looping(prose[cut:], max_compression, max_share, ngram, tail_words)
        message = tail and tail.replace("repeats itself", "ends in a loop", 1)
    return message


def _looping_reference(prose: str, max_compression: float, max_share: float, ngram: int) -> str | None:
    """:func:`_looping` without the word bound (the reference)."""
    ratio = compression_ratio(prose)
    if ratio <= max_compression:
        return None
    return _said(_without_tables(prose), ratio, max_share, ngram)


def _said(table_free: str, ratio: float, max_share: float, ngram: int) -> str | None:
    share, top = repeated_share(table_free, n=ngram)
    if share <= max_share:
        return None
    shown = top if len(top) <= 60 else top[:57] + "..."
    return (
        f"repeats itself: {share:.0%} of its words are in repeated phrases such as {shown!r} (compresses {ratio:.1f}x)"
    )


# A loop at the end of a reply: its unit is one to _MAX_PERIOD words and it ends at the
# last word or the one before (a generation cut off mid-unit).
_MAX_PERIOD = 8
# A unit of cells, numbers or punctuation alone ("| |", "0 0", "1 2 3") is a table, a
# matrix or a sequence more often than a loop; runs of one character are caught apart.
_NOT_A_UNIT = re.compile(r"[|\d]")
_REPEAT_REQUEST = re.compile(
    r"\brepeat|\b(?:\d+|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|fifty|hundred)\s+times\b",
    re.I,
)


def _may_loop_at_end(text: str) -> bool:
    """False when the words of ``text`` cannot end in a loop that :func:`_trailing_loop`
    reports: every such loop repeats the word before the one it ends at, and that word's
    predecessor, one unit back; this looks at the last dozen words alone
    (:func:`ftdata.similarity.native.py_may_loop_at_end`)."""
    return native.may_loop_at_end(text, _MAX_PERIOD)


def _trailing_loop(words: list[str], min_repeats: int) -> tuple[str, int, int] | None:
    """The loop ``words`` end in, as (unit, repeats, index of its first word), or None:
    a unit of two to :data:`_MAX_PERIOD` words repeated ``min_repeats`` times or more in
    a row, a single word twice that, a unit without letters six times that (``min_repeats``
    is at least 2, so a loop always holds the word before its end one unit back, and that
    word's predecessor: what :func:`_may_loop_at_end` looks for). The shortest unit that
    repeats enough wins ("ha", not "ha ha")."""
    n = len(words)
    for end in (n - 1, n - 2):
        for p in range(1, _MAX_PERIOD + 1):
            if end - p < 0:
                break
            i = end
            while i - p >= 0 and words[i] == words[i - p]:
                i -= 1
            start = i - p + 1  # the loop is words[start : end + 1]
            repeats = (end - start + 1) // p
            if repeats < min_repeats:
                continue
            unit = " ".join(words[end - p + 1 : end + 1])
            if _NOT_A_UNIT.search(unit):
                continue
            # one word repeating ("very very") is common in prose, a unit without letters
            # ("* * *", "- -") in layout: both need far more repeats to be a loop
            need = min_repeats if p > 1 else 2 * min_repeats
            if not any(c.isalpha() for c in unit):
                need = 6 * min_repeats
            if repeats >= need:
                return unit, repeats, start
    return None


def _looping_tail(
    record: Record, text: str, path: PathT, min_length: int, max_share: float, min_repeats: int, *, reference: bool
) -> str | None:
    """What to say of the turn ``text`` at ``path`` when it ends in one unit repeated
    ``min_repeats`` times or more, outside code, that fills more than ``max_share`` of
    its prose or of the prose's last ``min_length`` characters; None when it does not.
    ``reference`` skips the word pre-filter."""
    if not reference and not _may_loop_at_end(text):
        return None
    # the turn itself must end in the loop (cheap, and rare), and so must its prose: a
    # loop in a code block at the end is code's, not the reply's
    found = _trailing_loop(text.split(), min_repeats)
    if found is None:
        return None
    prose = prose_of(record, text, path)
    if prose is not text:
        found = _trailing_loop(prose.split(), min_repeats)
        if found is None:
            return None
    unit, repeats, start = found
    # the loop's characters, the spaces and line breaks between its words included: the
    # text after the words before it
    kept = prose.strip()
    before = kept.rsplit(None, len(kept.split()) - start)[0] if start else ""
    if len(kept) - len(before) <= max_share * min(len(kept), min_length):
        return None
    if not any(c.isalpha() for c in unit):
        # layout repeats such a unit along a line ("* * * *") or down a figure (a
        # triangle of stars): a loop repeats the whole line
        lines = [line for line in map(str.strip, prose.split("\n")) if line]
        if len(set(lines[-6 * min_repeats :])) != 1 or len(lines) < 6 * min_repeats:
            return None
    if _REPEAT_REQUEST.search(prompt_text(record)):
        return None  # "repeat the word ten times" asks for it
    shown = unit if len(unit) <= 60 else unit[:57] + "..."
    verb = "repeats itself" if start == 0 else "ends in a loop"
    return f"{verb}: {shown!r} {repeats:,} times in a row"


@rule(
    "FT309",
    "degenerate-repetition",
    severity=WARNING,
    ranges={
        "min_length": (1, 10_000_000),
        "max_compression": (1.0, 1000.0),
        "max_repeated_share": (0.0, 1.0),
        "ngram": (1, 32),
        "max_char_run": (1, 10_000_000),
        "min_repeats": (2, 10_000_000),
    },
)
def degenerate_repetition(
    record: Record,
    *,
    min_length: int = 300,
    max_compression: float = 4.0,
    max_repeated_share: float = 0.6,
    ngram: int = 4,
    max_char_run: int = 50,
    min_repeats: int = 6,
) -> list[Issue] | None:
    """## What it does
    Checks assistant turns for degenerate output: one short phrase repeated many times,
    a reply that loops on a sentence or a markup line, or a long run of one character
    (`0000…`). A turn of at least `min_length` characters (code blocks left out) loops
    when it compresses more than `max_compression` times with zlib and more than
    `max_repeated_share` of its words lie inside word `ngram`-grams repeated at least
    three times; a longer turn whose last `min_length` characters loop that way ends in
    a loop; any turn with a run of one character longer than `max_char_run` (four
    times that for rule and border characters such as `-`, `=` and `|`) is degenerate
    too. A turn of any length over `max_char_run` characters, short ones included
    (`Sure! ha ha ha …`), also loops when it ends in one unit of two to eight words
    repeated at least `min_repeats` times in a row (one word: twice that; a unit
    without letters, such as `> `: six times that) and that loop fills more than
    `max_repeated_share` of the turn, or of its last `min_length` characters; units of
    table cells or numbers, and prompts that ask for a repetition, are left out.
    Tables, lists, enumerations and code compress far less and do not repeat whole
    phrases; an undesirable KTO completion and a rejected reply are not judged.

    ## Why is this bad?
    A looping reply of thousands of tokens dominates the loss of its batch and teaches
    the model to loop: it is what a model emits when generation goes wrong, copied into
    the data as if it were an answer.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Say thanks."}, {"role": "assistant", "content": "Thank you! Thank you! Thank you! Thank you! ..."}]}
    ```

    ## Fix
    Cut the reply where it starts repeating, regenerate it, or drop the record.

    ## Options
    - `min_length` (int, default 300): the shortest turn, in characters, whose
      compression is measured.
    - `max_compression` (float, default 4.0): the zlib compression ratio above which a
      turn may be looping (prose and code stay under 3.5).
    - `max_repeated_share` (float, 0-1, default 0.6): the share of words in repeated
      n-grams above which a compressible turn is looping.
    - `ngram` (int, default 4): the n-gram size, in words.
    - `max_char_run` (int, default 50): the longest run of one character allowed.
    - `min_repeats` (int, default 6): the fewest repeats of a unit of words, in a row,
      that a turn may end in before it counts as a loop.
    """
    return repetition_issues(record, min_length, max_compression, max_repeated_share, ngram, max_char_run, min_repeats)


def repetition_issues(
    record: Record,
    min_length: int,
    max_compression: float,
    max_repeated_share: float,
    ngram: int,
    max_char_run: int,
    min_repeats: int = 6,
    *,
    reference: bool = False,
) -> list[Issue] | None:
    """What FT309 reports on ``record``; ``reference`` runs it without its pre-filters
    (every turn scanned for runs, every long one compressed, every one split for a loop
    at its end)."""
    char_run = _char_run_scan if reference else _char_run
    out = None
    for role, text, path in record.segments:
        if role != "assistant" or len(text) <= max_char_run or not record.judged(path):
            continue
        message = None
        run = char_run(text, max_char_run)
        if run is not None:
            message = f"has a run of {run[1]:,} {run[0]!r} characters"
        elif len(text) >= min_length:
            prose = prose_of(record, text, path)
            if len(prose) >= min_length and not reference:
                message = _looping_prose(prose, min_length, max_compression, max_repeated_share, ngram)
            elif len(prose) >= min_length:
                message = _looping_reference(prose, max_compression, max_repeated_share, ngram)
                if message is None and len(prose) > min_length:
                    tail = _looping_reference(prose[-min_length:], max_compression, max_repeated_share, ngram)
                    message = tail and tail.replace("repeats itself", "ends in a loop", 1)
        if not message:
            message = _looping_tail(
                record, text, path, min_length, max_repeated_share, min_repeats, reference=reference
            )
        if message:
            out = out or []
            out.append(Issue(f"{where(role, path)} {message}", path=path))
    return out


# ---------------------------------------------------------------------------------------------
# FT310

_PLACEHOLDER_WORDS = (
    r"name|date|address|company|phone|e-?mail|title|position|number|city|state|country|location|time|"
    r"amount|price|product|recipient|contact|organi[sz]ation|website|url|link|signature|role|job|school|"
    r"university|department|industry|field|topic|event|team|manager|client|customer"
)
_BRACKET = re.compile(
    r"\[(?:(?:your|insert|recipient'?s?|company'?s?|client'?s?|customer'?s?|candidate'?s?|"
    r"hiring manager'?s?|employer'?s?|friend'?s?|person'?s?)\b[^\[\]\n]{0,40}"
    rf"|(?:[A-Z][a-z]+ ){{0,2}}(?:{_PLACEHOLDER_WORDS}))\](?!\()",
    re.I,
)
_TEMPLATE_VARIABLE = re.compile(
    r"\{\{[ \t]*[A-Za-z_][\w. -]{0,40}?[ \t]*\}\}"  # {{name}}
    r"|(?<![\w\\^_$%{}])\{[A-Za-z_][A-Za-z0-9_]{1,30}\}(?!\})"  # {name}, not LaTeX \text{x}, x^{n}, ${x}
    r"|<(?:NAME|FIRST_NAME|LAST_NAME|FULL_NAME|EMAIL|PHONE|ADDRESS|PERSON|USER|USERNAME|COMPANY|ORG|ORGANIZATION|"
    r"DATE|CITY|LOCATION|URL|NUMBER|ID|AUTHOR|TITLE|PLACEHOLDER|YOUR_NAME|RECIPIENT)>"  # anonymised slots
)


def template_variable(text: str, *, brackets: bool = True) -> str | None:
    """The first unfilled template variable in ``text`` outside code: ``{{name}}``,
    ``{name}``, an anonymised ``<NAME>`` and, with ``brackets``, ``[Your Name]`` or
    ``[Insert date]``."""
    if "{" not in text and "<" not in text and not (brackets and "[" in text):
        return None
    return _first_variable(without_code(text), brackets)


def _first_variable(prose: str, brackets: bool) -> str | None:
    patterns = (_TEMPLATE_VARIABLE, _BRACKET) if brackets else (_TEMPLATE_VARIABLE,)
    found = [m for m in (p.search(prose) for p in patterns) if m is not None]
    if not found:
        return None
    return min(found, key=lambda m: m.start()).group()


# A brace slot alone on its line under a letter's sign-off: the signature of a letter, not
# code, whatever the conversation is about.
_SIGNED_SLOT = re.compile(
    r"^[ \t]*(?:(?:best|kind|warm|warmest|kindest)(?:[ \t]+(?:regards|wishes))?|regards|sincerely|"
    r"yours(?:[ \t]+(?:sincerely|truly|faithfully))?|(?:sincerely|faithfully|truly)[ \t]+yours|"
    r"thanks|thank[ \t]+you|many[ \t]+thanks|cheers|respectfully|warmly|cordially|all[ \t]+the[ \t]+best|"
    r"with[ \t]+(?:thanks|gratitude|appreciation|love))[ \t]*[,.!]?[ \t]*\n(?:[ \t]*\n)?"
    r"[ \t]*(\{\{[ \t]*[A-Za-z_][\w. -]{0,40}?[ \t]*\}\}|\{[A-Za-z_][A-Za-z0-9_]{1,30}\})[ \t]*$",
    re.I | re.M,
)
# A prompt that asks for a template's own syntax: its reply rightly signs with a slot.
_TEMPLATE_PROMPT = re.compile(
    r"\b(?:templat\w*|jinja2?|handlebars|mustache|liquid|placeholders?|f-?strings?|format[ \t]+strings?|"
    r"str\.format|mail[ \t-]?merge|variables?|interpolat\w*|angular|vue|svelte|django)\b",
    re.I,
)


def _signed_slot(record: Record, prose: str) -> str | None:
    """The brace slot alone on a line under a sign-off in ``prose`` (``Best regards,`` then
    ``{{author}}``), unless the user turns ask for a template or its syntax."""
    if "\n" not in prose:
        return None
    m = _SIGNED_SLOT.search(prose)
    if m is None:
        return None
    users = "\n".join(t for r, t, _ in record.segments if r == "user")
    return None if _TEMPLATE_PROMPT.search(users) else m.group(1)


def _code_request(record: Record) -> bool:
    """True when the user turns ask about code or templates. The system prompt is left
    out: a tool-calling set's system prompt declares its functions in JSON, which says
    nothing about whether a reply may hold ``{name}``."""
    users = "\n".join(t for r, t, _ in record.segments if r == "user")
    return _CODE_PROMPT.search(users) is not None


@rule("FT310", "unfilled-template-variable", severity=WARNING)
def unfilled_template_variable(record: Record, *, brackets: bool = False) -> list[Issue] | None:
    """## What it does
    Checks assistant turns for template variables that were never filled in:
    `{{name}}`, `{{author}}`, `{name}` and anonymised slots such as `<NAME>`; with
    `brackets = true`, also bracketed slots such as `[Your Name]`, `[Insert date]` and
    `[Company Name]`. Code blocks and inline code are left out, and braces are not
    judged in replies to user prompts about code or templates (a language, Jinja,
    Handlebars, Angular, f-strings, format strings, JSON), except a brace slot alone on
    its line under a sign-off (`Best regards,` then `{{author}}`) when the prompt asks
    for no template, placeholder or variable; the check is off for a variable the
    prompt itself contains (the user asked for a template). An undesirable KTO completion and a
    rejected reply are not judged.

    Bracketed slots are off by default: a letter, an email or a contract drafted for a
    user who gave no names rightly leaves `[Your Name]` for them to fill (on ShareGPT,
    most of the 3.8% of replies with such a slot are that). Turn them on for a set
    whose replies should never hold one.

    ## Why is this bad?
    The data was generated from a template whose slots were to be filled before
    training (many public sets say so in their README) or anonymised without
    replacement. The model learns to sign its letters `[Your Name]` and to answer with
    `{{author}}`.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Who wrote this guide?"}, {"role": "assistant", "content": "It was written by {{author}}."}]}
    ```

    ## Fix
    Fill the slots with real or synthetic values, or drop the records.

    ## Options
    - `brackets` (bool, default false): also report bracketed slots (`[Your Name]`,
      `[Insert date]`, `[Company Name]`).
    """
    text = record.text
    if "{" not in text and "<" not in text and not (brackets and "[" in text):
        return None
    out = None
    for role, seg, path in record.segments:
        if role != "assistant" or not record.judged(path):
            continue
        if "{" not in seg and "<" not in seg and not (brackets and "[" in seg):
            continue
        prose = prose_of(record, seg, path)
        found = _first_variable(prose, brackets)
        if found is None:
            continue
        if found.lower() in prompt_text(record).lower():
            return None
        if found[0] == "{" and _code_request(record):
            # braces are code's own syntax; an anonymised <NAME> or a bracketed slot in
            # the prose of an answer about code is still unfilled, and so is a slot that
            # signs a letter
            found = _signed_slot(record, prose)
            if found is None or found.lower() in prompt_text(record).lower():
                return None
            count = 1  # the other braces are the code the prompt asked about
        else:
            count = len(_TEMPLATE_VARIABLE.findall(prose)) + (len(_BRACKET.findall(prose)) if brackets else 0)
        more = f" ({plural(count, 'unfilled variable')} in all)" if count > 1 else ""
        out = out or []
        out.append(Issue(f"{where(role, path)} contains the unfilled template variable {found!r}{more}", path=path))
    return out
