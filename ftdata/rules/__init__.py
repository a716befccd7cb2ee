"""Built-in rules, one module per family. Importing this package registers them all."""

from ftdata.rules import consistency, content, schema, syntax, tools

__all__ = ["consistency", "content", "schema", "syntax", "tools"]
