"""A cheap lexical check for two texts that ask opposite things although their embeddings
are close: a conversion and its inverse ("Celsius to Fahrenheit" / "Fahrenheit to
Celsius"), or a word in one that is the opposite of a word in the other ("encrypt" /
"decrypt", "increase" / "decrease"). Sentence embeddings place such pairs next to each
other, since they share almost every word."""

from __future__ import annotations

import re

from ftdata.similarity.scripts import word_tokens

_PAIRS = (
    ("encrypt", "decrypt"),
    ("encryption", "decryption"),
    ("encode", "decode"),
    ("encoding", "decoding"),
    ("compress", "decompress"),
    ("serialize", "deserialize"),
    ("serialise", "deserialise"),
    ("increase", "decrease"),
    ("increment", "decrement"),
    ("add", "remove"),
    ("add", "subtract"),
    ("addition", "subtraction"),
    ("multiply", "divide"),
    ("multiplication", "division"),
    ("maximum", "minimum"),
    ("max", "min"),
    ("maximize", "minimize"),
    ("maximise", "minimise"),
    ("largest", "smallest"),
    ("larger", "smaller"),
    ("biggest", "smallest"),
    ("highest", "lowest"),
    ("higher", "lower"),
    ("longest", "shortest"),
    ("longer", "shorter"),
    ("oldest", "newest"),
    ("oldest", "youngest"),
    ("first", "last"),
    ("ascending", "descending"),
    ("asc", "desc"),
    ("uppercase", "lowercase"),
    ("upper", "lower"),
    ("enable", "disable"),
    ("import", "export"),
    ("upload", "download"),
    ("open", "close"),
    ("start", "stop"),
    ("show", "hide"),
    ("lock", "unlock"),
    ("zip", "unzip"),
    ("expand", "collapse"),
    ("push", "pull"),
    ("buy", "sell"),
    ("win", "lose"),
    ("before", "after"),
    ("above", "below"),
    ("positive", "negative"),
    ("true", "false"),
    ("advantages", "disadvantages"),
    ("pros", "cons"),
    ("synonym", "antonym"),
    ("synonyms", "antonyms"),
    ("more", "less"),
    ("more", "fewer"),
    ("include", "exclude"),
    ("insert", "delete"),
    ("left", "right"),
    ("forward", "backward"),
    ("encrypting", "decrypting"),
    ("increasing", "decreasing"),
)
#: Opposites in Chinese, found as substrings (the text has no word boundaries to split at).
_CJK_PAIRS = (("加密", "解密"), ("增加", "减少"), ("最大", "最小"), ("上传", "下载"), ("压缩", "解压"))
_OPPOSITE: dict[str, frozenset[str]] = {}
for _a, _b in _PAIRS:
    _OPPOSITE[_a] = _OPPOSITE.get(_a, frozenset()) | {_b}
    _OPPOSITE[_b] = _OPPOSITE.get(_b, frozenset()) | {_a}
#: "X to Y", "X into Y", "from X to Y": the direction of a conversion or translation.
_DIRECTION = re.compile(r"(\w+)\s+(?:to|into|->|→)\s+(\w+)")
_SKIP = frozenset({"how", "want", "need", "like", "going", "used", "able", "back", "me", "you", "it", "is", "way"})


def _directions(text: str) -> set[tuple[str, str]]:
    return {(a, b) for a, b in _DIRECTION.findall(text) if a != b and a not in _SKIP and b not in _SKIP}


def opposite(a: str, b: str) -> str | None:
    """Why ``a`` and ``b`` ask opposite things (``'encrypt' / 'decrypt'``, ``'x to y' /
    'y to x'``), or None when no such signal is found. Both texts are compared
    case-folded; only words that one text has and the other lacks count."""
    a, b = a.casefold(), b.casefold()
    wa, wb = set(word_tokens(a)), set(word_tokens(b))
    only_a, only_b = wa - wb, wb - wa
    for word in sorted(only_a):
        found = _OPPOSITE.get(word)
        if found:
            hit = sorted(found & only_b)
            if hit:
                return f"{word!r} / {hit[0]!r}"
    for word, others in _CJK_PAIRS:
        if (word in a) != (word in b) and (others in a) != (others in b) and (word in a) == (others in b):
            return f"{word!r} / {others!r}" if word in a else f"{others!r} / {word!r}"
    da, db = _directions(a), _directions(b)
    for x, y in sorted(da - db):
        if (y, x) in db and (x, y) not in db:
            return f"'{x} to {y}' / '{y} to {x}'"
    return None


__all__ = ["opposite"]
