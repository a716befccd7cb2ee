"""``python -m ftdata``."""

from ftdata.cli import run

run()
