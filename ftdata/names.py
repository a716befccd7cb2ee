"""The names users type, defined once and importable without loading anything else (the
CLI builds its choice lists from them; a test checks them against the library)."""

from __future__ import annotations

#: Input formats the normaliser reads (``--input-format``).
INPUT_FORMATS = (
    "messages",
    "prompt-completion",
    "alpaca",
    "sharegpt",
    "text",
    "preference",
    "unpaired-preference",
    "stepwise-supervision",
)
#: Provider profiles (``--profile``).
PROFILES = ("openai", "together", "mistral", "trl")
#: Renderings of a lint report (``--output-format``).
OUTPUT_FORMATS = ("concise", "full", "json", "json-lines", "github", "sarif")
#: Renderings of the rule reference (``ftdata rules --output-format``).
RULE_LIST_FORMATS = ("text", "json", "markdown")
#: The embedding model used when none is named (semantic duplicates and leakage).
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
