"""The one registry of rules: ``@rule(...)``, lookup and selection.

Built-in rules live in :mod:`ftdata.rules` (an explicit import list). Third-party rules
register the same way from modules named in the ``ftdata.rules`` entry-point group.
"""

from __future__ import annotations

import enum
import inspect
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ftdata.findings import Severity

if TYPE_CHECKING:  # pragma: no cover
    from ftdata.requirements import Requirement

#: (low, high) bounds of a numeric option, inclusive; None leaves a side open.
Range = tuple[float | None, float | None]

#: Bounds for numeric options that declare none: wide, but no overflow in C code.
_INT_BOUNDS: Range = (-(2**53), 2**53)

CODE_RE = re.compile(r"^[A-Z]{2,5}[0-9]{3}$")
NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class _ScopeType(enum.EnumMeta):
    """Keeps ``Scope.SOURCE``, the old name of ``Scope.READER``, working for plugins."""

    def __getattr__(cls, name: str) -> Any:
        if name == "SOURCE":
            warnings.warn(_SOURCE_DEPRECATED, DeprecationWarning, stacklevel=2)
            return cls.READER  # type: ignore[attr-defined]
        raise AttributeError(name)


_SOURCE_DEPRECATED = "Scope.SOURCE (scope 'source') is deprecated: use Scope.READER"


class Scope(enum.Enum, metaclass=_ScopeType):
    """What a rule looks at.

    READER rules are checked by the reader and the format normaliser themselves (invalid
    JSON, a missing key): the rule entry carries their code, severity, options and docs.
    RECORD rules are functions of one record; DATASET rules see the whole dataset once;
    FILES rules see the files of one dataset together (train.jsonl beside eval.jsonl) and
    yield ``(position of the file, Issue)`` pairs.

    ``Scope.SOURCE`` and the value ``"source"`` are deprecated names of ``READER``, still
    accepted (with a DeprecationWarning) so that plugins written against them load.
    """

    READER = "reader"
    RECORD = "record"
    DATASET = "dataset"
    FILES = "files"

    @classmethod
    def _missing_(cls, value: object) -> Scope | None:
        if value == "source":
            # stacklevel 4: past Enum.__new__ and EnumType.__call__, at whoever called Scope(...).
            warnings.warn(_SOURCE_DEPRECATED, DeprecationWarning, stacklevel=4)
            return cls.READER
        return None


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    scope: Scope
    severity: Severity
    func: Callable[..., Any]
    default: bool = True
    fixable: bool = False
    collect: Callable[..., Any] | None = None
    requires: tuple[Requirement, ...] = ()
    ranges: Mapping[str, Range] = field(default_factory=dict)
    reader_options: Mapping[str, str] = field(default_factory=dict)
    #: Stronger rules of the same scope that report the same problem: a finding of this
    #: rule on a record one of them reports is dropped (see :func:`rule`).
    superseded_by: tuple[str, ...] = ()

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.func) or ""

    @property
    def summary(self) -> str:
        """The first sentence of the rule's *What it does* section."""
        text = self.doc
        match = re.search(r"## What it does\s*\n(.+?)(?:\n\s*\n|$)", text, re.S)
        body = " ".join((match.group(1) if match else text).split())
        sentence = re.split(r"(?<=\.)\s", body, maxsplit=1)[0]
        return sentence

    @property
    def options(self) -> dict[str, Any]:
        """Keyword-only parameters and their defaults: the rule's options."""
        params = inspect.signature(self.func).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Validate user options against the signature; raise ValueError with a clear message."""
        known = self.options
        clean: dict[str, Any] = {}
        for key, value in options.items():
            name = key.replace("-", "_")
            if name not in known:
                choices = ", ".join(sorted(known)) or "none"
                raise ValueError(f"rule {self.code} ({self.name}) has no option {key!r} (options: {choices})")
            default = known[name]
            if not _same_kind(value, default):
                raise ValueError(
                    f"option {key!r} of rule {self.code} ({self.name}) expects {type(default).__name__}, got {value!r}"
                )
            low, high = self.ranges.get(name, _INT_BOUNDS if isinstance(default, int) else (None, None))
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric and ((low is not None and value < low) or (high is not None and value > high) or value != value):
                bounds = f"{'-inf' if low is None else _num(low)} to {'inf' if high is None else _num(high)}"
                raise ValueError(f"option {key!r} of rule {self.code} ({self.name}) must be in {bounds}, got {value!r}")
            clean[name] = value
        return clean


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _same_kind(value: Any, default: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, tuple | list | frozenset):
        return isinstance(value, list | tuple)
    return isinstance(value, type(default))


_RULES: dict[str, Rule] = {}
_BY_NAME: dict[str, Rule] = {}
_LOADED = False


def rule(
    code: str,
    name: str,
    *,
    scope: Scope | str = Scope.RECORD,
    severity: Severity = Severity.WARNING,
    default: bool = True,
    fixable: bool = False,
    collect: Callable[..., Any] | None = None,
    requires: Iterable[Requirement] = (),
    ranges: Mapping[str, Range] | None = None,
    reader_options: Mapping[str, str] | None = None,
    superseded_by: Iterable[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a rule. The decorated function's docstring is its documentation.

    ``scope`` is a :class:`Scope` or its value (``"dataset"``); ``requires`` lists what
    the rule needs to run (checked before any data is read);
    ``ranges`` bounds its numeric options (inclusive); ``reader_options`` maps an option
    of a reader rule to the reader bound it sets (``{"max_bytes": "max_line_bytes"}``);
    ``superseded_by`` names stronger dataset rules that see the same problem (FT404 near
    duplicates by FT401 exact ones): when both run, a record the stronger one reports is
    reported once, by it, and a weaker group that holds such records says how many."""
    if not CODE_RE.match(code):
        raise ValueError(f"rule code {code!r} must look like FT123")
    if not NAME_RE.match(name):
        raise ValueError(f"rule name {name!r} must be kebab-case")
    where = _scope(code, scope)

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        if code in _RULES and _RULES[code].func is not func:
            raise ValueError(f"rule code {code} registered twice")
        if name in _BY_NAME and _BY_NAME[name].code != code:
            raise ValueError(f"rule name {name} registered twice")
        entry = Rule(
            code,
            name,
            where,
            severity,
            func,
            default,
            fixable,
            collect,
            tuple(requires),
            dict(ranges or {}),
            dict(reader_options or {}),
            tuple(superseded_by),
        )
        unknown = (set(entry.ranges) | set(entry.reader_options)) - set(entry.options)
        if unknown:
            raise ValueError(f"rule {code} declares bounds for options it does not have: {sorted(unknown)}")
        _RULES[code] = entry
        _BY_NAME[name] = entry
        return func

    return register


def _scope(code: str, scope: Scope | str) -> Scope:
    """``scope`` as a Scope: a plugin may give the value (``"record"``), or the old ``"source"``."""
    if isinstance(scope, Scope):
        return scope
    if scope == "source":
        # stacklevel 3: the plugin module calling @rule(...), not this helper.
        warnings.warn(_SOURCE_DEPRECATED, DeprecationWarning, stacklevel=3)
        return Scope.READER
    try:
        return Scope(scope)
    except ValueError:
        known = ", ".join(s.value for s in Scope)
        raise ValueError(f"rule {code}: unknown scope {scope!r} (known: {known})") from None


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from importlib.metadata import entry_points

    import ftdata.rules  # noqa: F401  (registers the built-in rules)

    for ep in entry_points(group="ftdata.rules"):
        ep.load()


def all_rules() -> list[Rule]:
    """Every registered rule, by code."""
    _load()
    return [_RULES[c] for c in sorted(_RULES)]


def get(code_or_name: str) -> Rule:
    """A rule by code (``FT107``) or name (``unrecognised-role``); KeyError if unknown."""
    _load()
    key = code_or_name.strip()
    found = _RULES.get(key.upper()) or _BY_NAME.get(key.lower())
    if found is None:
        raise KeyError(code_or_name)
    return found


def resolve(selector: str) -> list[Rule]:
    """Rules matched by a selector: ``ALL``, a code, a code prefix (``FT1``) or a name."""
    _load()
    key = selector.strip()
    if not key:
        return []
    if key.upper() == "ALL":
        return all_rules()
    if key.lower() in _BY_NAME:
        return [_BY_NAME[key.lower()]]
    prefix = key.upper()
    matched = [r for r in all_rules() if r.code.startswith(prefix)]
    if not matched:
        raise KeyError(selector)
    return matched


def select(
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    extend_select: Iterable[str] = (),
) -> list[Rule]:
    """The rules a run uses: ``select`` (default: every default rule) plus ``extend_select``,
    minus ``ignore``. An unknown selector raises KeyError."""
    if select is None:
        chosen = {r.code: r for r in all_rules() if r.default}
    else:
        chosen = {r.code: r for s in select for r in resolve(s)}
    for s in extend_select:
        chosen.update({r.code: r for r in resolve(s)})
    for s in ignore:
        for r in resolve(s):
            chosen.pop(r.code, None)
    return [chosen[c] for c in sorted(chosen)]
