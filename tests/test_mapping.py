"""Field mapping (--map, [tool.ftdata.fields], dataset_info.json), FT100 hints, the
LLaMA-Factory v1 dialect, stepwise supervision and files that are not datasets."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import ftdata
from ftdata.config import Settings
from ftdata.engine.plan import compile_plan
from ftdata.formats import FieldsError, apply_fields, normalise, parse_map
from ftdata.records import Record
from tests.conftest import REAL


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftdata", *args], cwd=cwd, capture_output=True, text=True)


def test_apply_fields_moves_nested_paths_and_renames_turn_keys() -> None:
    data = {"conversation": {"turns": [{"speaker": "Human", "text": "Hi"}], "id": 3}, "meta": 1}
    fields = parse_map("conversation.turns=conversations,conversation.turns.*.speaker=from")
    fields["conversation.turns.*.text"] = "value"
    fields["role:Human"] = "human"
    out = apply_fields(data, fields)
    assert out == {
        "conversation": {"id": 3},
        "meta": 1,
        "conversations": [{"from": "human", "value": "Hi"}],
    }
    assert data["conversation"]["turns"][0] == {"speaker": "Human", "text": "Hi"}  # not changed
    assert apply_fields(out, fields) == out  # mapping a mapped record changes nothing


@pytest.mark.parametrize("text", ["question", "a=", "=b", "a=b.c", "a=x,b=x"])
def test_malformed_maps_are_refused(text: str) -> None:
    with pytest.raises(FieldsError):
        parse_map(text)


def test_a_finding_on_a_mapped_key_points_at_the_source_key(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text('{"id": 1, "question": "", "answer": "4"}\n', encoding="utf-8")
    report = ftdata.lint(path, fields={"question": "prompt", "answer": "completion"}, select=["FT110"], config=False)
    [finding] = report.findings
    assert finding.path == ("question",)
    assert (finding.line, finding.column) == (1, 23)  # the value of "question" as written


def test_plan_with_a_mapping_pickles_and_normalises_the_same(tmp_path: Path) -> None:
    plan = compile_plan(Settings(fields={"question": "prompt", "answer": "completion"}))
    again = pickle.loads(pickle.dumps(plan))
    rec = Record(0, {"question": "q", "answer": "a"})
    normalise(rec, again.format)
    assert rec.format == "prompt-completion"
    assert rec.original == {"question": "q", "answer": "a"}


def test_config_fields_table_and_cli_map(tmp_path: Path) -> None:
    _jsonl(tmp_path / "qa.jsonl", [{"query": "What is 2+2?", "reply": "4"}] * 2)
    unmapped = _cli("lint", "qa.jsonl", "--select", "FT100", cwd=tmp_path)
    assert unmapped.returncode == 1
    assert "looks like prompt/completion: --map query=prompt,reply=completion" in unmapped.stdout
    mapped = _cli("lint", "qa.jsonl", "--select", "FT1", "--map", "query=prompt,reply=completion", cwd=tmp_path)
    assert mapped.returncode == 0, mapped.stdout + mapped.stderr
    (tmp_path / "ftdata.toml").write_text('[fields]\nquery = "prompt"\nreply = "completion"\n', encoding="utf-8")
    configured = _cli("lint", "qa.jsonl", "--select", "FT1", cwd=tmp_path)
    assert configured.returncode == 0, configured.stdout + configured.stderr


def test_dedup_records_the_mapping_in_its_manifest(tmp_path: Path) -> None:
    _jsonl(tmp_path / "qa.jsonl", [{"q": "a", "a": "b"}, {"q": "a", "a": "b"}, {"q": "c", "a": "d"}])
    done = _cli("dedup", "qa.jsonl", "-o", "out.jsonl", "--map", "q=prompt,a=completion", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 2
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert manifest["options"]["format"] == "[q=prompt,a=completion]"


def test_dataset_info_next_to_the_data_is_read(tmp_path: Path) -> None:
    info = {
        "chat": {
            "file_name": "chat.json",
            "formatting": "sharegpt",
            "columns": {"messages": "dialog"},
            "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "Human", "assistant_tag": "AI"},
        },
        "qa": {"file_name": "qa.jsonl", "columns": {"prompt": "question", "response": "answer"}},
    }
    (tmp_path / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    chat = [{"dialog": [{"speaker": "Human", "text": "Hi"}, {"speaker": "AI", "text": "Hello"}]}]
    (tmp_path / "chat.json").write_text(json.dumps(chat), encoding="utf-8")
    _jsonl(tmp_path / "qa.jsonl", [{"question": "2+2?", "answer": ""}])
    report = ftdata.lint(tmp_path, ignore=["FT200"], config=False)
    assert [(Path(f.source).name, f.code, f.path) for f in report] == [("qa.jsonl", "FT110", ("answer",))]
    assert {s.source.rsplit("/", 1)[-1]: dict(s.formats) for s in report.sources} == {
        "chat.json": {"sharegpt": 1},
        "qa.jsonl": {"alpaca": 1},
    }
    off = ftdata.lint(tmp_path / "qa.jsonl", select=["FT100"], dataset_info=False, config=False)
    assert [f.code for f in off] == ["FT100"]


def test_nested_instance_list_is_unknown_format_not_missing_output(tmp_path: Path) -> None:
    row = {"instruction": "Add the numbers.", "instances": [{"input": "2 3", "output": "5"}]}
    report = ftdata.lint([row], select=["FT1"], config=False)
    assert [f.code for f in report] == ["FT100"]
    assert "list of examples under 'instances'" in report.findings[0].message


def test_llamafactory_v1_tool_use_file_reads_as_its_trainer_does() -> None:
    report = ftdata.lint(REAL / "reason_tool_use_demo_50.jsonl", select=["FT1"], config=False)
    assert [f for f in report if f.code in ("FT116", "FT118")] == []


def test_v1_inline_calls_and_string_tools_are_still_checked() -> None:
    tools = json.dumps([{"type": "function", "function": {"name": "add", "parameters": {}}}])
    row = {
        "tools": tools,
        "messages": [
            {"role": "user", "content": [{"type": "text", "value": "2+2?"}]},
            {"role": "assistant", "content": [{"type": "tool_call", "value": '{"name": "mul", "arguments": {}}'}]},
            {"role": "tool", "content": [{"type": "text", "value": "4"}]},
            {"role": "assistant", "content": [{"type": "reasoning", "value": "Done."}, {"type": "text", "value": "4"}]},
        ],
    }
    report = ftdata.lint([row], select=["FT116", "FT118"], config=False)
    assert [f.message for f in report] == ["calls 'mul', which is not among the declared tools"]
    broken = {**row, "tools": json.dumps({"name": "add"})}
    assert [f.code for f in ftdata.lint([broken], select=["FT118"], config=False)] == ["FT118"]


def test_conversations_of_openai_messages_read_as_messages() -> None:
    row = {
        "conversations": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ]
    }
    report = ftdata.lint(
        [row, {"conversations": [{"role": "user", "content": "Hi"}]}], ignore=["FT200", "FT4"], config=False
    )
    assert [(f.index, f.code) for f in report] == [(1, "FT109")]
    assert dict(report.sources[0].formats) == {"messages": 2}


def test_loss_weight_counts_as_weight() -> None:
    row = {
        "messages": [
            {"role": "user", "content": "Hi", "loss_weight": 0.0},
            {"role": "assistant", "content": "Hello", "loss_weight": 0.0},
        ]
    }
    assert [f.code for f in ftdata.lint([row], select=["FT109", "FT117"], config=False)] == ["FT109"]
    row["messages"][0]["loss_weight"] = 1.0
    assert [f.code for f in ftdata.lint([row], select=["FT117"], config=False)] == ["FT117"]


def test_stepwise_supervision_is_its_own_format() -> None:
    row = {"prompt": "9.11 or 9.8?", "completions": ["Tenths: 1 < 8.", "So 9.8."], "labels": [True, True]}
    rec = Record(0, row)
    normalise(rec)
    assert rec.format == "stepwise-supervision"
    assert [s[2] for s in rec.segments] == [("prompt",), ("completions", 0), ("completions", 1)]
    assert rec.roles == ("user", "assistant")


def test_a_single_json_object_is_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{\n  "name": "app",\n  "version": "1.0.0"\n}\n', encoding="utf-8")
    (tmp_path / "one.json").write_text('{"messages": [{"role": "user", "content": "Hi"}]}\n', encoding="utf-8")
    report = ftdata.lint(tmp_path / "package.json", config=False)
    assert [f.code for f in report] == ["FT014"]
    one = ftdata.lint(tmp_path / "one.json", select=["FT014", "FT100"], config=False)
    assert one.findings == []  # one record in a known format is a (small) dataset
