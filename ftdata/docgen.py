"""Rule documentation, generated from the rules' docstrings (``docs/rules.md``)."""

from __future__ import annotations

from typing import Any

import orjson

from ftdata import registry


def _facts(r: registry.Rule) -> str:
    facts = (
        f"Default severity: {r.severity} · Scope: {r.scope.value} · "
        f"Enabled by default: {'yes' if r.default else 'no'} · Fixable: {'yes' if r.fixable else 'no'}"
    )
    if r.superseded_by:
        facts += f" · Records also reported by {' or '.join(r.superseded_by)} are left to them"
    return facts


def rule_text(r: registry.Rule) -> str:
    """What ``ftdata rule CODE`` prints."""
    return f"# {r.name} ({r.code})\n\n{_facts(r)}\n\n{r.doc}\n"


def rules_table() -> str:
    rows = registry.all_rules()
    width = max(len(r.name) for r in rows)
    lines = [f"{'code':6}  {'name':{width}}  {'severity':8}  {'scope':7}  summary"]
    for r in rows:
        flag = "" if r.default else " (opt-in)"
        lines.append(f"{r.code:6}  {r.name:{width}}  {r.severity!s:8}  {r.scope.value:7}  {r.summary}{flag}")
    return "\n".join(lines)


def rules_json() -> str:
    out: list[dict[str, Any]] = [
        {
            "code": r.code,
            "name": r.name,
            "severity": str(r.severity),
            "scope": r.scope.value,
            "default": r.default,
            "fixable": r.fixable,
            "superseded_by": list(r.superseded_by),
            "summary": r.summary,
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in r.options.items()},
            "doc": r.doc,
        }
        for r in registry.all_rules()
    ]
    return orjson.dumps(out, option=orjson.OPT_INDENT_2).decode()


def rules_markdown() -> str:
    """The rules reference; ``docs/rules.md`` is this text and a test keeps it current."""
    rows = registry.all_rules()
    out = [
        "# Rules",
        "",
        "Generated from the rules' docstrings by `ftdata rules --output-format markdown`; do not edit by hand.",
        "Every rule has a code that never changes and a name; `--select`, `--ignore` and the",
        "configuration accept either, or a code prefix such as `FT1`.",
        "",
        "| Code | Name | Severity | Scope | Default | Fix | Summary |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        out.append(
            f"| [{r.code}](#{r.code.lower()}-{r.name}) | `{r.name}` | {r.severity} | {r.scope.value} | "
            f"{'on' if r.default else 'opt-in'} | {'yes' if r.fixable else ''} | {r.summary} |"
        )
    for r in rows:
        out += ["", f"## {r.code} {r.name}", "", _facts(r), "", _demote(r.doc)]
    return "\n".join(out) + "\n"


def _demote(doc: str) -> str:
    """Nest the rule's own ``##`` sections under its heading."""
    return "\n".join("#" + line if line.startswith("## ") else line for line in doc.splitlines())


#: ``ftdata rules --output-format``: each rendering of the rule reference.
RULE_LIST_RENDERERS = {"text": rules_table, "json": rules_json, "markdown": rules_markdown}


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(rules_markdown())
