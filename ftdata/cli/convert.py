"""``ftdata convert`` (placeholder until implemented)."""

from __future__ import annotations

from ftdata.cli import main


@main.command("convert")
def convert_command() -> None:
    """Convert a file to another format."""
    raise SystemExit(2)
