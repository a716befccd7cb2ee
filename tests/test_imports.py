"""The lint path stays light: pre-commit starts it on every commit."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "torch",
    "transformers",
    "datasets",
    "sentence_transformers",
    "sklearn",
    "pandas",
    "ray",
    "trl",
    "peft",
    "numpy",
)


def test_cli_and_a_default_lint_run_import_nothing_heavy(tmp_path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    code = (
        f"import sys, ftdata.cli, ftdata\nftdata.lint({str(data)!r})\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
