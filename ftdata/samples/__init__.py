"""Sample datasets shipped with ftdata, for the demo, the notebook and experiments.

``support_chat.jsonl`` is a small customer-support chat dataset with deliberate problems
(system-prompt drift, duplicates, a contradiction, role typos, an invalid line...).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def path(name: str = "support_chat.jsonl") -> Path:
    """The path of a bundled sample file."""
    found = HERE / name
    if not found.is_file():
        raise FileNotFoundError(
            f"no sample named {name!r} (have: {', '.join(sorted(p.name for p in HERE.glob('*.json*')))})"
        )
    return found
