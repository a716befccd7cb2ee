"""The lint cache: a warm run reports exactly what a fresh one does, and every input that
decides the findings (content, settings, resources, other files) invalidates it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ftdata
from ftdata.config import Settings
from ftdata.engine.cache import LintCache, open_entry
from ftdata.engine.plan import compile_plan
from ftdata.engine.run import FileStamp
from ftdata.names import OUTPUT_FORMATS
from ftdata.outputs import InputChangedError


@pytest.fixture(autouse=True)
def _cache_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache as a user has it: the suite turns it off for every other test."""
    for name in ("FTDATA_NO_CACHE", "FTDATA_CACHE_DIR", "FTDATA_CACHE_RECORDS"):
        monkeypatch.delenv(name, raising=False)


def _chat(user: str, answer: str, system: str | None = None, role: str = "user") -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    return {"messages": [*messages, {"role": role, "content": user}, {"role": "assistant", "content": answer}]}


RECORDS = [
    _chat("What is 2+2?", "4", "You are terse."),
    _chat("What is 2+2?", "4", "You are terse."),  # a duplicate (FT401)
    _chat("Name a colour.", "Blue.", "You are terse."),
    _chat("Name a colour.", "Red.", "You are verbose."),  # conflicting answers, a system prompt variant
    _chat("Hi", "Hello", role="User"),  # an unrecognised role
    {"prompt": "no format here"},
]


def _write(path: Path, records: list[Any], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")
    return path


def _ftdata(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FTDATA_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ftdata", *args], cwd=cwd, env=environment, capture_output=True, text=True
    )


def _entries(folder: Path, kind: str = "files") -> list[Path]:
    return sorted(p for p in folder.glob(f"*/{kind}/*") if not p.name.startswith(".tmp-"))


@pytest.mark.parametrize("output_format", OUTPUT_FORMATS)
def test_a_warm_run_prints_what_a_fresh_one_does_in_every_format(tmp_path: Path, output_format: str) -> None:
    _write(tmp_path / "data.jsonl", RECORDS)
    fresh = _ftdata(tmp_path, "lint", "data.jsonl", "--output-format", output_format, "--no-cache")
    assert not (tmp_path / ".ftdata_cache").exists()
    cold = _ftdata(tmp_path, "lint", "data.jsonl", "--output-format", output_format)
    assert len(_entries(tmp_path / ".ftdata_cache")) == 1
    warm = _ftdata(tmp_path, "lint", "data.jsonl", "--output-format", output_format)
    assert fresh.returncode == cold.returncode == warm.returncode == 1
    assert fresh.stdout == cold.stdout == warm.stdout
    assert fresh.stdout.strip()


def test_the_cache_folder_is_tagged_and_ignored_by_git(tmp_path: Path) -> None:
    _write(tmp_path / "data.jsonl", RECORDS)
    _ftdata(tmp_path, "lint", "data.jsonl")
    folder = tmp_path / ".ftdata_cache"
    assert (folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"


def test_hits_are_served_from_the_entry(tmp_path: Path) -> None:
    """A doctored entry shows up in the report: the warm run did not read the file."""
    data = _write(tmp_path / "data.jsonl", RECORDS)
    folder = tmp_path / "c"
    cold = ftdata.lint(data, cache=folder, config=False)
    plan = compile_plan(Settings())
    cache = LintCache(folder)
    ticket = open_entry(cache, plan, data, str(data), FileStamp.of(data).check)
    assert ticket.hit is not None
    assert [f.to_dict() for f in sorted(ticket.hit.findings, key=lambda f: f.sort_key())] == [
        f.to_dict() for f in cold.findings
    ]
    stored = cache.read("files", ticket.key)
    first = list(stored[0][0])
    first[2] = "doctored"
    cache.write("files", ticket.key, ([tuple(first)], *stored[1:]))
    warm = ftdata.lint(data, cache=folder, config=False)
    assert [f.message for f in warm.findings] == ["doctored"]


def test_corrupt_and_foreign_entries_are_misses_and_rewritten(tmp_path: Path) -> None:
    data = _write(tmp_path / "data.jsonl", RECORDS)
    folder = tmp_path / "c"
    expected = [f.to_dict() for f in ftdata.lint(data, config=False).findings]
    ftdata.lint(data, cache=folder, config=False)
    (entry,) = _entries(folder)
    good = entry.read_bytes()
    for junk in (b"", b"garbage", good[:-7], good[:5] + bytes(16) + good[21:]):
        entry.write_bytes(junk)
        assert [f.to_dict() for f in ftdata.lint(data, cache=folder, config=False).findings] == expected
        assert entry.read_bytes() == good
    # an entry of another key under this one's name (copied by hand) is not this file's
    other = _write(tmp_path / "other.jsonl", RECORDS[:2])
    ftdata.lint(other, cache=folder, config=False)
    (foreign,) = [p for p in _entries(folder) if p != entry]
    entry.write_bytes(foreign.read_bytes())
    assert [f.to_dict() for f in ftdata.lint(data, cache=folder, config=False).findings] == expected


def test_content_settings_and_schema_files_are_in_the_key(tmp_path: Path) -> None:
    data = _write(tmp_path / "data.jsonl", RECORDS)
    folder = tmp_path / "c"

    def both(**kwargs: Any) -> list[dict[str, Any]]:
        fresh = [f.to_dict() for f in ftdata.lint(data, config=False, **kwargs).findings]
        for _ in range(2):
            assert [f.to_dict() for f in ftdata.lint(data, cache=folder, config=False, **kwargs).findings] == fresh
        return fresh

    before = both()
    _write(data, RECORDS[:3])
    assert both() != before
    assert both(select=["FT401"]) != both(select=["FT107"])
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["answer"]}))
    _write(data, [{"prompt": "p", "completion": json.dumps({"answer": 1})}])
    command = ("lint", "data.jsonl", "--select", "FT206", "--option", f"FT206.schema={json.dumps(str(schema))}")
    assert _ftdata(tmp_path, *command).returncode == 0
    schema.write_text(json.dumps({"type": "object", "required": ["answer", "reason"]}))
    os.utime(schema, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    warm = _ftdata(tmp_path, *command, "--output-format", "json")
    assert [f["code"] for f in json.loads(warm.stdout)] == ["FT206"]


def test_cross_file_rules_see_a_changed_split_through_a_warm_entry(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.jsonl", RECORDS[:4])
    test = _write(tmp_path / "test.jsonl", [_chat("Name a shape.", "Square.", "You are terse.")])
    folder = tmp_path / "c"

    def check() -> list[dict[str, Any]]:
        fresh = [f.to_dict() for f in ftdata.lint(tmp_path, config=False).findings]
        for _ in range(2):
            assert [f.to_dict() for f in ftdata.lint([train, test], cache=folder, config=False).findings] == fresh
        return fresh

    assert not any(f["code"] == "FT601" for f in check())
    _write(test, [RECORDS[2]])  # now leaks a train record: only test.jsonl changed
    leaks = [f for f in check() if f["code"] == "FT601"]
    assert leaks
    assert leaks[0]["source"] == str(test)


def test_files_a_rule_reads_beside_the_data_are_checked_every_run(tmp_path: Path) -> None:
    image = tmp_path / "cat.jpg"
    image.write_bytes(b"\xff\xd8")
    record = {"messages": [{"role": "user", "content": "<image>What?"}, {"role": "assistant", "content": "A cat."}]}
    data = _write(tmp_path / "data.jsonl", [{**record, "images": ["cat.jpg"]}])
    folder = tmp_path / "c"
    assert not [f for f in ftdata.lint(data, cache=folder, config=False).findings if f.code == "FT123"]
    assert _entries(folder) == []  # FT123 had a file to look up: no entry
    image.unlink()
    assert [f.code for f in ftdata.lint(data, cache=folder, config=False).findings if f.code == "FT123"] == ["FT123"]


def test_runs_with_folds_truncated_runs_and_failed_rules_write_no_entry(tmp_path: Path) -> None:
    data = _write(tmp_path / "data.jsonl", RECORDS)
    folder = tmp_path / "c"

    class Count:
        def __init__(self) -> None:
            self.n = 0

        def add(self, record: Any) -> None:
            self.n += 1

        def merge(self, later: Any) -> None:
            self.n += later.n

    report = ftdata.lint(data, cache=folder, config=False, folds=[Count])
    assert report.sources[0].folds[0].n == len(RECORDS)
    assert _entries(folder) == []
    fresh = ftdata.lint(data, config=False, max_errors=1)
    assert fresh.sources[0].truncated
    for _ in range(2):
        warm = ftdata.lint(data, cache=folder, config=False, max_errors=1)
        assert [f.to_dict() for f in warm.findings] == [f.to_dict() for f in fresh.findings]
        assert warm.sources == fresh.sources
    assert _entries(folder) == []


def test_a_baseline_applies_after_the_cache(tmp_path: Path) -> None:
    data = _write(tmp_path / "data.jsonl", RECORDS[:5])
    assert _ftdata(tmp_path, "lint", "data.jsonl", "--write-baseline", "base.json").returncode == 0
    assert _ftdata(tmp_path, "lint", "data.jsonl", "--baseline", "base.json").returncode == 0
    _write(data, [*RECORDS[:5], _chat("Hi", "Hello", role="Assistant")])
    runs = [
        _ftdata(tmp_path, "lint", "data.jsonl", "--baseline", "base.json", "--output-format", "json", *extra)
        for extra in (("--no-cache",), (), ())
    ]
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout
    every = json.loads(_ftdata(tmp_path, "lint", "data.jsonl", "--output-format", "json").stdout)
    assert 0 < len(json.loads(runs[2].stdout)) < len(every)


def test_fix_then_lint_reports_on_the_fixed_file(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_bytes(b"".join(json.dumps(r).encode() + b"\r\n" for r in RECORDS))
    first = _ftdata(tmp_path, "lint", "data.jsonl", "--output-format", "json")
    assert "FT002" in first.stdout or "crlf" in first.stdout.lower()
    fixed = _ftdata(tmp_path, "lint", "data.jsonl", "--fix", "--output-format", "json")
    fresh = _ftdata(tmp_path, "lint", "data.jsonl", "--no-cache", "--output-format", "json")
    assert fixed.stdout == fresh.stdout != first.stdout
    diff = _ftdata(tmp_path, "lint", "data.jsonl", "--diff")
    assert diff.returncode == 0


def test_a_file_that_changes_while_it_is_read_is_an_error_with_the_cache(tmp_path: Path) -> None:
    data = _write(tmp_path / "data.jsonl", RECORDS * 50)

    def rewrite(stage: str, done: int, total: int) -> None:
        if stage.startswith("reading"):
            _write(data, RECORDS)

    with pytest.raises(InputChangedError):
        ftdata.lint(data, cache=tmp_path / "c", config=False, progress=rewrite)
    assert _entries(tmp_path / "c") == []


def test_concurrent_runs_agree_and_leave_whole_entries(tmp_path: Path) -> None:
    _write(tmp_path / "data.jsonl", RECORDS * 200)
    fresh = _ftdata(tmp_path, "lint", "data.jsonl", "--no-cache", "--output-format", "json").stdout
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FTDATA_")}
    command = [sys.executable, "-m", "ftdata", "lint", "data.jsonl", "--output-format", "json"]
    for _ in range(2):
        procs = [
            subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        assert [p.communicate()[0] for p in procs] == [fresh] * 4
    assert len(_entries(tmp_path / ".ftdata_cache")) == 1
    assert not list((tmp_path / ".ftdata_cache").glob("*/*/.tmp-*"))


def test_where_the_cache_lives(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.ftdata]\nselect = ["FT1", "FT401"]\n')
    _write(project / "data" / "d.jsonl", RECORDS)
    _ftdata(project / "data", "lint", "d.jsonl")
    assert _entries(project / ".ftdata_cache")  # the configuration file's folder
    assert not (project / "data" / ".ftdata_cache").exists()
    _ftdata(project / "data", "lint", "d.jsonl", "--cache-dir", str(tmp_path / "opt"))
    assert _entries(tmp_path / "opt")
    _ftdata(project / "data", "lint", "d.jsonl", env={"FTDATA_CACHE_DIR": str(tmp_path / "env")})
    assert _entries(tmp_path / "env")
    (project / "pyproject.toml").write_text('[tool.ftdata]\nselect = ["FT1"]\ncache-dir = "build/lint"\n')
    _ftdata(project / "data", "lint", "d.jsonl")
    assert _entries(project / "build" / "lint")
    _ftdata(project / "data", "lint", "d.jsonl", "--select", "FT401", env={"FTDATA_NO_CACHE": "1"})
    assert len(_entries(project / "build" / "lint")) == 1
    ftdata.lint(project / "data" / "d.jsonl")  # the library writes nothing unless asked
    assert len(_entries(project / "build" / "lint")) == 1


def test_an_unwritable_cache_folder_costs_only_the_speed(tmp_path: Path) -> None:
    _write(tmp_path / "data.jsonl", RECORDS)
    (tmp_path / "blocked").write_text("a file where the folder would be")
    fresh = _ftdata(tmp_path, "lint", "data.jsonl", "--no-cache")
    blocked = _ftdata(tmp_path, "lint", "data.jsonl", "--cache-dir", str(tmp_path / "blocked" / "c"))
    assert (blocked.returncode, blocked.stdout) == (fresh.returncode, fresh.stdout)


def test_pruning_drops_old_entries_then_the_oldest_beyond_the_cap(tmp_path: Path) -> None:
    cache = LintCache(tmp_path / "c", max_age_days=1, max_bytes=3000)
    for i in range(4):
        assert cache.write("files", bytes([i]) * 32, b"x" * 1000)
    old = cache.path("files", bytes([0]) * 32)
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    recent = cache.path("files", bytes([1]) * 32)
    os.utime(recent, (time.time() - 3600,) * 2)
    cache.prune()
    left = {p.name for p in _entries(tmp_path / "c")}
    assert bytes([0] * 32).hex() not in left  # unused for 3 days
    assert bytes([1] * 32).hex() not in left  # the least recently used beyond the size cap
    assert len(left) == 2


edits = st.lists(
    st.tuples(st.sampled_from(["replace", "insert", "delete", "duplicate"]), st.integers(0, 40), st.integers(0, 5)),
    min_size=1,
    max_size=4,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=edits)
def test_edited_files_reuse_per_record_keys_and_report_what_a_fresh_run_does(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, int, int]]
) -> None:
    os.environ["FTDATA_CACHE_RECORDS"] = "1"
    try:
        _edit_and_compare(tmp_path_factory, edits)
    finally:
        del os.environ["FTDATA_CACHE_RECORDS"]


def _edit_and_compare(tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, int, int]]) -> None:
    folder = tmp_path_factory.mktemp("edit")
    lines = [json.dumps(RECORDS[i % 5]) if i % 7 else json.dumps(_chat(f"q{i}", f"a{i}", "S")) for i in range(40)]
    data = folder / "data.jsonl"
    data.write_text("\n".join(lines) + "\n")
    ftdata.lint(data, cache=folder / "c", config=False)
    assert _entries(folder / "c", "records")
    for kind, at, pick in edits:
        at %= len(lines) or 1
        if kind == "replace" and lines:
            lines[at] = json.dumps(RECORDS[pick])
        elif kind == "insert":
            lines.insert(at, json.dumps(RECORDS[pick]))
        elif kind == "delete" and lines:
            del lines[at]
        elif lines:
            lines.insert(at, lines[at])
    data.write_text("\n".join(lines) + "\n")
    fresh = ftdata.lint(data, config=False)
    warm = ftdata.lint(data, cache=folder / "c", config=False)
    assert [f.to_dict() for f in warm.findings] == [f.to_dict() for f in fresh.findings]
    assert warm.sources == fresh.sources
