"""FT311-FT313: the quality of the text itself: its encoding, its language, and what it cites."""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

from ftdata.findings import Issue, Severity, plural
from ftdata.formats import TEXT
from ftdata.records import Record
from ftdata.registry import rule
from ftdata.rules.content import where
from ftdata.similarity import native

WARNING = Severity.WARNING

# --------------------------------------------------------------------------- FT311

_SPACE = re.compile(r"\s")
# Square and cubic ångströms ("Å²") are real text that reads as UTF-8 for "Ų".
_UNIT = re.compile("\u00c5[\u00b2\u00b3]")


def _redecoded(plan: list[Any]) -> bool:
    """Whether ftfy's plan re-decodes bytes as UTF-8: the mojibake this rule is about, not
    the C1-controls-as-Windows-1252 repair that FT301 reports."""
    for step in plan:
        kind, detail = step[0], step[1]
        if (kind == "decode" and detail.startswith("utf-8")) or (
            kind == "apply" and detail == "decode_inconsistent_utf8"
        ):
            return True
    return False


def _fragments(text: str, fixed: str) -> list[tuple[int, int, int, int]]:
    """Spans of ``text`` that ftfy rewrote, widened to whole words (at most 12 characters
    of context each side) so the message shows where they are, each with the span of
    ``fixed`` it became."""
    spans: list[tuple[int, int]] = []
    opcodes = difflib.SequenceMatcher(None, text, fixed, autojunk=False).get_opcodes()
    for tag, i1, i2, _j1, _j2 in opcodes:
        if tag == "equal" or _UNIT.fullmatch(text, i1, i2):
            continue
        start, end = i1, max(i2, i1 + 1)
        while start > 0 and i1 - start < 12 and not _SPACE.match(text[start - 1]):
            start -= 1
        while end < len(text) and end - i2 < 12 and not _SPACE.match(text[end]):
            end += 1
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))

    def in_fixed(k: int, end: bool) -> int:
        for tag, i1, i2, j1, j2 in opcodes:
            if i1 <= k < i2 or (end and k == i2):
                return j1 + (k - i1) if tag == "equal" else (j2 if end else j1)
        return len(fixed)

    return [(a, b, in_fixed(a, False), in_fixed(b, True)) for a, b in spans]


def mojibake_in(text: str) -> tuple[str, str, int] | None:
    """The first mojibake fragment of ``text``, what ftfy makes of it, and how many
    fragments there are; None when ``text`` has none."""
    # text without a pair of a UTF-8 lead byte read as Latin-1 and what a continuation byte
    # reads as cannot hold that kind of mojibake: ftfy (slow per call) sees few turns
    if text.isascii() or not native.mojibake_hint(text):
        return None
    import ftfy

    fixed, plan = ftfy.fix_encoding_and_explain(text)
    if fixed == text or not _redecoded(plan or []):
        return None
    spans = _fragments(text, fixed)
    if not spans:
        return None
    start, end, fixed_start, fixed_end = spans[0]
    return text[start:end], fixed[fixed_start:fixed_end], len(spans)


@rule("FT311", "mojibake", severity=WARNING, ranges={"min_count": (1, 100_000)})
def mojibake(record: Record, *, min_count: int = 1) -> list[Issue] | None:
    """## What it does
    Checks turn text for mojibake: UTF-8 that was decoded as Latin-1 or Windows-1252
    somewhere upstream, so that "it’s" reads `itâ€™s`, "café" `cafÃ©` and an em dash
    `â\\x80\\x94`. The detection and the repair shown in the message are ftfy's, which
    leaves accented words, Latin-1 text and other scripts alone. Not judged: the
    completion of an undesirable KTO example.

    ## Why is this bad?
    Scraped and re-exported data picks it up at one wrong decode, and it is easy to miss
    among correct text. The model learns to write `Ã©` for "é", and the broken
    sequences cost several rare tokens each.

    ## Example
    ```json
    {"prompt": "Where is the caf\\u00c3\\u00a9?", "completion": "It\\u00e2\\u20ac\\u2122s on the corner."}
    ```

    ## Fix
    Decode the source as UTF-8, or repair the text with `ftfy.fix_text`.

    ## Options
    - `min_count` (int, default 1): the fewest mojibake fragments a turn must hold to be
      reported.
    """
    joined = record.text
    if joined.isascii() or not native.mojibake_hint(joined):
        return None
    out = None
    for role, text, path in record.segments:
        found = mojibake_in(text)
        if found is None or found[2] < min_count or not record.judged(path):
            continue
        fragment, repaired, count = found
        more = f" ({plural(count, 'fragment')} in this turn)" if count > 1 else ""
        out = out or []
        out.append(
            Issue(f"{where(role, path)} has mojibake {fragment!r}, which ftfy reads as {repaired!r}{more}", path=path)
        )
    return out


# --------------------------------------------------------------------------- FT312

_CODE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]*`|<[^<>\n]{1,200}>|https?://\S+|\S+@\S+\.\w+", re.S)
# Letters of each script; Han, kana and Hangul hold a word in one or two characters, so
# they weigh as much as a short Latin word when scripts are mixed.
_SCRIPTS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("Latin", re.compile("[A-Za-z\u00c0-\u024f\u1e00-\u1eff]"), 1),
    ("Han", re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"), 3),
    ("Kana", re.compile("[\u3040-\u30ff]"), 3),
    ("Hangul", re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]"), 3),
    ("Cyrillic", re.compile("[\u0400-\u04ff]"), 1),
    ("Greek", re.compile("[\u0370-\u03ff]"), 1),
    ("Arabic", re.compile("[\u0600-\u06ff\u0750-\u077f]"), 1),
    ("Hebrew", re.compile("[\u0590-\u05ff]"), 1),
    ("Devanagari", re.compile("[\u0900-\u097f]"), 1),
    ("Thai", re.compile("[\u0e00-\u0e7f]"), 1),
)
_ASCII_LETTER = re.compile("[A-Za-z]")
#: How much of a text py3langid reads: its cost grows with the length, its answer hardly.
_SAMPLE = 1000
# Languages written in the Latin script that the identifier is asked to choose between:
# the widely used ones, so that rare, closely related languages do not win on a few words.
_LATIN = ("en", "fr", "de", "es", "pt", "it", "nl", "sv", "da", "no", "fi", "pl", "cs", "tr", "id", "vi", "ro", "hu")
_NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "pl": "Polish",
    "cs": "Czech",
    "tr": "Turkish",
    "id": "Indonesian",
    "vi": "Vietnamese",
    "ro": "Romanian",
    "hu": "Hungarian",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "Cyrillic": "Cyrillic script",
    "Greek": "Greek",
    "Arabic": "Arabic script",
    "Hebrew": "Hebrew",
    "Devanagari": "Devanagari script",
    "Thai": "Thai",
}
# A prompt that asks for a translation, or names a language, may well be answered in
# another language than its own. The question itself is searched for all of these; the
# earlier turns (a system prompt, a story to read) only for a translation, a language as
# such, or a language named as the one to use ("answer in French"): a story that mentions
# Czech, or "an AI language model", does not ask for another language.
_LANGUAGE_NAMES = (
    r"english|chinese|mandarin|cantonese|french|german|spanish|portuguese|italian|dutch|swedish|danish|"
    r"norwegian|finnish|polish|czech|turkish|indonesian|malay|vietnamese|romanian|hungarian|japanese|korean|"
    r"russian|ukrainian|greek|arabic|hebrew|hindi|urdu|bengali|persian|farsi|thai|latin|tagalog|filipino|"
    r"cebuano|swahili|afrikaans|anglais|français|francais|inglés|ingles|español|"
    r"espanol|englisch|deutsch|inglese|italiano|inglês|português|engels|nederlands|английск|русск|tiếng"
)
_TRANSLATION = (
    r"translat|tradu[cizt]|übersetz|vertaal|перев|翻译|翻譯|译成|譯成|翻訳|번역|dịch|"
    r"\b(?:bilingual|pinyin|romaji)\b|\blanguages?\b(?!\s+models?\b)|"
    r"英文|英语|英語|中文|汉语|漢語|华语|日语|日語|日文|韩语|韓語|法语|德语|西班牙语|俄语|语言|語言|拼音|"
    r"영어|한국어|중국어|일본어|언어"
)
_LANGUAGE_TASK = re.compile(rf"{_TRANSLATION}|\b(?:{_LANGUAGE_NAMES})\b")
_LANGUAGE_ASKED = re.compile(
    rf"{_TRANSLATION}|\b(?:in|into|to|from|speak|speaks|reply|respond|answer|write)\s+(?:the\s+)?(?:{_LANGUAGE_NAMES})\b"
)


#: The most a short question's odds of being in the reply's language may be for the
#: question to be taken as in another language.
_RULED_OUT = 0.01

_QUOTED = re.compile(r"[\"“「『'‘]([^\"”」』'’\n]{1,80})[\"”」』'’]")


def _script(text: str) -> tuple[str | None, int]:
    """The dominant script of ``text`` (None when no script holds 70% of its weighted
    letters) and the weighted letter count."""
    if text.isascii():
        # Only the Latin pattern can match ASCII: one count instead of ten.
        latin = len(_ASCII_LETTER.findall(text))
        return ("Latin", latin) if latin else (None, 0)
    weights = []
    for name, pattern, weight in _SCRIPTS:
        count = len(pattern.findall(text))
        if count:
            weights.append((count * weight, name))
    total = sum(w for w, _ in weights)
    if not total:
        return None, 0
    best, name = max(weights)
    if name == "Han" or name == "Kana":
        # Japanese mixes kana with Han; either alone or together is one CJK block here.
        cjk = sum(w for w, n in weights if n in ("Han", "Kana"))
        if cjk >= 0.7 * total:
            kana = sum(w for w, n in weights if n == "Kana")
            return ("ja" if kana >= 0.1 * cjk else "zh"), total
        return None, total
    if best < 0.7 * total:
        return None, total
    return {"Hangul": "ko"}.get(name, name), total


def _latin_odds(text: str) -> dict[str, float]:
    """How likely ``text`` is in each common Latin-script language, by py3langid's own
    calibration (log-probabilities scaled by the square root of the length), summing to 1."""
    import py3langid

    sample = text[:_SAMPLE]
    ranked = dict(py3langid.rank(sample))
    scores = [(ranked.get(code, -math.inf), code) for code in _LATIN]
    best = max(scores)[0]
    scale = 1.0 / math.sqrt(len(sample.encode()) or 1)
    odds = {code: math.exp((s - best) * scale) for s, code in scores if s > -math.inf}
    total = sum(odds.values())
    return {code: p / total for code, p in odds.items()} if total else {}


def _latin_language(text: str, min_confidence: float) -> str | None:
    """The Latin-script language of ``text`` among the common ones, or None when the
    identifier is not confident."""
    odds = _latin_odds(text)
    if not odds:
        return None
    code = max(odds, key=lambda c: (odds[c], c))
    return code if odds[code] >= min_confidence else None


def language_of(text: str, *, min_chars: int = 40, min_confidence: float = 0.9) -> str | None:
    """The language of ``text`` (an ISO 639-1 code, or a script name for the scripts that
    are not told apart by language), None when it is too short, mixed or uncertain.
    Code, inline code, markup and URLs are not counted."""
    prose = (
        _CODE.sub(" ", text) if ("`" in text or "<" in text or "~" in text or "://" in text or "@" in text) else text
    )
    script, letters = _script(prose)
    if script is None or letters < min_chars:
        return None
    if script != "Latin":
        return script
    return _latin_language(prose, min_confidence)


def _switch(prose: str, lang: Any, least: int) -> tuple[str, str] | None:
    """The two languages of a reply that is in one language up to some line and in
    another after it, each part holding at least ``least`` letters; None otherwise."""
    lines = [line for line in prose.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    # The first and the last line with a language decide whether there can be a switch:
    # the lines between are identified only when those two differ.
    first = next(((i, c) for i, c in ((i, lang(line)) for i, line in enumerate(lines)) if c is not None), None)
    if first is None:
        return None
    last = next(
        ((i, c) for i, c in ((i, lang(lines[i])) for i in range(len(lines) - 1, first[0], -1)) if c is not None),
        None,
    )
    if last is None or first[1] == last[1]:
        return None
    one, two = first[1], last[1]
    cut = last[0]
    while cut > first[0] + 1 and lang(lines[cut - 1]) != one:
        cut -= 1
    head, tail = "\n".join(lines[:cut]), "\n".join(lines[cut:])
    if lang(head, least) == one and lang(tail, least) == two:
        return one, two
    return None


@rule(
    "FT312",
    "language-mismatch",
    severity=WARNING,
    default=False,
    ranges={"min_chars": (1, 1_000_000), "min_confidence": (0.0, 1.0)},
)
def language_mismatch(record: Record, *, min_chars: int = 40, min_confidence: float = 0.9) -> list[Issue] | None:
    """## What it does
    Checks that each assistant reply is in the language of its prompt, and does not
    switch language partway (English for half a reply, then Chinese). Scripts are told
    apart by their letters; Latin-script languages by `py3langid` among the common
    ones. Code, inline code, markup and URLs are not counted, and texts with fewer than
    `min_chars` letters (a Han, kana or Hangul character counts three), a mix of scripts
    or an uncertain language are not judged, except a question of a few words or of an
    uncertain language for which the identifier all but rules out the reply's language
    (under 1%, its best guess over 50%). A question that asks
    for a translation or names a language, earlier turns that ask for one or name the
    language to answer in ("answer in Spanish"), and a prompt that itself holds a
    passage in the reply's language are left alone. Tool calls and their results belong
    to the question the next reply answers. Opt-in: identifying languages costs more
    than the default rules together.

    ## Why is this bad?
    A reply in another language than its question, or one that drifts into another
    language, comes from a translation or generation pipeline that went wrong; the model
    learns to answer in the wrong language or to switch languages mid-answer.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "How do I boil an egg properly?"}, {"role": "assistant", "content": "把鸡蛋放进冷水里，水开后煮八分钟，然后放进冷水中冷却。"}]}
    ```

    ## Fix
    Regenerate or retranslate the reply, or drop the record.

    ## Options
    - `min_chars` (int, default 40): the fewest letters a text needs to be judged.
    - `min_confidence` (float, default 0.9): how sure the identifier must be of a
      Latin-script language.
    """
    if record.format == TEXT:
        return None
    out = None
    earlier: list[tuple[str, str]] = []
    for role, text, path in record.segments:
        if role != "assistant" or not earlier or not record.judged(path):
            earlier.append((role, text))
            continue
        # The turns since the last reply are what this reply answers; a tool call and its
        # result are not a reply, but part of what the next one answers.
        last = len(earlier)
        while last > 0 and (earlier[last - 1][0] != "assistant" or not _prose(earlier[last - 1][1]).strip()):
            last -= 1
        question = "\n".join(t for _, t in earlier[last:])
        before = "\n".join(t for _, t in earlier[:last])
        history = f"{before}\n{question}" if last else question
        earlier.append((role, text))
        # A reply with too few letters is judged neither whole nor as two parts: no need
        # to look at its prompt.
        if _script(_prose(text))[1] < min_chars:
            continue
        # Lower-cased text against lower-case patterns: much faster than re.I. Every
        # match in the question is a match of _LANGUAGE_TASK too.
        if _LANGUAGE_TASK.search(question.lower()) or (last and _LANGUAGE_ASKED.search(before.lower())):
            continue
        issue = _mismatch(question, history, text, min_chars, min_confidence)
        if issue:
            out = out or []
            out.append(Issue(f"{where(role, path)} {issue}", path=path))
    return out


def _mismatch(question: str, history: str, reply: str, min_chars: int, min_confidence: float) -> str | None:
    """Why ``reply`` is in the wrong language for the turns before it, or None."""

    def lang(text: str, least: int = min_chars) -> str | None:
        return language_of(text, min_chars=least, min_confidence=min_confidence)

    prose = _prose(reply)
    said = lang(prose)
    # Only the turns since the last reply say what language is asked for: a question that
    # is code or a few words is not judged, whatever language the conversation was in.
    # Only a reply in a known language is compared with its question.
    asked = lang(question) if said is not None and question.strip() else None
    reply_script, reply_letters = _script(prose)
    question_script, question_letters = _script(_prose(question))
    if asked is None and said is not None and question_letters >= min(10, min_chars) and question_script:
        if question_script != reply_script:
            # A short question still has a script: "Describe yellow in 3 words" is not Chinese.
            asked = question_script
        elif said in _LATIN and question_script == "Latin":
            # Or a language: py3langid tells English from French on a few words, and it is
            # believed (on a short or uncertain question) only when it all but rules out
            # the reply's language.
            odds = _latin_odds(_prose(question))
            best = max(odds, key=lambda c: (odds[c], c)) if odds else None
            if best is not None and best != said and odds[best] >= 0.5 and odds.get(said, 0.0) < _RULED_OUT:
                asked = best
    if said is not None and asked is not None and said != asked:
        # A prompt that quotes a passage in the reply's language (a system prompt in
        # English before a Chinese question, a French text to correct) may be answered in it.
        parts = [p for p in history.splitlines() if p.strip()]
        if any(lang(p, max(1, min_chars // 2)) == said for p in parts):
            return None
        # Words quoted in the prompt ("use 'opulent' in a sentence") set the reply's
        # language: by their script when the scripts differ, else by their language (the
        # quoted names and values of a function call do not make a French reply right).
        quoted = _QUOTED.findall(history)
        if reply_script != question_script:
            if any(_script(q)[0] == reply_script for q in quoted):
                return None
        elif any(lang(q, max(1, min_chars // 4)) == said for q in quoted):
            return None
        shown = _NAMES.get(asked, "the Latin script" if asked == "Latin" else asked)
        return f"is in {_NAMES.get(said, said)} but its prompt is in {shown}"
    # Each part must be long enough to stand alone: a translation in brackets or a line
    # of the original after a poem's translation is not a switch. A reply with fewer
    # letters than two such parts has none to look for.
    if reply_letters < 2 * 3 * min_chars:
        return None
    switch = _switch(prose, lang, 3 * min_chars)
    if switch is not None:
        return f"switches from {_NAMES.get(switch[0], switch[0])} to {_NAMES.get(switch[1], switch[1])} partway"
    return None


def _prose(text: str) -> str:
    """``text`` without code, inline code, markup and URLs: what its language is judged on.
    A reply that is a JSON value (a function call) has none."""
    if text.lstrip()[:1] in ("{", "["):
        return ""
    if "`" in text or "<" in text or "~" in text or "://" in text or "@" in text:
        return _CODE.sub(" ", text)
    return text


# --------------------------------------------------------------------------- FT313

# A reply that cites a document, a passage or a picture in so many words. The noun
# decides what the turns before the reply must hold: a document or media noun a passage
# of ``min_context_chars`` (a transcript, a description) or an attachment, a text noun
# any material besides the instruction.
_DOCUMENT = r"article|passage|excerpt|document|essay|report|transcript|paper|story"
_TEXT = r"text|paragraph|email|letter|poem|context|sentence"
_MEDIA = r"image|picture|photo(?:graph)?|screenshot|video|audio|recording"
_CITES = re.compile(
    r"\b(?:"
    rf"the\s+(?:above|provided|aforementioned|attached|accompanying|supplied|referenced|preceding)\s+(?P<a>{_DOCUMENT}|{_TEXT}|{_MEDIA})"
    rf"|the\s+given\s+(?P<b>{_DOCUMENT}|{_MEDIA})"
    rf"|(?:the|this)\s+(?P<c>{_DOCUMENT}|{_TEXT}|{_MEDIA})\s+(?:above|you\s+(?:provided|shared|gave|sent|attached|linked|uploaded))"
    rf"|according\s+to\s+the\s+(?P<d>{_DOCUMENT}|{_TEXT})"
    rf"|(?:the|this)\s+(?P<e>{_DOCUMENT})\s+(?:says|states|mentions|discusses|highlights|argues|talks\s+about|focuses\s+on|"
    r"emphasi[sz]es|concludes|suggests)"
    rf"|(?:the|this)\s+(?P<f>{_MEDIA})\s+(?:shows|depicts)"
    r")\b",
    re.I,
)
# A reply or a prompt that brings in a document of its own ("write a story", "a 2019
# report by ...") and then talks about it.
_INTRODUCED = r"\b(?:a|an|another|one|your|my|short|new)\s+(?:[\w-]+\s+){{0,3}}(?:{noun})"
_TASK = re.compile(r"\b(?:write|create|generate|compose|draft|tell|make|find|list|recommend|suggest|give)\b", re.I)
_DOCUMENT_NOUN = re.compile(_DOCUMENT, re.I)
_NOUNS = tuple(
    sorted({re.sub(r"\(.*", "", n).replace("\\s?", " ") for n in f"{_DOCUMENT}|{_TEXT}|{_MEDIA}".split("|")})
)
_MEDIA_NOUN = re.compile(_MEDIA, re.I)
# Material besides the instruction: a second line, a colon or a quotation followed by text.
_MATERIAL = re.compile(r"\n\s*\S.{9}|:\s*\S.{9}|[\"“«「'][^\"”»」']{10}", re.S)
# Markers that stand for an attachment the record does not carry.
_ATTACHMENT = re.compile(
    r"<\s*(?:picture|image|photo|file|video|audio)\s+attached\s*>|\[\s*(?:picture|image|photo|img|attachment|file|video|audio)"
    r"(?:\s+attached)?\s*\]|<\s*(?:image|img|video|audio|picture|photo)\s*/?>",
    re.I,
)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.I)
# An instruction about the URL itself (its domain, its parts), not about what it links to.
_ABOUT_URL = re.compile(
    r"domain|pars(?:e|ing)|valid|shorten|protocol|regex|regular expression|encode|decode|extract", re.I
)
_MEDIA_KEYS = ("images", "image", "videos", "video", "audios", "audio")


def _has_media(record: Record) -> bool:
    """Whether the record carries images, audio or video (a media field, or a non-text
    content part)."""
    data = record.data
    if type(data) is not dict:
        return False
    if any(data.get(key) for key in _MEDIA_KEYS):
        return True
    for message in record.messages:
        turn = message.data
        content = turn.get("content") if type(turn) is dict else None
        if type(content) is list and any(type(p) is dict and p.get("type") not in (None, "text") for p in content):
            return True
    return False


def _only_reference(text: str) -> str | None:
    """The URL or attachment marker that is the whole of ``text``, or None."""
    stripped = text.strip()
    # Only a text that starts with a URL or a marker can be nothing else.
    if not stripped or len(stripped) > 500 or stripped[0] not in "<[hHwW(\"'":
        return None
    for pattern in (_URL, _ATTACHMENT):
        found = pattern.findall(stripped)
        if found and not pattern.sub("", stripped).strip(" \t\n,;.:()[]<>\"'"):
            return found[0]
    return None


@rule("FT313", "missing-context", severity=Severity.INFO, ranges={"min_context_chars": (0, 1_000_000)})
def missing_context(record: Record, *, min_context_chars: int = 200) -> list[Issue] | None:
    """## What it does
    Checks for references to context the model will not see: a reply that cites "the
    article", "the passage above", "the given text" or "the image" when the turns before
    it hold fewer than `min_context_chars` characters and the record carries no media;
    and a prompt whose only input is a URL or an attachment marker (`<Picture Attached>`,
    `[image]`, `<image>` without an image).

    ## Why is this bad?
    The writer of the reply saw a document the record does not hold, or invented one:
    the model learns to answer about texts it was never given, and to pretend it can
    open links and pictures. The original Alpaca data has hundreds of such records (the
    first problem its cleaned edition fixed).

    ## Example
    ```json
    {"instruction": "Summarize the article.", "input": "https://example.com/news/123", "output": "The article describes a new bridge."}
    ```

    ## Fix
    Put the passage or the media into the record, or drop it.

    ## Options
    - `min_context_chars` (int, default 200): how much text before a reply counts as
      a passage it may cite.
    """
    if record.format == TEXT:
        return None
    joined = record.text
    has_url = "://" in joined or "www." in joined
    has_marker = "<" in joined or "[" in joined
    if not has_url and not has_marker:
        return _cited(record, min_context_chars)
    return _walk(record, has_url, has_marker, min_context_chars)


def _walk(record: Record, has_url: bool, has_marker: bool, min_context_chars: int) -> list[Issue] | None:
    """:func:`missing_context` turn by turn, for any record (``has_url``, ``has_marker``:
    whether its text holds a URL, a ``<`` or a ``[``); :func:`_cited` is the same walk
    for records with neither, stopped early."""
    media: bool | None = None
    out = None
    before: list[str] = []
    for role, text, path in record.segments:
        if role != "assistant":
            if (has_url or has_marker) and role == "user":
                found = _only_reference(text)
                if found is not None and not (before and _ABOUT_URL.search(before[-1])):
                    if media is None:
                        media = _has_media(record)
                    if not media or _URL.match(found):
                        kind = "URL" if _URL.match(found) else "attachment marker"
                        out = out or []
                        out.append(
                            Issue(
                                f"{where(role, path)} is only the {kind} {found!r}: the model cannot open it", path=path
                            )
                        )
            before.append(text)
            continue
        # A reply to a URL-only or marker-only input is reported once, with the input.
        # The citation search runs only on replies whose prompt is short, and only when
        # one of the nouns is there: regular expressions over every reply cost too much.
        short = has_url or sum(map(len, before)) < min_context_chars  # URLs do not count as context
        if before and out is None and short and record.judged(path):
            lower = text.lower()
            m = _CITES.search(text) if any(noun in lower for noun in _NOUNS) else None
            if m is not None:
                if media is None:
                    media = _has_media(record)
                if not media and not _provided(m, text, before, min_context_chars):
                    out = out or []
                    size = sum(len(t) for t in before)
                    out.append(
                        Issue(
                            f"{where(role, path)} cites {m.group()!r} but the turns before it hold "
                            f"{plural(size, 'character')} and no attachment",
                            path=path,
                        )
                    )
        before.append(text)
    return out


def _cited(record: Record, min_context_chars: int) -> list[Issue] | None:
    """What :func:`missing_context` reports on a record without URLs or markers: the first
    reply that cites a document the turns before it do not hold. A reply is judged only
    while those turns add up to fewer than ``min_context_chars`` characters, so the walk
    stops at the first turn that makes them reach it (in most records, the prompt)."""
    segments = record.segments
    size = 0
    for k, (role, text, path) in enumerate(segments):
        if size >= min_context_chars:
            return None
        if role == "assistant" and k and record.judged(path):
            lower = text.lower()
            m = _CITES.search(text) if any(noun in lower for noun in _NOUNS) else None
            if m is not None and not _has_media(record):
                before = [s[1] for s in segments[:k]]
                if not _provided(m, text, before, min_context_chars):
                    return [
                        Issue(
                            f"{where(role, path)} cites {m.group()!r} but the turns before it hold "
                            f"{plural(size, 'character')} and no attachment",
                            path=path,
                        )
                    ]
        size += len(text)
    return None


def _provided(cite: re.Match[str], reply: str, before: list[str], min_context_chars: int) -> bool:
    """Whether the turns ``before`` a reply could hold what ``cite`` refers to, or the
    reply or its prompt brought the thing in itself."""
    noun = next(g for g in cite.groups() if g)
    prompt = [_URL.sub("", t).strip() for t in before]
    size = sum(len(t) for t in prompt)
    if size >= min_context_chars:
        return True
    joined = "\n".join(prompt)
    # "The story concludes" in a story the reply was asked to write, "according to the
    # story" of a holiday: the reply's own material, unless the prompt names the thing.
    named = noun.lower() in joined.lower() or any(_URL.search(t) for t in before)
    if not named and (cite.lastgroup in ("d", "e", "f") or _TASK.search(joined)):
        return True
    introduced = re.compile(_INTRODUCED.format(noun=re.escape(noun)), re.I)
    if introduced.search(reply, 0, cite.start()) or (_TASK.search(joined) and introduced.search(joined)):
        return True
    if _DOCUMENT_NOUN.fullmatch(noun) or _MEDIA_NOUN.fullmatch(noun):
        return False
    # A short text may be given inline: a second turn or field, a line, a quotation.
    return size >= 60 or sum(1 for t in prompt if t) > 1 or any(_MATERIAL.search(t) for t in prompt)
