"""FT311-FT313 on real inputs: mojibake, language mismatch and missing context."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import ftdata
from benchmarks.planted_text import mojibake_of
from ftdata import registry
from ftdata.rules.text_quality import _switch, language_of, mojibake_in
from tests.conftest import run_cli


def _write(tmp_path: Path, records: list[dict]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _chat(user: str, assistant: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def _codes(path: Path, code: str) -> list[str]:
    return [f.message for f in ftdata.lint(path, select=[code], config=False) if f.code == code]


def test_mojibake_fragment_and_repair_are_reported() -> None:
    assert mojibake_in("Itâ€™s open.") == ("Itâ€™s", "It’s", 1)
    fragment, repaired, count = mojibake_in("a â\x80\x94 b and cafÃ© au lait")
    assert (fragment, repaired, count) == ("â\x80\x94", "—", 2)


def test_mojibake_quiet_on_legitimate_text() -> None:
    for text in (
        "Le café est à côté de l'hôtel « Le Régent ».",
        "Größe über alles, München 310 km².",
        "São Paulo, ação, coração.",
        "Tiếng Việt có dấu thanh điệu.",
        "北京大约有两千一百万人口。",
        "A surface of 15 Å² per site, ±10% at 20 °C, £5 or €6 — it’s fine.",
    ):
        assert mojibake_in(text) is None, text


_LATIN1_WORDS = st.lists(
    st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzàáâãäåçèéêëìíîïñòóôõöùúûüýÿ"), min_size=1, max_size=10),
    min_size=1,
    max_size=12,
).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(_LATIN1_WORDS)
def test_accented_words_are_never_mojibake(text: str) -> None:
    assert mojibake_in(text) is None


def _beyond_ftfy(text: str) -> bool:
    """ftfy leaves "Ã¥" alone at the very start of a text ("Ã¥r" for "år" is a whole
    turn's only evidence there); every other accented letter, and "å" anywhere else, it
    repairs."""
    rest = text[1:] if text.startswith("å") else text
    return rest.isascii()


@settings(max_examples=100, deadline=None)
@given(_LATIN1_WORDS.filter(lambda t: not _beyond_ftfy(t)))
def test_accented_words_decoded_wrongly_are_found(text: str) -> None:
    found = mojibake_in(mojibake_of(text))
    assert found is not None
    fragment, repaired, _count = found
    # the message shows the repair of the fragment it quotes, taken from ftfy's fix of the whole turn
    assert fragment == mojibake_of(repaired)
    assert repaired in text


def test_a_leading_a_ring_is_ftfys_known_miss() -> None:
    assert mojibake_in(mojibake_of("år")) is None
    assert mojibake_in(mojibake_of("ett år")) is not None


def test_mojibake_rule_points_at_the_turn(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [_chat("Where is the café?", mojibake_of("It’s on the corner.")), _chat("Où est la gare ?", "À côté du café.")],
    )
    report = ftdata.lint(path, select=["FT311"], config=False)
    assert [(f.index, f.path) for f in report] == [(0, ("messages", 1, "content"))]
    assert "ftfy reads as 'It’s'" in report.findings[0].message


def test_mojibake_through_the_cli(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"prompt": "Describe Munich.", "completion": mojibake_of("München is in Bavaria.")}])
    result = run_cli("lint", path, "--isolated", "--select", "FT311", "--fail-on", "warning")
    assert result.returncode == 1, result.stderr
    assert "FT311" in result.stdout
    assert "MÃ¼nchen" in result.stdout


def test_language_of_scripts_and_short_texts() -> None:
    assert language_of("How do I boil an egg so that the yolk stays soft in the middle?") == "en"
    assert language_of("把鸡蛋放进沸水里煮六分钟，然后立刻放进冷水里冷却，这样蛋黄就会保持柔软。") == "zh"
    assert language_of("Hi there") is None
    assert language_of("```python\nprint('a long line of code that is not prose at all')\n```") is None


def test_language_mismatch_is_opt_in_and_judges_replies(tmp_path: Path) -> None:
    assert registry.get("FT312").default is False
    path = _write(
        tmp_path,
        [
            _chat(
                "How do I boil an egg so that the yolk stays soft in the middle?",
                "把鸡蛋放进沸水里煮六分钟，然后立刻放进冷水里冷却。",
            ),
            _chat("Translate into French: where is the train station, please?", "Où est la gare, s'il vous plaît ?"),
            _chat(
                "如何在Python中读取CSV文件？",
                "使用pandas：\n```python\nimport pandas as pd\ndf = pd.read_csv('data.csv')\n```\n这样就可以了。",
            ),
        ],
    )
    assert _codes(path, "FT312") == ["assistant text is in Chinese but its prompt is in English"]
    assert not [f for f in ftdata.lint(path, config=False) if f.code == "FT312"]


_FRENCH = (
    "La réponse dépend de nombreux facteurs, notamment du moment, du lieu et des conditions précises. "
    "En général, il faut d'abord comprendre le contexte avant de juger."
)
_SPANISH = (
    "La respuesta depende de muchos factores, entre ellos el momento, el lugar y las condiciones concretas. "
    "En general, conviene entender primero el contexto antes de juzgar."
)
_SYSTEM = "You are an AI language model developed by a research lab. You carefully follow instructions."


def test_language_mismatch_after_short_questions_system_prompts_and_tool_calls(tmp_path: Path) -> None:
    glaive_turns = [
        {"from": "human", "value": "Hi, I need help with calculating my loan payment."},
        {"from": "gpt", "value": "Of course. What are the loan amount, the interest rate and the term in years?"},
        {"from": "human", "value": "The amount is $200,000, the rate is 3.5%, and the term is 30 years."},
        {"from": "function_call", "value": '{"name": "calculate_loan_payment", "arguments": {"loan_amount": 200000}}'},
        {"from": "observation", "value": '{"monthly_payment": "$898.09"}'},
        {"from": "gpt", "value": _SPANISH},
    ]
    story = "Read the story.\nStory: Czechoslovakia was a state in Central Europe until 1993. " * 3
    path = _write(
        tmp_path,
        [
            # a few words are enough to tell English from French
            {"instruction": "How do I know if my house has a water leak?", "input": "", "output": _FRENCH},
            # "an AI language model" in the system prompt does not ask for Spanish
            {
                "messages": [
                    {"role": "system", "content": _SYSTEM},
                    {"role": "user", "content": "Explain the concept of time zones, starting with New York."},
                    {"role": "assistant", "content": _SPANISH},
                ]
            },
            # the quoted names of a function call do not make a Spanish reply right
            {"conversations": glaive_turns},
            # a story that mentions Czech does not ask for German either
            {
                "messages": [
                    {"role": "user", "content": story + "\nWhen did it end?"},
                    {"role": "assistant", "content": "In 1993, when it split into two states."},
                    {"role": "user", "content": "What was it made of?"},
                    {
                        "role": "assistant",
                        "content": "Die Antwort hängt von vielen Faktoren ab, darunter Zeitpunkt, Ort "
                        "und die genauen Bedingungen. Im Allgemeinen sollte man zuerst den Zusammenhang verstehen.",
                    },
                ]
            },
        ],
    )
    messages = _codes(path, "FT312")
    assert len(messages) == 4, messages
    assert messages[0] == "'output' is in French but its prompt is in English"


def test_language_mismatch_quiet_where_the_language_is_asked_for(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            # a short French question answered in French
            {"instruction": "Et pourquoi le ciel est-il bleu ?", "input": "", "output": _FRENCH},
            # a system prompt that names the language to answer in
            {
                "messages": [
                    {"role": "system", "content": "You are a tutor. Always answer in Spanish."},
                    {"role": "user", "content": "Explain the concept of time zones, starting with New York."},
                    {"role": "assistant", "content": _SPANISH},
                ]
            },
            # a question about a language
            {"instruction": "What does a French weather forecast sound like?", "input": "", "output": _FRENCH},
        ],
    )
    assert _codes(path, "FT312") == []


_LINE_CODES = st.lists(st.one_of(st.none(), st.sampled_from(["en", "fr", "zh"])), min_size=0, max_size=8)


@given(_LINE_CODES, st.sampled_from([None, "en", "fr"]), st.sampled_from([None, "en", "fr", "zh"]))
@settings(max_examples=300, deadline=None)
def test_switch_identifies_only_the_lines_it_needs(codes: list[str | None], head: str | None, tail: str | None) -> None:
    """The switch found from the first and last lines with a language is the one found
    from every line (the search that identified each line of every reply)."""
    lines = [f"line {i}" for i in range(len(codes))]
    by_line = dict(zip(lines, codes, strict=True))

    def lang(text: str, least: int = 0) -> str | None:
        if text in by_line:
            return by_line[text]
        return head if text.startswith(lines[0]) else tail

    def every_line(prose: str) -> tuple[str, str] | None:
        rows = [line for line in prose.splitlines() if line.strip()]
        if len(rows) < 2:
            return None
        judged = [(i, c) for i, c in ((i, lang(r)) for i, r in enumerate(rows)) if c is not None]
        if len(judged) < 2 or judged[0][1] == judged[-1][1]:
            return None
        one, two = judged[0][1], judged[-1][1]
        cut = max(i for i, c in judged if c == one) + 1
        first, second = "\n".join(rows[:cut]), "\n".join(rows[cut:])
        return (one, two) if lang(first, 1) == one and lang(second, 1) == two else None

    prose = "\n".join(lines)
    assert _switch(prose, lang, 1) == every_line(prose)


def test_missing_context_urls_markers_and_citations(tmp_path: Path) -> None:
    passage = "The council opened the Riverside bridge on Monday after three years of work. " * 4
    path = _write(
        tmp_path,
        [
            {
                "instruction": "Summarize the article.",
                "input": "https://example.com/a",
                "output": "The article says hi.",
            },
            {"instruction": "Describe the photo.", "input": "[image]", "output": "A kite on a beach."},
            _chat("What does the passage say?", "According to the passage above, the author grew up on a farm."),
            {
                "instruction": "Summarize the article.",
                "input": passage,
                "output": "The article describes a new bridge.",
            },
            {
                "instruction": "Extract the domain of this URL.",
                "input": "https://docs.google.com/x",
                "output": "google.com",
            },
            {
                "messages": [
                    {"role": "user", "content": "<image>What is it?"},
                    {"role": "assistant", "content": "The image shows a car."},
                ],
                "images": ["a.png"],
            },
            _chat("Write a short story about a keeper.", "He climbed the stairs. The story concludes at dawn."),
        ],
    )
    report = ftdata.lint(path, select=["FT313"], config=False)
    assert [f.index for f in report] == [0, 1, 2]
    assert {f.severity for f in report} == {ftdata.Severity.INFO}


def test_bad_input_never_crashes(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text(
        '{"messages": [{"role": "assistant", "content": "The article discusses Ã©"}]}\n'
        '{"messages": [{"role": "user", "content": null}, {"role": "assistant", "content": 3}]}\n'
        '{"instruction": "", "input": "", "output": ""}\n'
        "not json\n",
        encoding="utf-8",
    )
    report = ftdata.lint(path, select=["FT311", "FT312", "FT313"], config=False)
    assert not [f for f in report if f.code == "FT000"]
