"""Locating paths in JSON text that is known to parse: a tokenizer that decodes only
object keys and skips what lies off the wanted paths, with the answer of
:func:`ftdata.jsonstrict.locate` (which it hands text with a duplicate key or deep
nesting to)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ftdata.findings import PathT
from ftdata.jsonstrict import Span, locate

_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]

# One token of valid JSON: a string, a structural character or a bare scalar.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]|[^\s{}\[\],:"]+')
# A container holding no container (a message, a content part): skipped in one match.
_STRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_FLAT = re.compile(rf'\{{(?:[^{{}}\[\]"]++|{_STRING})*+\}}|\[(?:[^{{}}\[\]"]++|{_STRING})*+\]')


def locate_parsed(text: str, paths: Iterable[PathT], *, max_depth: int = 64) -> dict[PathT, Span]:
    """:func:`locate` for a ``text`` that is known to hold one JSON value (it parsed),
    with the same answer, found by a tokenizer that decodes only object keys and skips
    what lies off the paths, instead of the strict parser building every value. Text that
    may not be valid JSON must go to :func:`locate`; text holding a duplicate key or
    nesting deeper than ``max_depth`` is handed to it here (where a path is written
    twice, the strict parser's answer counts).
    """
    targets = set(paths)
    if not targets:
        return {}
    if text.count("{") + text.count("[") > max_depth:
        return locate(text, targets, max_depth=max_depth)
    on_path = {t[:k] for t in targets for k in range(len(t) + 1)}
    spans: dict[PathT, Span] = {}
    # Open containers, innermost last: [keys seen (None: an array), path, start, key offset, length].
    stack: list[list[Any]] = []
    path: PathT | None = ()  # where the next value goes; None: off every path
    key_at: int | None = None  # the offset of that value's key
    want_key = False
    search = _TOKEN.search
    pos = 0
    while True:
        m = search(text, pos)
        if m is None:
            break
        pos = m.end()
        token = m.group()
        c = token[0]
        if c == ",":
            frame = stack[-1]
            if frame[0] is None:
                frame[4] += 1
                parent = frame[1]
                path = (*parent, frame[4]) if parent is not None else None
                key_at = None
            else:
                want_key = True
            continue
        if c == ":":
            continue
        if want_key and c == '"':
            key = token[1:-1] if "\\" not in token else _scanstring(token, 1, True)[0]
            frame = stack[-1]
            if key in frame[0]:
                return locate(text, targets, max_depth=max_depth)
            frame[0].add(key)
            parent = frame[1]
            path = (*parent, key) if parent is not None else None
            key_at = m.start()
            want_key = False
            continue
        if c == "{" or c == "[":
            if path is not None and path not in on_path:
                path = None
            if path is None:
                flat = _FLAT.match(text, m.start())
                if flat is not None:  # nothing in it is wanted
                    pos = flat.end()
                    continue
            if c == "{":
                stack.append([set(), path, m.start(), key_at, 0])
                want_key = True
            else:
                stack.append([None, path, m.start(), key_at, 0])
                path = (*path, 0) if path is not None else None
                key_at = None
            continue
        if c == "}" or c == "]":
            frame = stack.pop()
            path, start, key_at = frame[1], frame[2], frame[3]
            want_key = False
        else:
            start = m.start()
        if path is not None and path in targets:
            spans[path] = (key_at, start, pos)
            if len(spans) == len(targets):
                break
    return spans
