"""The layout holds: no import cycle, rules import only from below them, no private name
crosses a module, no orphan rule module, choice lists match the library, modules stay small."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import click

import ftdata.rules
from ftdata import names
from tests.conftest import ROOT

PACKAGES = ("ftdata", "ftdata_train")
#: Modules rules may import: what sits below them in the layering.
RULE_MAY_IMPORT = (
    "ftdata.engine.dataset",
    "ftdata.findings",
    "ftdata.formats",
    "ftdata.io",
    "ftdata.jsonstrict",
    "ftdata.names",
    "ftdata.problems",
    "ftdata.records",
    "ftdata.registry",
    "ftdata.requirements",
    "ftdata.rules",
    "ftdata.similarity",
    "ftdata.splitnames",
    "ftdata.stats",
    "ftdata.tokens",
)
#: Rule families whose modules are mostly their rules' documentation.
DOC_HEAVY = ("ftdata/rules/",)
MAX_LINES = 420
#: Modules allowed over the limit, at their size then: they may only shrink. None today.
KNOWN_LARGE: dict[str, int] = {}
#: Standard modules that reach files, processes or the network: no check imports them.
IO_MODULES = {"glob", "io", "mmap", "os", "pathlib", "shutil", "socket", "subprocess", "tempfile", "urllib"}
#: What may be imported from them all the same: pure path arithmetic.
IO_PURE_NAMES = {"PurePath", "PurePosixPath", "PureWindowsPath"}
#: Calls that read or touch the file system, whatever object they are made on.
IO_METHODS = {
    "exists", "glob", "is_dir", "is_file", "iterdir", "mkdir", "open", "read_bytes", "read_text",
    "rglob", "stat", "unlink", "write_bytes", "write_text",
}  # fmt: skip


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str, *, top_level_only: bool) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) for each ftdata import of a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                continue
            if isinstance(node, ast.Import):
                out.extend((a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] in PACKAGES)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
                if base.split(".")[0] in PACKAGES:
                    out.append((base, [a.name for a in node.names], node.lineno))
            if not top_level_only:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        visit([child])
                    else:
                        visit([n for n in ast.walk(child) if isinstance(n, ast.stmt)])
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return out


def _target(imported: str, names_: list[str], modules: dict[str, Path]) -> list[str]:
    """Modules an import statement loads (``from ftdata import io`` loads ftdata.io)."""
    targets = [imported] if imported in modules else []
    targets += [f"{imported}.{n}" for n in names_ if f"{imported}.{n}" in modules]
    return targets


def test_the_module_level_import_graph_has_no_cycle() -> None:
    modules = _modules()
    graph = {
        name: {
            t
            for imported, names_, _ in _imports(path, name, top_level_only=True)
            for t in _target(imported, names_, modules)
            if t != name and not name.startswith(t + ".")  # a package's own __init__ is loaded first anyway
        }
        for name, path in modules.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_rules_import_only_from_below_them() -> None:
    bad = []
    for name, path in _modules().items():
        if not name.startswith("ftdata.rules"):
            continue
        for imported, _, line in _imports(path, name, top_level_only=False):
            if imported == "ftdata" or not imported.startswith(RULE_MAY_IMPORT):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert bad == []


def test_no_private_name_is_imported_across_modules() -> None:
    bad = []
    for name, path in _modules().items():
        for imported, names_, line in _imports(path, name, top_level_only=False):
            private = [n for n in names_ if n.startswith("_") and not n.startswith("__")]
            if private:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {private} from {imported}")
    assert bad == []


def _io_uses(path: Path) -> list[str]:
    """Where a module imports a file-system module, or calls ``open`` or a file method."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in IO_MODULES]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in IO_MODULES:
            impure = [a.name for a in node.names if a.name not in IO_PURE_NAMES]
            if impure:
                found.append(f"{node.lineno}: from {node.module} import {', '.join(impure)}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                found.append(f"{node.lineno}: open(...)")
            elif isinstance(func, ast.Attribute) and func.attr in IO_METHODS:
                found.append(f"{node.lineno}: .{func.attr}(...)")
    return found


def test_checks_do_no_io() -> None:
    """What a rule reads (a schema file) the plan loads before the pass (``requirements.Loader``)."""
    bad = [
        f"{path.relative_to(ROOT)}:{use}"
        for name, path in _modules().items()
        if name.startswith("ftdata.rules")
        for use in _io_uses(path)
    ]
    assert bad == []


def test_the_io_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os.path\nfrom pathlib import Path, PurePath\nfrom io import StringIO\n"
        "def check(record, *, schema=''):\n"
        "    text = Path(schema).read_text()\n    with open(schema) as f:\n        f.read()\n"
        "    return PurePath(schema).name, Path(schema).exists()\n"
    )
    assert _io_uses(probe) == [
        "1: import os.path",
        "2: from pathlib import Path",
        "3: from io import StringIO",
        "5: .read_text(...)",
        "6: open(...)",
        "8: .exists(...)",
    ]


def test_every_rule_module_is_registered() -> None:
    on_disk = {m.name for m in pkgutil.iter_modules(ftdata.rules.__path__)}
    assert on_disk == set(ftdata.rules.__all__), "a rule module missing from ftdata/rules/__init__.py is never loaded"


def test_modules_stay_small() -> None:
    big = []
    for path in _modules().values():
        rel = path.relative_to(ROOT).as_posix()
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > KNOWN_LARGE.get(rel, MAX_LINES) and not rel.startswith(DOC_HEAVY):
            big.append(f"{rel}: {lines} lines")
    assert big == []


def test_choice_lists_match_the_library() -> None:
    from ftdata.cli import main
    from ftdata.docgen import RULE_LIST_RENDERERS
    from ftdata.engine.dataset import FORMAT_CODES
    from ftdata.profiles import PROFILES
    from ftdata.render import OUTPUT_FORMATS

    assert tuple(n for n in FORMAT_CODES if n is not None) == names.INPUT_FORMATS
    assert tuple(PROFILES) == names.PROFILES
    assert tuple(OUTPUT_FORMATS) == names.OUTPUT_FORMATS
    assert tuple(RULE_LIST_RENDERERS) == names.RULE_LIST_FORMATS
    choices = {
        "input_format": names.INPUT_FORMATS,
        "profile": names.PROFILES,
    }
    for command in main.commands.values():
        for param in command.params:
            if param.name in choices and isinstance(param.type, click.Choice):
                assert tuple(param.type.choices) == choices[param.name], (command.name, param.name)
    lint_formats = next(p for p in main.commands["lint"].params if p.name == "output_format")
    assert tuple(lint_formats.type.choices) == names.OUTPUT_FORMATS  # type: ignore[attr-defined]


def test_every_command_has_help_and_a_reference_entry() -> None:
    from ftdata.cli import main

    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, command in main.commands.items():
        assert command.help, name
        assert f"## ftdata {name}\n" in reference, name
