"""``ftdata rule`` and ``ftdata rules``: the rule documentation."""

from __future__ import annotations

import click

from ftdata.cli import AliasedOption, UsageFailure, main
from ftdata.names import RULE_LIST_FORMATS


@main.command("rule")
@click.argument("code")
def rule_command(code: str) -> None:
    """Show a rule's documentation (by code or name)."""
    from ftdata import registry
    from ftdata.docgen import rule_text

    try:
        found = registry.get(code)
    except KeyError:
        raise UsageFailure(f"unknown rule {code!r}; `ftdata rules` lists them") from None
    click.echo(rule_text(found))


@main.command("rules")
@click.option(
    "--output-format",
    "--format",
    "fmt",
    cls=AliasedOption,
    type=click.Choice(RULE_LIST_FORMATS),
    default="text",
    show_default=True,
    help="text: a table; json: every field; markdown: the reference in docs/rules.md.",
)
def rules_command(fmt: str) -> None:
    """List every rule with its code, name, default severity and summary."""
    from ftdata.docgen import RULE_LIST_RENDERERS

    text = RULE_LIST_RENDERERS[fmt]()
    click.echo(text, nl=not text.endswith("\n"))
