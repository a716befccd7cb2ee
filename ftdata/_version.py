"""The package version, read by pyproject.toml and reported by the CLI."""

__version__ = "0.1.0"
