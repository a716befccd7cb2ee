"""Convert fine-tuning files between formats (placeholder until implemented)."""

from __future__ import annotations

from typing import Any


def convert(*args: Any, **kwargs: Any) -> Any:
    """Convert a file to another format."""
    raise NotImplementedError("ftdata.convert is not implemented yet")
