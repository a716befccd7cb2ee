"""Settings: from ``[tool.ftdata]`` in pyproject.toml or from ftdata.toml, then overridden by
keyword arguments or command-line options. An unknown key is an error, never ignored."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ftdata.findings import Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


#: Settings that fill the option of the same name of every rule that has one.
SHARED_OPTIONS = ("tokenizer", "max_length")


#: Where shard functions run (see ftdata.executors.for_engine).
ENGINES = ("local", "ray")


class ConfigError(Exception):
    """A configuration problem; the CLI reports it and exits with status 2."""


@dataclass(frozen=True)
class Settings:
    """Everything that decides what a lint run checks and how strictly."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    profile: str | None = None
    format: str | None = None
    severity: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fail_on: str = "error"
    max_errors: int | None = None
    baseline: str | None = None
    tokenizer: str | None = None
    max_length: int | None = None
    splits: Mapping[str, Any] = field(default_factory=dict)
    #: ``{source: target}``: the file's own keys read as a type's (see ftdata.formats.fields).
    fields: Mapping[str, str] = field(default_factory=dict)
    #: A LLaMA-Factory dataset_info.json naming each file's format and columns; None: the
    #: one next to each data file, when there is one.
    dataset_info: str | None = None
    #: Where the shards of large files run: ``local`` (this machine's processes) or
    #: ``ray`` (a Ray cluster at ``address``; None: start or join the local one).
    engine: str = "local"
    address: str | None = None
    #: Where ``ftdata lint`` keeps its cache (None: ``.ftdata_cache`` in the project root,
    #: the folder of this configuration file); see ftdata.engine.cache.
    cache_dir: str | None = None
    path: str | None = None  # the file these settings came from

    @property
    def format_spec(self) -> str | None:
        """The format and the mapping as one spec string, what the normaliser takes."""
        from ftdata.formats.fields import compose

        return compose(self.format, self.fields)

    def override(self, **changes: Any) -> Settings:
        """A copy with the non-None ``changes`` applied; ``ignore`` and ``extend_select``
        add to what is there, ``options`` and ``severity`` merge per rule."""
        clean: dict[str, Any] = {}
        if changes.get("format") is not None and "[" in str(changes["format"]):
            # A format spec (``alpaca[question=instruction]``): its mapping joins ``fields``.
            from ftdata.formats.fields import FieldsError, parse_spec

            try:
                spec = parse_spec(changes["format"])
            except FieldsError as e:
                raise ConfigError(str(e)) from None
            extra = spec.fields.as_dict() if spec.fields else {}
            changes = {
                **changes,
                "format": spec.format,
                "fields": {**extra, **(changes.get("fields") or {})},
                "dataset_info": changes.get("dataset_info") or spec.dataset_info,
            }
            if spec.format is None:
                clean["format"] = self.format
        for key, value in changes.items():
            if value is None:
                continue
            if key == "fields":
                value = {**self.fields, **_fields(value, "fields")}
            elif key in ("ignore", "extend_select"):
                value = (*getattr(self, key), *_strings(value, key))
            elif key == "select":
                value = _strings(value, key)
            elif key == "severity":
                value = {**self.severity, **value}
            elif key == "options":
                merged = {k: dict(v) for k, v in self.options.items()}
                for rule_key, opts in value.items():
                    merged.setdefault(rule_key, {}).update(opts)
                value = merged
            clean[key] = value
        return replace(self, **clean)


_TOP_KEYS = {
    "select": "select",
    "ignore": "ignore",
    "extend-select": "extend_select",
    "profile": "profile",
    "format": "format",
    "severity": "severity",
    "rules": "options",
    "fail-on": "fail_on",
    "max-errors": "max_errors",
    "baseline": "baseline",
    "tokenizer": "tokenizer",
    "max-length": "max_length",
    "splits": "splits",
    "fields": "fields",
    "dataset-info": "dataset_info",
    "engine": "engine",
    "address": "address",
    "cache-dir": "cache_dir",
}

#: ``[tool.ftdata.splits]``: the dataset's split files and how to audit them for leaks.
SPLIT_KEYS = {
    "files": list,
    "scope": str,
    "methods": list,
    "threshold": float,
    "semantic-threshold": float,
    "model": str,
    "stratify-by": str,
    "min-eval": int,
}
#: Which rule option each ``[tool.ftdata.splits]`` key fills.
SPLIT_OPTIONS = {
    "scope": [("FT601", "scope"), ("FT602", "scope"), ("FT603", "scope")],
    "threshold": [("FT602", "threshold")],
    "semantic-threshold": [("FT603", "threshold")],
    "model": [("FT603", "model")],
    "stratify-by": [("FT606", "field")],
    "min-eval": [("FT605", "min_records")],
}


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key!r} must be a list of strings, got {value!r}")
    out: list[str] = []
    for v in value:
        out.extend(part.strip() for part in v.split(",") if part.strip())
    return tuple(out)


def parse_option(text: str) -> tuple[str, str, Any]:
    """``"FT501.max_length=4096"`` -> ``("FT501", "max_length", 4096)``; the value is read as
    TOML (numbers, booleans, quoted strings, lists) and otherwise taken as a string."""
    target, sep, raw = text.partition("=")
    rule_key, dot, name = target.strip().rpartition(".")
    if not sep or not dot or not rule_key or not name:
        raise ConfigError(f"--option expects RULE.NAME=VALUE, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return rule_key, name.replace("-", "_"), value


def find_config(start: Path) -> Path | None:
    """The nearest ``ftdata.toml``, or ``pyproject.toml`` with a ``[tool.ftdata]`` table,
    in ``start`` or a folder above it."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "ftdata.toml"
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
                raise ConfigError(f"{pyproject}: {e}") from None
            if "ftdata" in data.get("tool", {}):
                return pyproject
    return None


def load_config(path: Path) -> Settings:
    """Read and validate one configuration file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("ftdata", {})
        where = f"{path} [tool.ftdata]"
    else:
        table = data
        where = str(path)
    return settings_from_mapping(table, where=where, path=str(path))


def settings_from_mapping(table: Mapping[str, Any], *, where: str = "config", path: str | None = None) -> Settings:
    """Validate a ``[tool.ftdata]``-shaped mapping into Settings."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    values: dict[str, Any] = {"path": path}
    for key, value in table.items():
        if key not in _TOP_KEYS:
            raise _unknown_key(key, _TOP_KEYS, where)
        attr = _TOP_KEYS[key]
        if attr in ("select", "ignore", "extend_select"):
            value = _strings(value, key)
        elif attr == "splits":
            value = _check_splits(value, where)
        elif attr == "fields":
            value = _fields(value, f"{where}: [fields]")
        elif attr in ("severity", "options"):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: {key!r} must be a table")
            value = dict(value)
        elif attr in ("max_errors", "max_length"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}: {key!r} must be a positive integer")
        elif not isinstance(value, str):
            raise ConfigError(f"{where}: {key!r} must be a string")
        values[attr] = value
    if path is not None:
        values = _relative_to(values, Path(path).resolve().parent)
    settings = Settings(**values)
    try:
        validate(settings)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return settings


def _unknown_key(key: str, known: Iterable[str], where: str, table: str = "") -> ConfigError:
    """The error for a key the configuration does not know, with the nearest known one."""
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{where}: unknown key {key!r}{table}{hint}")


def _fields(table: Any, where: str) -> dict[str, str]:
    """A ``{source: target}`` table of strings, checked as a field mapping."""
    from ftdata.formats.fields import FieldMap, FieldsError

    if not isinstance(table, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
        raise ConfigError(f"{where} must map field names to field names (strings), got {table!r}")
    try:
        FieldMap.of(table)
    except FieldsError as e:
        raise ConfigError(f"{where}: {e}") from None
    return dict(table)


def _check_splits(table: Any, where: str) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: 'splits' must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in SPLIT_KEYS:
            raise _unknown_key(key, SPLIT_KEYS, where, " in [splits]")
        kind = SPLIT_KEYS[key]
        ok = (
            isinstance(value, int | float) and not isinstance(value, bool) if kind is float else isinstance(value, kind)
        )
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(f"{where}: [splits] {key!r} must be a {kind.__name__}")
        if kind is list and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: [splits] {key!r} must be a list of strings")
        out[key] = value
    if "scope" in out and out["scope"] not in ("prompt", "answer", "conversation"):
        raise ConfigError(f"{where}: [splits] scope must be prompt, answer or conversation")
    if "methods" in out and not set(out["methods"]) <= {"exact", "minhash", "semantic"}:
        raise ConfigError(f"{where}: [splits] methods are exact, minhash and semantic")
    return out


def _relative_to(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Option values written as relative paths (``./x``, ``../x``) are relative to the
    configuration file, not to wherever ftdata runs."""

    def fix(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(("./", "../")):
            return str((folder / value).resolve())
        return value

    out = dict(values)
    if "tokenizer" in out:
        out["tokenizer"] = fix(out["tokenizer"])
    if "baseline" in out:
        out["baseline"] = fix(out["baseline"])
    if "dataset_info" in out:
        out["dataset_info"] = str((folder / out["dataset_info"]).resolve())
    if "cache_dir" in out:
        out["cache_dir"] = str((folder / Path(out["cache_dir"]).expanduser()).resolve())
    if "splits" in out and "files" in out["splits"]:
        out["splits"] = {**out["splits"], "files": [str((folder / f).resolve()) for f in out["splits"]["files"]]}
    if "options" in out:
        out["options"] = {
            rule: ({k: fix(v) for k, v in opts.items()} if isinstance(opts, Mapping) else opts)
            for rule, opts in out["options"].items()
        }
    return out


def validate(settings: Settings) -> None:
    """Check every selector, rule option, severity, profile and format; ConfigError if bad."""
    from ftdata import registry
    from ftdata.formats import FORMATS
    from ftdata.profiles import get_profile

    for attr in ("select", "ignore", "extend_select"):
        for selector in getattr(settings, attr) or ():
            try:
                registry.resolve(selector)
            except KeyError:
                raise ConfigError(f"unknown rule selector {selector!r} in {attr.replace('_', '-')}") from None
    for key, opts in settings.options.items():
        rule = _rule(key)
        if not isinstance(opts, Mapping):
            raise ConfigError(f"options of rule {key!r} must be a table")
        try:
            rule.check_options(dict(opts))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    for key, level in settings.severity.items():
        _rule(key)
        try:
            Severity.parse(level)
        except ValueError as e:
            raise ConfigError(f"severity of {key!r}: {e}") from None
    if settings.profile is not None:
        try:
            get_profile(settings.profile)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if settings.format is not None and settings.format not in FORMATS:
        raise ConfigError(f"unknown format {settings.format!r} (known: {', '.join(FORMATS)})")
    try:
        Severity.parse(settings.fail_on)
    except ValueError as e:
        raise ConfigError(f"fail-on: {e}") from None
    if settings.engine not in ENGINES:
        raise ConfigError(f"unknown engine {settings.engine!r} (known: {', '.join(ENGINES)})")


def _rule(key: str) -> Any:
    from ftdata import registry

    try:
        return registry.get(key)
    except KeyError:
        raise ConfigError(f"unknown rule {key!r}") from None
