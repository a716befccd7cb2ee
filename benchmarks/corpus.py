"""A synthetic but realistic chat corpus for benchmarks: OpenAI-style ``messages`` records of
about 2 KB, multi-turn, with markdown, code, lists, some non-ASCII text and tool calls.

``python benchmarks/corpus.py N OUT`` writes N records. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "for",
    "on",
    "are",
    "as",
    "with",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "by",
    "not",
    "but",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "there",
    "use",
    "an",
    "each",
    "which",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "would",
    "make",
    "like",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "see",
    "number",
    "way",
    "could",
    "people",
    "than",
    "first",
    "been",
    "call",
    "who",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "model",
    "data",
    "training",
    "example",
    "answer",
    "question",
    "function",
    "value",
    "return",
    "error",
    "file",
    "list",
    "string",
    "number",
    "table",
    "user",
    "system",
    "prompt",
    "output",
    "input",
    "result",
    "because",
    "should",
    "where",
    "after",
    "before",
    "while",
    "between",
    "through",
    "during",
    "without",
    "within",
]
ACCENTED = ["café", "naïve", "résumé", "façade", "über", "straße", "niño", "jalapeño", "crème", "brûlée", "déjà", "vu"]
CJK = ["数据", "模型", "训练", "问题", "答案", "日本語", "テキスト", "한국어", "문장"]
EMOJI = ["🙂", "🚀", "✅", "📌", "🔥"]
SYSTEMS = [
    "You are a helpful assistant.",
    "You are a concise technical assistant. Answer with code when useful.",
    "You are a customer support agent for an online store. Be polite and brief.",
]


def _sentence(rng: random.Random, exotic: float) -> str:
    n = rng.randint(6, 22)
    words = [
        WORDS[min(int(rng.paretovariate(1.1)) - 1, len(WORDS) - 1)] if rng.random() < 0.6 else rng.choice(WORDS)
        for _ in range(n)
    ]
    if rng.random() < exotic:
        words.insert(rng.randrange(len(words)), rng.choice(ACCENTED + CJK + EMOJI))
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!"])


def _paragraph(rng: random.Random, sentences: int, exotic: float) -> str:
    return " ".join(_sentence(rng, exotic) for _ in range(sentences))


def _answer(rng: random.Random, exotic: float) -> str:
    parts = [_paragraph(rng, rng.randint(3, 7), exotic)]
    kind = rng.random()
    if kind < 0.25:
        code = "\n".join(
            f"    {rng.choice(WORDS)} = {rng.choice(WORDS)}({rng.randint(0, 99)})" for _ in range(rng.randint(2, 8))
        )
        parts.append(f"```python\ndef {rng.choice(WORDS)}():\n{code}\n```")
    elif kind < 0.5:
        parts.append("\n".join(f"{i + 1}. {_sentence(rng, exotic)}" for i in range(rng.randint(3, 6))))
    elif kind < 0.6:
        parts.append(f"## {rng.choice(WORDS).title()}\n\n{_paragraph(rng, 2, exotic)}")
    parts.append(_paragraph(rng, rng.randint(2, 5), exotic))
    return "\n\n".join(parts)


def record(rng: random.Random, i: int) -> dict:
    exotic = 0.15 if rng.random() < 0.3 else 0.0
    messages = [{"role": "system", "content": rng.choice(SYSTEMS)}]
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        messages.append({"role": "user", "content": _paragraph(rng, rng.randint(2, 7), exotic)})
        if rng.random() < 0.05:
            args = json.dumps({"query": rng.choice(WORDS), "limit": rng.randint(1, 20)})
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": f"call_{i}", "type": "function", "function": {"name": "search", "arguments": args}}
                    ],
                }
            )
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": f"call_{i}",
                    "content": json.dumps({"results": [_sentence(rng, 0) for _ in range(3)]}),
                }
            )
        messages.append({"role": "assistant", "content": _answer(rng, exotic)})
    return {"messages": messages, "metadata": {"id": i, "source": rng.choice(["web", "support", "synthetic"])}}


def write(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps(record(rng, i), ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


if __name__ == "__main__":
    write(Path(sys.argv[2]), int(sys.argv[1]))


def _mutate(rng: random.Random, text: str, changes: int) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), min(changes, len(words))):
        words[i] = "zq" + str(rng.randrange(10**9))
    return " ".join(words)


def write_planted(path: Path, n: int, seed: int = 0) -> dict:
    """A corpus of ``n`` records with planted exact duplicates (2%), near duplicates of the
    answer at a spread of similarities (5%) and conflicting answers to a repeated prompt
    (1%). Returns the ground truth (pairs by record index) and writes it beside ``path``."""
    rng = random.Random(seed)
    records: list[dict] = []
    truth: dict[str, list] = {"exact": [], "near": [], "conflict": []}
    while len(records) < n:
        i = len(records)
        roll = rng.random()
        if roll < 0.02 and records:
            j = rng.randrange(len(records))
            copy = json.loads(json.dumps(records[j]))
            if rng.random() < 0.5:  # same after whitespace normalisation
                copy["messages"][-1]["content"] = "  " + copy["messages"][-1]["content"].replace(" ", "  ", 3)
            records.append(copy)
            truth["exact"].append([j, i])
        elif roll < 0.07 and records:
            j = rng.randrange(len(records))
            copy = json.loads(json.dumps(records[j]))
            last = copy["messages"][-1]
            last["content"] = _mutate(rng, last["content"], rng.choice([1, 1, 2, 3, 4, 6, 8, 10]))
            records.append(copy)
            truth["near"].append([j, i])
        elif roll < 0.08 and records:
            j = rng.randrange(len(records))
            copy = json.loads(json.dumps(records[j]))
            copy["messages"] = copy["messages"][
                : next(k for k, m in enumerate(copy["messages"]) if m["role"] == "assistant") + 1
            ]
            copy["messages"][-1]["content"] = _answer(rng, 0.0)
            records.append(copy)
            truth["conflict"].append([j, i])
        else:
            records.append(record(rng, i))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    path.with_suffix(".truth.json").write_text(json.dumps(truth))
    return truth
