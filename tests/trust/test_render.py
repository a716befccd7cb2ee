"""Terminal and CI outputs are inert: record text, role names and file names can neither
start a GitHub workflow command, nor reach the terminal as an escape sequence, nor be read
as rich markup; the data formats keep them exact."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ftdata.findings import Finding, Report, Severity, SourceStats
from ftdata.render import OUTPUT_FORMATS, render
from ftdata.render.text import shift, visible, visible_path
from tests.conftest import run_cli

PAYLOAD = "hi\n::error::pwned \x1b[31mred\x1b[0m [bold]loud[/] \u2028::set-output name=x::y\r::warning::cr"
EVIL_NAMES = ["evil\n::error::name\x1b[31m[bold].jsonl", "::error::pwned.jsonl", "[bold]x[red].jsonl"]
# What a workflow command written by ftdata itself looks like, and nothing else may.
OWN_COMMAND = re.compile(r"^::(error|warning|notice) file=[^,:\n]*(,line=\d+)?(,col=\d+)?,title=[^:\n]*::")
TEXT_FORMATS = ("concise", "full", "github")
UNSAFE_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}


def _records() -> list[bytes]:
    good = {
        "messages": [
            {"role": "user", "content": PAYLOAD},
            {"role": "[/]", "content": PAYLOAD},
            {"role": "[bold]\n::error::role", "content": "x"},
            {"role": "assistant", "content": "[/] \x1b]0;title\x07 done"},
        ]
    }
    return [
        json.dumps(good).encode(),
        json.dumps(good, ensure_ascii=False).encode(),
        # Not JSON: a raw ESC, a raw U+2028 and a bidi override on the line itself, so the
        # `full` excerpt shows the raw line.
        '{"messages": [{"role": "user", "content": "\x1b[2J\u2028\u202eoops"}'.encode(),
        b'{"messages": [{"role": "user", "content": "lone \\ud800 surrogate"}, {"role": "assistant", "content": "b"}]}',
    ]


@pytest.fixture
def evil_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for name in EVIL_NAMES:
        (folder / name).write_bytes(b"\n".join(_records()) + b"\n")
    return folder


def _check_inert(text: str, *, github: bool = False) -> None:
    assert "\x1b" not in text
    assert "Traceback" not in text
    for line in text.splitlines():
        if line.startswith(("::", "##")):
            assert github, line
            assert OWN_COMMAND.match(line), line
    # Only ftdata's own line breaks: no CR, no Unicode line separators from the data.
    assert not {"\r", "\u2028", "\u2029"} & set(text)


@pytest.mark.parametrize("output_format", sorted(OUTPUT_FORMATS))
def test_lint_output_is_inert_in_every_format(evil_dir: Path, output_format: str) -> None:
    result = run_cli("lint", "--isolated", "--output-format", output_format, evil_dir)
    assert result.returncode == 1, result.stderr
    _check_inert(result.stderr)
    _check_inert(result.stdout, github=output_format == "github")
    if output_format == "github":
        assert sum(1 for line in result.stdout.splitlines() if OWN_COMMAND.match(line)) > 10
    if output_format in ("json", "sarif", "json-lines"):
        text = result.stdout
        data = [json.loads(line) for line in text.splitlines()] if output_format == "json-lines" else json.loads(text)
        blob = json.dumps(data, ensure_ascii=False)
        # Data formats keep names exact: the real file names are in there, escapes and all.
        for name in EVIL_NAMES:
            assert json.dumps(str(evil_dir / name), ensure_ascii=False)[1:-1] in blob


def test_text_formats_show_the_data_escaped(evil_dir: Path) -> None:
    concise = run_cli("lint", "--isolated", evil_dir).stdout
    assert "evil\\n::error::name\\x1b[31m[bold].jsonl:" in concise
    assert "/::error::pwned.jsonl" in concise  # an absolute path: no line starts with it
    full = run_cli("lint", "--isolated", "--output-format", "full", evil_dir).stdout
    assert "\\x1b[2J\\u2028\\u202eoops" in full  # the raw line's escapes, shown
    github = run_cli("lint", "--isolated", "--output-format", "github", evil_dir).stdout
    assert "file=" + str(evil_dir).replace(":", "%3A") + "/evil%0A%3A%3Aerror%3A%3Aname\\x1b[31m[bold].jsonl" in github


def test_a_relative_file_name_cannot_start_a_line(evil_dir: Path) -> None:
    result = run_cli("lint", "--isolated", "::error::pwned.jsonl", cwd=evil_dir)
    _check_inert(result.stdout)
    assert result.stdout.startswith("./::error::pwned.jsonl:")


def test_audit_is_inert_and_reads_no_markup(evil_dir: Path, tmp_path: Path) -> None:
    html, report = tmp_path / "audit.html", tmp_path / "audit.json"
    result = run_cli("audit", evil_dir, "--html", html, "--json", report)
    assert result.returncode == 0, result.stderr
    _check_inert(result.stdout)
    _check_inert(result.stderr)
    assert "[/]" in result.stdout  # the role name, shown as itself
    assert "[bold]\\n::error::role" in result.stdout
    page = html.read_text(encoding="utf-8")
    assert not any(unicodedata.category(c) in {"Cc", "Cs"} and c not in "\n\t" for c in page)
    assert json.loads(report.read_bytes())["stats"]


def test_audit_of_a_file_named_like_a_command(evil_dir: Path) -> None:
    result = run_cli("audit", "::error::pwned.jsonl", "[bold]x[red].jsonl", cwd=evil_dir)
    assert result.returncode == 0, result.stderr
    _check_inert(result.stdout)
    assert "./::error::pwned.jsonl" in result.stdout


texts = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)


@given(texts)
def test_visible_leaves_nothing_a_terminal_acts_on(text: str) -> None:
    shown = visible(text)
    assert not {unicodedata.category(c) for c in shown} & UNSAFE_CATEGORIES
    assert not any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in shown)
    shown.encode("utf-8")  # always encodable
    if all(unicodedata.category(c) not in UNSAFE_CATEGORIES and c.isprintable() for c in text):
        assert shown == text  # printable text is shown as it is
    assert shift(text, len(text)) == len(shown)


@given(texts)
def test_visible_path_never_starts_a_workflow_command(text: str) -> None:
    assert not visible_path(text).startswith(("::", "##"))


@given(message=texts, source=texts, path=st.lists(texts, max_size=2))
@example(message="", source=":", path=[])  # ":" + ":1:1" would read "::1:1"
@example(message="", source="#", path=[])
def test_every_text_renderer_writes_one_inert_line_per_finding(message: str, source: str, path: list[str]) -> None:
    import io

    finding = Finding("FT301", Severity.WARNING, message, source, line=1, column=1, index=0, path=tuple(path))
    report = Report([finding], [SourceStats(source, records=1, lines=1)])
    for output_format in ("concise", "github"):
        stream = io.StringIO()
        render(report, output_format, stream)
        lines = stream.getvalue().split("\n")
        assert lines[-1] == ""
        assert len(lines) == (2 if output_format == "github" else 3)  # the finding (+ summary)
        _check_inert(stream.getvalue(), github=output_format == "github")
    stream = io.StringIO()
    render(report, "full", stream)
    _check_inert(stream.getvalue())
    # The data formats keep the text exact, lone surrogates included.
    stream = io.StringIO()
    render(report, "json", stream)
    assert json.loads(stream.getvalue())[0]["message"] == message
    stream = io.StringIO()
    render(report, "json-lines", stream)
    assert json.loads(stream.getvalue())["source"] == source
    stream = io.StringIO()
    render(report, "sarif", stream)
    assert json.loads(stream.getvalue())["runs"][0]["results"][0]["message"]["text"] == message
