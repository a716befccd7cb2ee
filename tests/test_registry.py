"""Meta-tests over the rule registry and the CLI command registry."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ftdata import formats, io, registry
from ftdata.cli import main
from ftdata.docgen import rules_markdown
from tests.conftest import ROOT

RULES = registry.all_rules()


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_docs_have_the_sections(rule: registry.Rule) -> None:
    doc = rule.doc
    assert doc.startswith("## What it does\n"), rule.code
    assert "\n## Why is this bad?\n" in doc, rule.code
    headings = re.findall(r"^## (.+)$", doc, re.M)
    assert set(headings) <= {"What it does", "Why is this bad?", "Example", "Fix", "Options"}, headings
    assert rule.summary.endswith("."), rule.summary


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_every_option_is_documented(rule: registry.Rule) -> None:
    options = rule.options
    if not options:
        assert "## Options" not in rule.doc
        return
    section = rule.doc.split("## Options", 1)[1]
    for name, _default in options.items():
        assert f"`{name}`" in section, f"{rule.code}: option {name} is not documented"
    params = inspect.signature(rule.func).parameters.values()
    positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    expected = 0 if rule.scope is registry.Scope.READER else 1
    assert len(positional) == expected, f"{rule.code}: options must be keyword-only"


def test_codes_and_names_are_unique_and_stable() -> None:
    codes = [r.code for r in RULES]
    names = [r.name for r in RULES]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"FT\d{3}", c) for c in codes)


def test_every_problem_the_reader_and_normaliser_emit_has_a_rule() -> None:
    source_rules = {r.name for r in RULES if r.scope is registry.Scope.READER}
    assert source_rules >= io.PROBLEM_KINDS
    assert source_rules >= formats.PROBLEM_KINDS
    assert source_rules - io.PROBLEM_KINDS - formats.PROBLEM_KINDS == {"rule-error"}


def test_selection_by_code_prefix_name_and_all() -> None:
    assert [r.code for r in registry.select(["FT10"])] == [f"FT10{i}" for i in range(10)]
    assert [r.code for r in registry.select(["empty-content"])] == ["FT110"]
    everything = registry.select(["ALL"])
    assert len(everything) == len(RULES)
    default = registry.select()
    assert "FT106" not in {r.code for r in default}
    assert "FT106" in {r.code for r in registry.select(extend_select=["FT106"])}
    assert "FT110" not in {r.code for r in registry.select(["FT1"], ignore=["empty-content"])}
    with pytest.raises(KeyError):
        registry.select(["FT9"])


def test_rules_reference_is_current() -> None:
    """docs/rules.md is generated; regenerate with `make docs`."""
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == rules_markdown()


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((prefix + name, cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, prefix + name + " "))
    return out


@pytest.mark.parametrize(("name", "command"), _commands(main), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_and_option_has_help(name: str, command: click.Command) -> None:
    assert (command.help or "").strip(), f"`ftdata {name}` has no help"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"`ftdata {name} {param.opts[0]}` has no help"


def test_cli_reference_is_current() -> None:
    """docs/cli.md is generated from --help; regenerate with `make docs`."""
    from ftdata.cli.reference import cli_markdown

    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == cli_markdown()


OLD_SCOPE_PLUGIN = '''
from ftdata.registry import Scope, rule

DOC = """## What it does
Checks what the reader finds.

## Why is this bad?
It is not.
"""


@rule("XY900", "old-scope-member", scope=Scope.SOURCE)
def old_member() -> None:
    pass


@rule("XY901", "old-scope-value", scope="source")
def old_value() -> None:
    pass


old_member.__doc__ = old_value.__doc__ = DOC
'''


def test_a_plugin_registering_the_old_source_scope_loads_as_reader_with_a_warning(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "old_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "old_plugin.py").write_text(OLD_SCOPE_PLUGIN)
    (site / "old_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: old-plugin\nVersion: 0.1\n"
    )
    (site / "old_plugin-0.1.dist-info" / "entry_points.txt").write_text("[ftdata.rules]\nold = old_plugin\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-W", "always::DeprecationWarning", "-m", "ftdata", "rules", "--output-format", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    scopes = {r["code"]: r["scope"] for r in json.loads(result.stdout)}
    assert scopes["XY900"] == scopes["XY901"] == "reader"
    assert scopes["FT001"] == "reader"
    warnings = [line for line in result.stderr.splitlines() if "DeprecationWarning" in line]
    # one per old use, each pointing at the plugin's own line
    assert len(warnings) == 2, result.stderr
    assert all("old_plugin.py:" in line and "use Scope.READER" in line for line in warnings)


def test_the_old_scope_names_are_aliases_and_unknown_scopes_are_refused() -> None:
    with pytest.warns(DeprecationWarning, match="Scope.READER"):
        assert registry.Scope.SOURCE is registry.Scope.READER
    with pytest.warns(DeprecationWarning, match="Scope.READER"):
        assert registry.Scope("source") is registry.Scope.READER
    assert [s.value for s in registry.Scope] == ["reader", "record", "dataset", "files"]
    with pytest.raises(AttributeError):
        registry.Scope.SOURCES  # noqa: B018
    with pytest.raises(ValueError, match="unknown scope 'recrd'"):
        registry.rule("XY902", "typo-scope", scope="recrd")
