"""Third-party rules arrive through the ``ftdata.rules`` entry-point group."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_cli

PLUGIN = '''
from ftdata import Issue, Severity, rule


@rule("XY001", "no-shouting", severity=Severity.WARNING)
def no_shouting(record, *, max_ratio: float = 0.5):
    """## What it does
    Checks for assistant replies written mostly in capitals.

    ## Why is this bad?
    The model learns to shout.

    ## Options
    - `max_ratio` (float, default 0.5): the largest share of capital letters allowed.
    """
    out = []
    for role, text, path in record.segments:
        letters = [c for c in text if c.isalpha()]
        if role == "assistant" and letters and sum(c.isupper() for c in letters) / len(letters) > max_ratio:
            out.append(Issue("assistant reply is mostly capitals", path=path))
    return out
'''


def test_entry_point_rules_are_registered_documented_and_run(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "shout_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "shout_plugin.py").write_text(PLUGIN)
    (site / "shout_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: shout-plugin\nVersion: 0.1\n"
    )
    (site / "shout_plugin-0.1.dist-info" / "entry_points.txt").write_text("[ftdata.rules]\nshout = shout_plugin\n")
    data = tmp_path / "data.jsonl"
    data.write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "HELLO THERE"}]})
        + "\n"
    )
    os.environ["PYTHONPATH"] = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    try:
        doc = run_cli("rule", "XY001")
        assert doc.returncode == 0, doc.stderr
        assert doc.stdout.startswith("# no-shouting (XY001)")
        found = run_cli("lint", data, "--select", "XY", "--output-format", "json")
        assert [(f["code"], f["path"]) for f in json.loads(found.stdout)] == [("XY001", ["messages", 1, "content"])]
        config = tmp_path / "ftdata.toml"
        config.write_text("[rules.no-shouting]\nmax_ratio = 1.0\n")
        quiet = run_cli("lint", data, "--select", "XY001", "--config", config)
        assert quiet.returncode == 0
        assert "All checks passed" in quiet.stdout
    finally:
        os.environ["PYTHONPATH"] = os.environ["PYTHONPATH"].split(os.pathsep, 1)[1]
