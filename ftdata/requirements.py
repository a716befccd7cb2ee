"""What a rule needs before it can run, checked by the plan before any data is read.

A rule declares ``requires=(Module("sentence_transformers", extra="embed"), Tokenizer())``;
each requirement's ``check(options)`` returns ``None`` when satisfied, or the cause and
the fix in one sentence. A missing requirement is an error of the run (exit 2), never a
silently skipped check.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlparse

from ftdata.config import ConfigError

if TYPE_CHECKING:
    from ftdata.engine.plan import BoundRule


class RequirementError(ConfigError):
    """A selected rule cannot run: a missing extra, tokenizer, model or file."""


class Requirement(Protocol):
    """Something a rule needs; ``check`` gets the rule's bound options."""

    def check(self, options: Mapping[str, Any]) -> str | None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Module:
    """An importable module, installed with ``pip install 'ftdata[EXTRA]'``."""

    name: str
    extra: str

    def check(self, options: Mapping[str, Any]) -> str | None:
        try:
            found = importlib.util.find_spec(self.name) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return None
        return (
            f"the Python module {self.name!r} is not installed (install the extra: pip install 'ftdata[{self.extra}]')"
        )

    def describe(self) -> str:
        return f"the `{self.extra}` extra (`pip install 'ftdata[{self.extra}]'`)"


@dataclass(frozen=True)
class Tokenizer:
    """The tokenizer named by an option, loadable now (a local folder, the local cache,
    or a reachable hub); an empty option means the rule estimates instead."""

    option: str = "tokenizer"
    #: True for rules that cannot estimate: an empty option is then an error, not a pass.
    required: bool = False

    def check(self, options: Mapping[str, Any]) -> str | None:
        name = options.get(self.option) or ""
        if not name:
            return "it needs a tokenizer (--tokenizer NAME_OR_PATH)" if self.required else None
        from ftdata.tokens import load_tokenizer

        try:
            load_tokenizer(name)
        except (OSError, ValueError, ImportError, RequirementError) as e:
            return f"tokenizer {name!r} could not be loaded: {_first_line(e)}"
        return None

    def describe(self) -> str:
        return f"the tokenizer in option `{self.option}`, when set (a local folder or a model id in the local cache)"


@dataclass(frozen=True)
class EmbeddingModel:
    """The sentence-transformers model named by an option, loadable now. Loading one takes
    seconds, so it is tried only once every other requirement of the run is met."""

    option: str = "model"
    #: Checked after the others, and not at all when one of them is unmet.
    costly: ClassVar[bool] = True

    def check(self, options: Mapping[str, Any]) -> str | None:
        name = options.get(self.option) or ""
        if not name:
            return f"option {self.option!r} names no model"
        from ftdata.similarity.embeddings import load_model

        try:
            load_model(name)
        except (OSError, ValueError, ImportError, RequirementError) as e:
            return f"embedding model {name!r} could not be loaded: {_first_line(e)}"
        return None

    def describe(self) -> str:
        return f"the embedding model in option `{self.option}` (a local folder or a model id in the local cache)"


@runtime_checkable
class Loader(Protocol):
    """A requirement whose resource the plan loads once, when it is compiled: ``load``
    returns the option values the check receives instead of the user's (a schema text
    becomes a :class:`JsonSchema`), and raises RequirementError when it cannot. Checks
    then do no I/O."""

    def load(self, options: Mapping[str, Any]) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class SchemaFile:
    """A JSON Schema given inline or as a file path in an option, valid as a schema; the
    plan loads it and the check receives a :class:`JsonSchema` in that option."""

    option: str = "schema"

    def load(self, options: Mapping[str, Any]) -> Mapping[str, Any]:
        text = options.get(self.option) or ""
        if not isinstance(text, str) or not text:
            return {}
        try:
            return {self.option: load_schema(text)}
        except Exception as e:  # a broken schema of any kind is the same user error
            raise RequirementError(f"schema {text[:60]!r} could not be loaded: {_first_line(e)}") from None

    def check(self, options: Mapping[str, Any]) -> str | None:
        try:
            self.load(options)
        except RequirementError as e:
            return str(e)
        return None

    def describe(self) -> str:
        return f"a valid JSON Schema in option `{self.option}`, when set"


@dataclass(frozen=True)
class Source:
    """A data file as the requirements that look up the files its records name see it.
    ``dataset_info`` is the LLaMA-Factory dataset_info.json the run was given
    (``--dataset-info``, ``[tool.ftdata] dataset-info``); None: the one beside the file
    or in its parent folder, looked up as the file's format is."""

    file: Path
    dataset_info: str | None = None

    @functools.cached_property
    def named_in(self) -> Path | None:
        """The dataset_info.json whose entry names the file; None when none does."""
        from ftdata.formats.dataset_info import naming

        found = naming(self.file, Path(self.dataset_info) if self.dataset_info else None)
        return found[0] if found is not None else None

    @property
    def root(self) -> Path:
        """The folder relative paths in the records are relative to: LLaMA-Factory's
        ``dataset_dir`` (the folder of the dataset_info.json naming the file), else the
        file's own folder."""
        return self.named_in.parent if self.named_in is not None else self.file.parent


class SourceOptionError(ValueError):
    """An option whose value names nothing usable for one source (a folder that is not there)."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(problem)
        self.option = option


@runtime_checkable
class PerSource(Protocol):
    """A requirement the engine answers for each source, after the pass and before the
    dataset rule's check: ``answer`` gets the :class:`Source`, the values the rule's
    ``collect`` gathered and the rule's options, and returns option values the check
    receives on top of its bound ones (SourceOptionError when an option names nothing
    usable for this source). Records in memory have no file: the rule does not run on
    them and the run says so in a note, with ``unanswered`` as the reason. Checks then
    do no I/O."""

    @property
    def unanswered(self) -> str: ...

    def answer(self, source: Source, collected: Iterable[Any], options: Mapping[str, Any]) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class LocalFiles:
    """The local files a dataset rule's records name, each looked up once per source,
    relative to the source's :attr:`~Source.root` (an absolute path as it is), or to the
    folder that option ``folder`` names when it is set (itself relative to the root when
    relative). ``collect`` returns, per record, ``(path, reference)`` pairs; the check
    receives ``{reference: is a file}`` in option ``option`` and the root, when it is not
    the file's own folder, in option ``root`` (else ``""``): the user sets neither."""

    option: str = "found"
    folder: str = ""
    root: str = "dataset_dir"

    @property
    def unanswered(self) -> str:
        return "records in memory have no folder to look their files up in"

    def answer(self, source: Source, collected: Iterable[Any], options: Mapping[str, Any]) -> Mapping[str, Any]:
        root = source.root
        base = root
        given = options.get(self.folder) if self.folder else None
        if given:
            base = Path(os.path.join(root, given))
            if not os.path.isdir(base):
                problem = "is a file" if os.path.exists(base) else "does not exist"
                raise SourceOptionError(self.folder, f"must name a folder: {str(base)!r} {problem}")
        wanted = {ref for pairs in collected for _, ref in pairs}
        own = os.path.abspath(root) == os.path.abspath(source.file.parent)
        return {self.option: {ref: _is_file(base, ref) for ref in sorted(wanted)}, self.root: "" if own else str(root)}

    def check(self, options: Mapping[str, Any]) -> str | None:
        for name in (self.option, self.root):
            if options.get(name) not in (None, ""):
                return f"option {name!r} is filled in from the file system; leave it out of the configuration"
        return None

    def describe(self) -> str:
        return (
            "the files its records name, looked up next to the dataset file or its dataset_info.json "
            "(not for records in memory)"
        )


def answered(bound: BoundRule, source: Source, collected: Iterable[tuple[int, Any]]) -> dict[str, Any]:
    """What the per-source requirements of ``bound`` give its check for ``source``
    (``collected``: its collector's (index, value) pairs); RequirementError, naming the
    rule and the option, when an option names nothing usable for this source."""
    needs = [need for need in bound.rule.requires if isinstance(need, PerSource)]
    if not needs:
        return {}
    options = {**bound.rule.options, **bound.options}
    values = [got for _, got in collected]
    out: dict[str, Any] = {}
    for need in needs:
        try:
            out.update(need.answer(source, values, options))
        except SourceOptionError as e:
            raise RequirementError(f"option {e.option!r} of rule {bound.code} ({bound.rule.name}) {e}") from None
    return out


def _is_file(folder: Path, ref: str) -> bool:
    # os.path.isfile answers False for a name the OS refuses (a NUL byte, too long), which
    # a trainer could not open either.
    return os.path.isfile(os.path.join(folder, ref))


class JsonSchema:
    """A JSON Schema document, checked as a schema, with its validator. Pickles as the
    document alone (validators do not pickle), so a plan carrying it reaches every worker
    process; each builds the validator again from memory."""

    __slots__ = ("_validator", "document")

    def __init__(self, document: Any) -> None:
        import jsonschema

        cls = jsonschema.validators.validator_for(document)
        cls.check_schema(document)
        self.document = document
        self._validator = cls(document)

    def iter_errors(self, instance: Any) -> Iterator[Any]:
        """The ``jsonschema`` errors of ``instance`` (each with ``message`` and ``absolute_path``)."""
        return self._validator.iter_errors(instance)  # type: ignore[no-any-return]

    def __getstate__(self) -> tuple[Any]:
        # A tuple: a falsy state (the schema ``false``) would skip __setstate__.
        return (self.document,)

    def __setstate__(self, state: tuple[Any]) -> None:
        self.__init__(state[0])  # type: ignore[misc]


def load_schema(text: str) -> JsonSchema:
    """A JSON Schema from inline JSON (starting with ``{``) or a file path, checked as a
    schema; OSError, ValueError or a ``jsonschema`` SchemaError when it is not one."""
    import orjson

    if not text.lstrip().startswith("{"):
        text = Path(text).expanduser().read_text(encoding="utf-8")
    return JsonSchema(orjson.loads(text))


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def looks_like_path(name: str) -> bool:
    """A name the user meant as a folder (``./tok``, ``/models/x``, ``~/x``, ``C:\\x``)
    rather than a hub id (``org/name``)."""
    return name.startswith((".", "/", "~", "\\")) or (len(name) > 1 and name[1] == ":") or name.count("/") > 1


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model hub answers a TCP connection within ``timeout`` seconds. Offline
    mode (``HF_HUB_OFFLINE=1``) counts as unreachable, so nothing waits on the network."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def missing_local(kind: str, name: str) -> RequirementError:
    """The error for a name that is neither a local folder nor loadable offline."""
    if looks_like_path(name):
        return RequirementError(f"no such {kind} folder: {name}")
    return RequirementError(
        f"{kind} {name!r} is not in the local Hugging Face cache and the hub cannot be reached; "
        f"download it first (huggingface-cli download {name}) or pass a local folder"
    )
