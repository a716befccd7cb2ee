"""The engine: parallel ranges give the same findings as one pass; broken rules are contained;
the library API on in-memory records."""

from __future__ import annotations

import json
import multiprocessing
import random
from pathlib import Path

import pytest

import ftdata
from ftdata import registry
from ftdata.config import Settings
from ftdata.engine.plan import compile_plan
from ftdata.engine.run import lint_file as run_file
from ftdata.executors import process
from ftdata.executors.serial import SerialExecutor
from ftdata.findings import Issue, Severity
from tests.conftest import run_cli


def lint_file(path: Path, settings: Settings, **kwargs: object) -> tuple[list, object]:
    return run_file(path, compile_plan(settings), **kwargs)  # type: ignore[arg-type]


def _planted_file(path: Path, n: int = 3000, seed: int = 0) -> None:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        roll = rng.random()
        rec = {
            "messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
        }
        if roll < 0.02:
            lines.append('{"messages": [}')
            continue
        if roll < 0.04:
            rec["messages"][0]["role"] = "User"
        elif roll < 0.06:
            rec["messages"].append({"role": "user", "content": "thanks"})
        elif roll < 0.07:
            lines.append("")
        elif roll < 0.08:
            rec = {"prompt": "p", "completion": "c"}
        lines.append(json.dumps(rec))
    path.write_text("\r\n".join(lines) + "\r\n")


# Every rule but the one that embeds every record on the driver after the merge (its
# collected texts merge as FT404's do; tests/ray covers it on shards): minutes of CPU.
_EMBEDS = ("FT405",)


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_parallel_ranges_match_a_single_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str) -> None:
    # fork where it is safe, spawn once torch or a Rust tokenizer has threads: both agree
    monkeypatch.setattr(process, "mp_context", lambda: multiprocessing.get_context(start))
    path = tmp_path / "big.jsonl"
    _planted_file(path)
    settings = Settings(select=("ALL",), ignore=_EMBEDS)
    single, single_stats = lint_file(path, settings, jobs=1)
    multi, multi_stats = lint_file(path, settings, jobs=3, parallel_min_bytes=1)
    assert sorted(f.sort_key() for f in single) == sorted(f.sort_key() for f in multi)
    assert single_stats == multi_stats
    assert {f.code for f in single} >= {"FT001", "FT004", "FT005", "FT101", "FT107", "FT111"}


def test_any_executor_gives_the_findings_of_a_single_pass(tmp_path: Path) -> None:
    # the seam a cluster executor plugs into: shards run wherever, merged in order
    path = tmp_path / "big.jsonl"
    _planted_file(path)
    settings = Settings(select=("ALL",), ignore=_EMBEDS)
    single, single_stats = lint_file(path, settings, jobs=1)
    sharded, sharded_stats = lint_file(path, settings, executor=SerialExecutor(), jobs=3, parallel_min_bytes=1)
    assert sorted(f.sort_key() for f in single) == sorted(f.sort_key() for f in sharded)
    assert single_stats == sharded_stats


def test_max_errors_in_parallel_keeps_the_first_errors(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    _planted_file(path)
    settings = Settings(max_errors=5)
    single, _ = lint_file(path, settings, jobs=1)
    multi, stats = lint_file(path, settings, jobs=3, parallel_min_bytes=1)
    errors = lambda fs: sorted(f.sort_key() for f in fs if f.severity is Severity.ERROR)  # noqa: E731
    assert errors(single) == errors(multi)
    assert len(errors(multi)) == 5
    assert stats.truncated


def test_a_crashing_rule_becomes_a_finding_not_a_traceback() -> None:
    @registry.rule("FT990", "test-crasher", severity=Severity.WARNING, default=False)
    def crasher(record: ftdata.Record) -> list[Issue]:
        """## What it does
        Crashes, for the test.

        ## Why is this bad?
        It is not.
        """
        raise RuntimeError("boom")

    try:
        report = ftdata.lint([{"prompt": "a", "completion": "b"}], select=["FT990", "FT000"])
        assert [(f.code, f.message) for f in report] == [("FT000", "rule FT990 failed: RuntimeError: boom")]
    finally:
        registry._RULES.pop("FT990")
        registry._BY_NAME.pop("test-crasher")


def test_lint_in_memory_records_and_report_api() -> None:
    records = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        {"messages": [{"role": "User", "content": "Hi"}, {"role": "assistant", "content": ""}]},
        ["not", "an", "object"],
    ]
    report = ftdata.lint(records, ignore=["FT200"])
    assert [(f.code, f.index, f.path, f.line) for f in report] == [
        ("FT107", 1, ("messages", 0, "role"), None),
        ("FT110", 1, ("messages", 1, "content"), None),
        ("FT012", 2, (), None),
    ]
    assert report.failed()
    assert report.failed("warning")
    assert set(report.by_code()) == {"FT012", "FT107", "FT110"}
    assert report.to_dicts()[0]["severity"] == "error"
    assert report.findings[0].json_path == "$.messages[0].role"
    frame = report.to_pandas()
    assert list(frame.columns) == [
        "code",
        "severity",
        "message",
        "source",
        "line",
        "column",
        "index",
        "path",
        "related",
        "score",
        "other",
    ]
    assert frame["code"].tolist() == ["FT107", "FT110", "FT012"]
    assert report.total_records == 3


def test_options_and_severity_overrides() -> None:
    records = [{"prompt": "a", "completion": "b"}] * 3
    assert not ftdata.lint(records, select=["FT200"], options={"FT200": {"min_records": 3}}).findings
    report = ftdata.lint(records, select=["dataset-too-small"], severity={"dataset-too-small": "error"})
    assert report.failed()
    with pytest.raises(ftdata.ConfigError, match="no option 'min_recs'"):
        ftdata.lint(records, options={"FT200": {"min_recs": 3}})
    with pytest.raises(ftdata.ConfigError, match="unknown rule selector"):
        ftdata.lint(records, select=["nope"])


def test_profiles() -> None:
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello"},
    ]
    tool = {
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "tool_calls": [{"type": "function", "function": {"name": "w", "arguments": {"city": "Paris"}}}],
            },
            {"role": "tool", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ]
    }
    default = ftdata.lint([{"messages": turns}], select=["FT114"])
    assert [f.severity for f in default] == [Severity.WARNING]
    together = ftdata.lint([{"messages": turns}], select=["FT114"], profile="together")
    assert [(f.severity, f.message) for f in together] == [
        (Severity.ERROR, "turn 2 after the system message is user, expected assistant")
    ]
    # TRL's shape (arguments an object, no ids) passes by default and under trl; OpenAI's
    # profile wants a JSON string and ids.
    assert not ftdata.lint([tool], select=["FT116"]).findings
    assert not ftdata.lint([tool], select=["FT116"], profile="trl").findings
    assert ftdata.lint([tool], select=["FT116"], profile="openai").findings
    extra = [{"messages": turns, "id": 1}]
    assert not ftdata.lint(extra, select=["FT106"], ignore=["FT106"], profile="together").findings
    assert ftdata.lint(extra, profile="together").failed()


def test_conflicts_between_near_identical_prompts_need_the_near_option() -> None:
    records = [
        {
            "messages": [
                {"role": "user", "content": "Can I export my notes to PDF files?"},
                {"role": "assistant", "content": "Yes, use Share > Export."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Can I export my notes to PDF files please?"},
                {"role": "assistant", "content": "No, it is not possible."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "What is the capital of France today?"},
                {"role": "assistant", "content": "Paris."},
            ]
        },
    ]
    assert not ftdata.lint(records, select=["FT403"]).findings
    near = ftdata.lint(records, select=["FT403"], options={"FT403": {"near": 0.5}})
    assert [(f.index, f.related) for f in near] == [(0, (1,))]
    assert near.findings[0].message.startswith("the same or a near-identical prompt has 2 conflicting answers")


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_hears_of_reading_and_of_long_rules(tmp_path: Path, jobs: int) -> None:
    path = tmp_path / "big.jsonl"
    _planted_file(path, n=20_000)
    size = path.stat().st_size
    calls: list[tuple[str, int, int]] = []
    settings = Settings(select=("FT101", "FT404"))
    lint_file(path, settings, jobs=jobs, parallel_min_bytes=1, progress=lambda *a: calls.append(a))
    reading = [(done, total) for stage, done, total in calls if stage == "reading big.jsonl"]
    assert len(reading) >= 2
    assert all(total == size for _, total in reading)
    assert [done for done, _ in reading] == sorted(done for done, _ in reading)
    assert all(0 <= done <= size for done, _ in reading)
    assert "sign" in {stage for stage, _, _ in calls}  # FT404's MinHash (shingles are taken in the pass)
    assert ftdata.lint(path, select=["FT101"], config=False, progress=None).total_records == 20_000


SCHEMA = {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["bug", "billing"]}}}


def _replies(path: Path, labels: list[str]) -> None:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"ticket {i}"},
                {"role": "assistant", "content": json.dumps({"label": x})},
            ]
        }
        for i, x in enumerate(labels)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_the_plan_reads_the_schema_once_and_workers_never_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    monkeypatch.setattr(process, "mp_context", lambda: multiprocessing.get_context(start))
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    data = tmp_path / "replies.jsonl"
    labels = ["bug", "spam", "billing"] * 400
    _replies(data, labels)
    settings = Settings(select=("FT206",), options={"FT206": {"schema": str(schema)}})
    plan = compile_plan(settings)
    plan.preflight()
    schema.unlink()  # what the check needs is in the plan, pickled to every worker
    findings, _ = run_file(data, plan, jobs=3, parallel_min_bytes=1)
    spam = [i for i, x in enumerate(labels) if x == "spam"]
    assert sorted(f.index for f in findings if f.code == "FT206") == spam
    assert all("'spam' is not one of" in f.message for f in findings)


def test_an_edited_schema_is_read_again_by_the_next_lint_in_the_same_process(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    data = tmp_path / "replies.jsonl"
    _replies(data, ["bug", "spam"])
    options = {"FT206": {"schema": str(schema)}}
    assert [f.index for f in ftdata.lint(data, config=False, select=["FT206"], options=options)] == [1]
    widened = json.loads(json.dumps(SCHEMA))
    widened["properties"]["label"]["enum"].append("spam")
    schema.write_text(json.dumps(widened) + "\n")  # a new size: a new version whatever the clock says
    assert ftdata.lint(data, config=False, select=["FT206"], options=options).findings == []


@pytest.mark.parametrize(
    ("schema", "cause"),
    [("missing.json", "No such file"), ('{"type": 12}', "is not valid"), ("[1", "could not be loaded")],
)
def test_an_unloadable_schema_stops_the_run_before_any_record_is_read(tmp_path: Path, schema: str, cause: str) -> None:
    data = tmp_path / "replies.jsonl"
    _replies(data, ["bug"])
    result = run_cli("lint", data, "--select", "FT206", "--config", _config(tmp_path, schema))
    assert result.returncode == 2, result.stdout
    assert "FT206 cannot run" in result.stderr
    assert cause in result.stderr
    assert "FT206" not in result.stdout


def _config(tmp_path: Path, schema: str) -> Path:
    config = tmp_path / "ftdata.toml"
    config.write_text(f"[rules.output-schema]\nschema = {json.dumps(schema)}\n")
    return config


def _text_file(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"text": f"Document {i}: notes on topic {i * 7}."}) + "\n" for i in range(n)))
    return path


def test_rules_that_need_turns_say_once_per_file_that_text_records_have_none(tmp_path: Path) -> None:
    data = _text_file(tmp_path / "lm.jsonl", 412)
    report = ftdata.lint(data, config=False, ignore=["FT200"])
    assert report.findings == []
    (stats,) = report.sources
    by_reason = {n.reason: n for n in stats.not_applied}
    turns = by_reason["no turns"]
    assert (turns.format, turns.records) == ("text", 412)
    assert {"FT109", "FT111", "FT112", "FT113", "FT114", "FT115", "FT402", "FT403"} <= set(turns.codes)
    assert by_reason["a document may quote a dialogue"].codes == ("FT305",)
    # Only the selected rules are named.
    narrow = ftdata.lint(data, config=False, select=["FT111", "FT301"])
    assert [(n.codes, n.records) for n in narrow.sources[0].not_applied] == [(("FT111",), 412)]
    assert ftdata.lint(data, config=False, select=["FT301"]).sources[0].not_applied == ()


def test_the_note_is_one_line_per_file_and_leaves_the_verdict_and_exit_status_alone(tmp_path: Path) -> None:
    data = _text_file(tmp_path / "lm.jsonl", 412)
    for extra in ([], ["--fail-on", "info"]):
        result = run_cli("lint", data, "--isolated", "--ignore", "FT200", *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert lines[-1] == "All checks passed (412 records in 1 file)."
        notes = [line for line in lines if ": note: " in line]
        assert notes == [
            f"{data}: note: FT109, FT111-FT115, FT201-FT205, FT402, FT403 do not apply to 412 `text` records (no turns)",
            f"{data}: note: FT305 does not apply to 412 `text` records (a document may quote a dialogue)",
        ]
    # The data formats keep their shape: findings only.
    as_json = run_cli("lint", data, "--isolated", "--ignore", "FT200", "--output-format", "json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == []


def test_a_mixed_folder_gets_one_note_per_file_and_format(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    _text_file(folder / "lm.jsonl", 30)
    chat = {"messages": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello"}]}
    (folder / "chat.jsonl").write_text(json.dumps(chat) + "\n")
    mixed = [
        {"text": "A document."},
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
        {"prompt": "Capital of Spain?", "chosen": "Madrid.", "rejected": "Lyon."},
        chat,
    ]
    (folder / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mixed))
    report = ftdata.lint(folder, config=False, select=["FT109", "FT111"])
    notes = {
        s.source.rsplit("/", 1)[-1]: [(n.format, n.codes, n.records) for n in s.not_applied] for s in report.sources
    }
    assert notes == {
        "chat.jsonl": [],
        "lm.jsonl": [("text", ("FT109", "FT111"), 30)],
        "mixed.jsonl": [("text", ("FT109", "FT111"), 1), ("preference", ("FT109",), 2)],
    }
    result = run_cli("lint", folder, "--isolated", "--select", "FT109,FT111")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sum(": note: " in line for line in result.stdout.splitlines()) == 3


def test_a_sharded_pass_gives_the_same_notes(tmp_path: Path) -> None:
    data = _text_file(tmp_path / "lm.jsonl", 3000)
    settings = Settings(select=("FT111", "FT305"))
    _, one = lint_file(data, settings, jobs=1)
    _, many = lint_file(data, settings, executor=SerialExecutor(), parallel_min_bytes=1)
    assert one.not_applied == many.not_applied  # type: ignore[attr-defined]
    assert [n.records for n in one.not_applied] == [3000, 3000]  # type: ignore[attr-defined]


def test_in_memory_records_get_the_notes_too() -> None:
    report = ftdata.lint([{"text": "One document."}, {"text": "Another one."}], select=["FT114"])
    assert [n.message for n in report.sources[0].not_applied] == ["FT114 does not apply to 2 `text` records (no turns)"]


def test_every_rule_the_notes_name_is_registered() -> None:
    from ftdata.engine.notes import NOT_APPLICABLE
    from ftdata.formats import FORMATS

    for fmt, reasons in NOT_APPLICABLE.items():
        assert fmt in FORMATS
        for _, codes in reasons:
            for code in codes:
                assert registry.get(code).code == code
