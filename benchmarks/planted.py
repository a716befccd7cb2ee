"""Planted cases for the reply rules (FT305, FT309, FT310): each ``plant_<code>`` takes a
real record and a seeded ``random.Random`` and returns a copy whose last assistant reply
carries one instance of the problem, for precision and recall harnesses to import.

    python benchmarks/planted.py     # recall of each rule over 20+ planted real records
"""

from __future__ import annotations

import copy
import random
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _reply(record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The (container, key) of the last assistant text of a messages, ShareGPT or Alpaca record."""
    for key, role_key, text_key, roles in (
        ("messages", "role", "content", ("assistant",)),
        ("conversations", "from", "value", ("gpt", "assistant")),
    ):
        turns = record.get(key)
        if isinstance(turns, list):
            for turn in reversed(turns):
                if isinstance(turn, dict) and turn.get(role_key) in roles and isinstance(turn.get(text_key), str):
                    return turn, text_key
    return record, "output" if "output" in record else "completion"


def plant_ft309(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The reply goes on looping: a short phrase, one of its sentences, a markup line, a
    run of one character, a table row written over and over on one line, or (the reply
    cut short) an opening followed by a short loop."""
    out = copy.deepcopy(record)
    turn, key = _reply(out)
    text = str(turn.get(key, ""))
    sentences = [s for s in text.replace("\n", " ").split(". ") if 20 < len(s) < 200] or ["I hope this helps"]
    kind = rng.randrange(6)
    if kind == 0:
        loop = rng.choice(["Thank you! ", "I'm sorry. ", "ha ", "Yes yes. ", "OK. "]) * rng.randint(80, 300)
    elif kind == 1:
        loop = (rng.choice(sentences).strip() + ". ") * rng.randint(25, 60)
    elif kind == 2:
        loop = rng.choice(["<br>\n", "</div>\n", "| |\n", "> \n"]) * rng.randint(60, 200)
    elif kind == 3:
        loop = rng.choice("0x.!a") * rng.randint(60, 3000)
    elif kind == 4:
        row = "| " + " | ".join(rng.choice(sentences).split()[:4]) + " | "
        loop = "| Item | Detail |\n| --- | --- |\n" + row * rng.randint(25, 60)
    else:
        opening = rng.choice(["Sure!", "Of course.", "Here you go:", "Haha, good one."])
        unit, low, high = rng.choice([("ha ", 25, 60), ("lol ", 25, 60), ("Thank you! ", 12, 20), ("> \n", 40, 70)])
        turn[key] = f"{opening} {unit * rng.randint(low, high)}"
        return out
    turn[key] = text + "\n" + loop
    return out


def plant_ft305(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The reply goes on, in the same line, into the user's turn under a common label."""
    out = copy.deepcopy(record)
    turn, key = _reply(out)
    text = str(turn.get(key, "")).rstrip()
    if not text.endswith((".", "!", "?")):
        text += "."
    label = rng.choice(["User", "Human", "USER", "Assistant"])
    turn[key] = f"{text} {label}: {rng.choice(['Thanks, that works.', 'Can you say more?', 'Great, and what else?'])}"
    return out


def _prompt(record: dict[str, Any]) -> str:
    """The user's side of a messages, ShareGPT or Alpaca record, joined."""
    for key, role_key, text_key, roles in (
        ("messages", "role", "content", ("user",)),
        ("conversations", "from", "value", ("human", "user")),
    ):
        turns = record.get(key)
        if isinstance(turns, list):
            return "\n".join(
                str(t.get(text_key) or "") for t in turns if isinstance(t, dict) and t.get(role_key) in roles
            )
    return f"{record.get('instruction') or ''}\n{record.get('input') or record.get('prompt') or ''}"


def plant_ft310(record: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    """An unfilled slot in the reply: ``{{name}}``, ``{name}`` or ``<NAME>`` (bracketed
    slots such as ``[Your Name]`` are checked only with FT310's ``brackets`` option).
    None for a prompt that asks for a template: its reply rightly keeps slots."""
    if re.search(r"\btemplates?\b", _prompt(record), re.I):
        return None
    out = copy.deepcopy(record)
    turn, key = _reply(out)
    slot = rng.choice(["{{name}}", "{{author}}", "{user_name}", "{{ customer_name }}", "{date}", "<NAME>", "<AUTHOR>"])
    turn[key] = f"{turn.get(key, '')}\n\nBest regards,\n{slot}"
    return out


def main() -> None:
    import orjson

    import ftdata

    root = Path(__file__).resolve().parent / "data" / "real" / "llamafactory-0.9.5" / "data"
    sources = [
        orjson.loads((root / name).read_bytes()) for name in ("alpaca_en_demo.json", "glaive_toolcall_en_demo.json")
    ]
    rng = random.Random(0)
    base = [r for rows in sources for r in rows[:200]]
    rng.shuffle(base)
    for code, plant in (("FT305", plant_ft305), ("FT309", plant_ft309), ("FT310", plant_ft310)):
        pairs = [(r, plant(r, random.Random(i))) for i, r in enumerate(base[:60])]
        chosen = [r for r, out in pairs if out is not None]
        planted = [out for _, out in pairs if out is not None]
        clean = ftdata.lint(chosen, select=[code], config=False)
        dirty = {f.index for f in clean}
        report = ftdata.lint(planted, select=[code], config=False)
        hit = {f.index for f in report} - dirty
        eligible = len(chosen) - len(dirty)
        print(f"{code}: {len(hit)}/{eligible} planted cases found (recall {len(hit) / eligible:.2f})")


if __name__ == "__main__":
    main()
