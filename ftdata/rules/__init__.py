"""Built-in rules, one module per family. Importing this package registers them all."""

from ftdata.rules import (
    consistency,
    content,
    duplicates,
    leakage,
    media,
    preference,
    replies,
    schema,
    syntax,
    text_quality,
    tokens,
    tools,
)

__all__ = [
    "consistency",
    "content",
    "duplicates",
    "leakage",
    "media",
    "preference",
    "replies",
    "schema",
    "syntax",
    "text_quality",
    "tokens",
    "tools",
]
