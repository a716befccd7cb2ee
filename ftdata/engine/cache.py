"""The lint cache, in the manner of ruff's: an entry per data file, keyed by its content
and everything else that decides its findings (see :mod:`ftdata.engine.cache_keys`).

A hit gives back the file's findings and stats exactly as a fresh run would; a miss
runs the file and writes its entry. On a miss, the values the dataset rules collect per
record (``BoundRule.collect``) are looked up by the record's bytes in the previous run's
store for that file, so an edit to one line recomputes one record's keys; the dataset
rules then run over the full columns as ever.

Entries are written to a temporary file and renamed into place, so concurrent runs
never see half an entry; an entry that does not read back (corrupt, foreign, another
version) is a miss, never an error, and a cache folder that cannot be written only
costs the speed-up. Layout (as ruff's): ``CACHEDIR.TAG``, a ``.gitignore`` of ``*``,
then ``<version>/files/`` and ``<version>/records/``. Entries unused for
:data:`MAX_AGE_DAYS` days, then the oldest beyond :data:`MAX_BYTES`, are pruned after
a run that wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import tempfile
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ftdata._version import __version__
from ftdata.config import Settings
from ftdata.engine.cache_keys import entry_key, file_digest, plan_key, record_digest
from ftdata.engine.dataset import Column
from ftdata.engine.notes import NotApplied
from ftdata.engine.plan import BoundRule, Plan
from ftdata.engine.scan import Shard, ShardResult, scan_shard
from ftdata.findings import RULE_ERROR, Finding, RecordRef, Severity, SourceStats
from ftdata.requirements import PerSource

#: The folder name in the project root (the folder of the configuration file, else the
#: current directory).
FOLDER_NAME = ".ftdata_cache"
MAX_AGE_DAYS = 30
MAX_BYTES = 1 << 30
#: The per-record store is off unless ``FTDATA_CACHE_RECORDS=1``: measured with
#: benchmarks/cache_speed.py, an edited 100k-record file ran no faster with it (0.97x)
#: and a first run wrote it at a cost, since the record rules and parsing dominate.
#: Files larger than this keep no per-record store (it holds every record's values).
RECORDS_MAX_FILE_BYTES = 1 << 30
#: Collectors cheaper than a store lookup (a dict probe, ~0.3 us; measured with
#: benchmarks/cache_speed.py --collectors): recomputed rather than stored.
UNKEYED = frozenset({"FT304", "FT706", "FT707"})
_MAGIC = b"FTDC\x01"
_TAG = b"Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by ftdata.\n"
_TRUE = ("1", "true", "yes", "on")


class LintCache:
    """One cache folder: entries read and written by key."""

    def __init__(self, folder: Path, *, max_age_days: float = MAX_AGE_DAYS, max_bytes: int = MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.max_age_days, self.max_bytes = max_age_days, max_bytes
        self.root = self.folder / __version__
        self.wrote = False

    def path(self, kind: str, key: bytes) -> Path:
        return self.root / kind / key.hex()

    def read(self, kind: str, key: bytes) -> Any | None:
        """The value stored under ``key``, or None (absent, corrupt, foreign)."""
        return read_entry(self.path(kind, key), key)

    def write(self, kind: str, key: bytes, value: Any) -> bool:
        """Store ``value`` under ``key`` atomically; False when it cannot be (unwritable
        folder, a value marshal cannot hold)."""
        try:
            payload = marshal.dumps((key, value))
        except ValueError:
            return False
        try:
            folder = self.root / kind
            if not folder.is_dir():
                self._create()
                folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(_MAGIC + hashlib.blake2b(payload, digest_size=16).digest() + payload)
                os.replace(tmp, folder / key.hex())
            except BaseException:
                _unlink(Path(tmp))
                raise
        except OSError:
            return False
        self.wrote = True
        return True

    def _create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, text in (("CACHEDIR.TAG", _TAG), (".gitignore", b"# Created by ftdata.\n*\n")):
            target = self.folder / name
            if not target.exists():
                target.write_bytes(text)

    def prune(self) -> None:
        """Remove entries unused for ``max_age_days``, then the least recently used
        beyond ``max_bytes``, and the folders of other ftdata versions."""
        try:
            others = [p for p in self.folder.iterdir() if p.is_dir() and p.name != __version__]
        except OSError:
            return
        for other in others:
            for kind in ("files", "records"):
                for entry in _listing(other / kind):
                    _unlink(entry[2])
        entries = [e for kind in ("files", "records") for e in _listing(self.root / kind)]
        cutoff = time.time() - self.max_age_days * 86400
        kept, total = [], 0
        for used, size, path in sorted(entries, reverse=True):
            if used < cutoff or total + size > self.max_bytes:
                _unlink(path)
            else:
                kept.append(path)
                total += size


def read_entry(path: Path, key: bytes) -> Any | None:
    """The value of the entry at ``path`` when it holds ``key``, else None; a hit marks
    the entry used (its modification time), for pruning."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError:
        return None
    head = len(_MAGIC) + 16
    if (
        blob[: len(_MAGIC)] != _MAGIC
        or hashlib.blake2b(blob[head:], digest_size=16).digest() != blob[len(_MAGIC) : head]
    ):
        return None
    try:
        stored_key, value = marshal.loads(blob[head:])
    except (EOFError, ValueError, TypeError):
        return None
    if stored_key != key:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)
    return value


def _listing(folder: Path) -> list[tuple[float, int, Path]]:
    out = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                try:
                    st = entry.stat()
                except OSError:
                    continue
                out.append((st.st_mtime, st.st_size, Path(entry.path)))
    except OSError:
        pass
    return out


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def resolve_cache(cache: bool | str | os.PathLike[str], settings: Settings) -> LintCache | None:
    """The cache a run uses: None when ``cache`` is False or ``FTDATA_NO_CACHE`` is set;
    the folder ``cache`` names; else ``FTDATA_CACHE_DIR``, ``cache-dir`` of the
    configuration, or ``.ftdata_cache`` in the project root (the configuration file's
    folder, else the current directory)."""
    if cache is False or os.environ.get("FTDATA_NO_CACHE", "").strip().lower() in _TRUE:
        return None
    if cache is not True:
        return LintCache(Path(cache))
    if os.environ.get("FTDATA_CACHE_DIR"):
        return LintCache(Path(os.environ["FTDATA_CACHE_DIR"]))
    if settings.cache_dir:
        return LintCache(Path(settings.cache_dir))
    root = Path(settings.path).parent if settings.path else Path.cwd()
    return LintCache(root / FOLDER_NAME)


@dataclass
class Hit:
    """A file's stored run: findings, stats, and, for the cross-file rules, the format
    of every record and their collected columns."""

    findings: list[Finding]
    stats: SourceStats
    formats: bytearray
    columns: dict[str, Column]


@dataclass
class Ticket:
    """One file's look-up: the hit, or on a miss the plan to run (collectors keyed per
    record) and what its entry is written under."""

    cache: LintCache
    key: bytes
    plan: Plan
    hit: Hit | None = None
    keys: RecordKeys | None = None
    rows: dict[bytes, list[Any]] = field(default_factory=dict)

    def scanner(self) -> Callable[[Shard], Any]:
        """The shard function of this run: :func:`scan_shard`, returning the per-record
        values computed in the worker too when collectors are keyed."""
        if self.keys is None:
            from functools import partial

            return partial(scan_shard, plan=self.plan)
        return _Keyed(self.plan)

    def take(self, result: Any) -> ShardResult:
        """A shard's ShardResult, keeping the per-record values it brought back."""
        if isinstance(result, tuple):
            result, rows = result
            self.rows.update(rows)
        return result  # type: ignore[no-any-return]

    def save(self, state: ShardResult, stats: SourceStats) -> None:
        """Write the entry, unless the run is one a later run must repeat: stopped at
        max-errors, a rule failed, or a rule read other files (:class:`PerSource`)."""
        if self.keys is not None:
            self.rows.update(self.keys.drain())
            self.keys.save(self.cache, self.rows)
        if state.truncated or any(f.code == RULE_ERROR for f in state.findings):
            return
        for bound in self.plan.dataset:
            if state.collected.get(bound.code) and any(isinstance(n, PerSource) for n in bound.rule.requires):
                return
        columns = {
            b.code: (state.collected[b.code].indices.tobytes(), state.collected[b.code].values)
            for b in self.plan.files
            if b.code in state.collected
        }
        formats = bytes(state.formats) if self.plan.files else b""
        value = ([_finding_tuple(f) for f in state.findings], _stats_tuple(stats), formats, columns)
        self.cache.write("files", self.key, value)


def open_entry(cache: LintCache, plan: Plan, path: Path, source: str, check: Callable[[Path], None]) -> Ticket:
    """Hash ``path`` (then ``check`` that it did not change meanwhile) and look up its
    entry; on a miss the ticket's plan has its collectors keyed per record."""
    digest = file_digest(path)
    check(path)
    key = entry_key(plan, source, digest, path)
    stored = cache.read("files", key)
    if stored is not None:
        try:
            return Ticket(cache, key, plan, _hit(stored))
        except (TypeError, ValueError, KeyError, IndexError):
            pass  # a foreign entry that only looked like one
    keys = None
    wanted = os.environ.get("FTDATA_CACHE_RECORDS", "").strip().lower() in _TRUE
    if wanted and any(b.code not in UNKEYED for b in plan.collectors) and path.stat().st_size <= RECORDS_MAX_FILE_BYTES:
        store = hashlib.blake2b(
            plan_key(plan) + str(path.resolve()).encode("utf-8", "surrogateescape"), digest_size=32
        ).digest()
        codes = tuple(b.code for b in plan.collectors if b.code not in UNKEYED)
        keys = RecordKeys(cache.path("records", store), store, codes)
        plan = keyed_plan(plan, keys)
    return Ticket(cache, key, plan, keys=keys)


def _finding_tuple(f: Finding) -> tuple[Any, ...]:
    other = (f.other.source, f.other.index, f.other.line) if f.other is not None else None
    return (
        f.code, int(f.severity), f.message, f.source, f.line, f.column, f.index,
        tuple(f.path), tuple(f.related), f.fingerprint, f.score, other,
    )  # fmt: skip


def _stats_tuple(s: SourceStats) -> tuple[Any, ...]:
    notes = tuple((n.codes, n.format, n.records, n.reason) for n in getattr(s, "not_applied", ()))
    return (s.source, s.records, s.lines, s.formats, s.truncated, s.unreadable, notes)


def _hit(stored: Any) -> Hit:
    from ftdata.engine.run import FileStats

    found, st, formats, columns = stored
    findings = []
    for code, sev, message, source, line, column, index, path, related, fingerprint, score, other in found:
        ref = RecordRef(*other) if other is not None else None
        findings.append(
            Finding(code, Severity(sev), message, source, line, column, index, path, related, fingerprint, score, ref)
        )
    source, records, lines, kinds, truncated, unreadable, notes = st
    stats = FileStats(
        source, records, lines, kinds, truncated, unreadable, not_applied=tuple(NotApplied(*n) for n in notes)
    )
    restored: dict[str, Column] = {}
    for code, (indices, values) in columns.items():
        column = restored[code] = Column()
        column.indices = array("q", indices)
        column.values = list(values)
        if len(column.indices) != len(column.values):
            raise ValueError("a column of mismatched length")
    return Hit(findings, stats, bytearray(formats), restored)


#: A value not yet computed for a record (never stored).
_MISSING = object()
#: Stores read in this process, by path: every shard of a file reads its store once.
_LOADED: dict[str, tuple[tuple[int, int], dict[bytes, tuple[Any, ...]]]] = {}


class RecordKeys:
    """The per-record values of one file's collectors: the previous run's, looked up by
    the record's bytes, and this run's rows. One object shared by the keyed collectors
    of a plan, so a record is hashed once for all of them."""

    def __init__(self, path: Path, store: bytes, codes: tuple[str, ...]) -> None:
        self.path, self.store, self.codes = path, store, codes
        self._old: dict[bytes, tuple[Any, ...]] | None = None
        self._new: dict[bytes, list[Any]] = {}
        self._raw: bytes | None = None
        self._row: list[Any] = []

    def __getstate__(self) -> tuple[Path, bytes, tuple[str, ...]]:
        return (self.path, self.store, self.codes)

    def __setstate__(self, state: tuple[Path, bytes, tuple[str, ...]]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def row(self, raw: bytes) -> list[Any]:
        """The values of the record whose bytes are ``raw`` (missing ones marked)."""
        if raw is self._raw:
            return self._row
        if self._old is None:
            self._old = _load(self.path, self.store, self.codes)
        digest = record_digest(raw)
        row = self._new.get(digest)
        if row is None:
            old = self._old.get(digest)
            row = self._new[digest] = list(old) if old is not None else [_MISSING] * len(self.codes)
        self._raw, self._row = raw, row
        return row

    def drain(self) -> dict[bytes, list[Any]]:
        """This run's rows so far, handed over (a worker returns them with its shard)."""
        rows, self._new, self._raw = self._new, {}, None
        return rows

    def save(self, cache: LintCache, rows: Mapping[bytes, list[Any]]) -> None:
        complete = {k: tuple(r) for k, r in rows.items() if not any(v is _MISSING for v in r)}
        cache.write("records", self.store, (self.codes, complete))


def _load(path: Path, store: bytes, codes: tuple[str, ...]) -> dict[bytes, tuple[Any, ...]]:
    try:
        st = os.stat(path)
    except OSError:
        return {}
    stamp = (st.st_size, st.st_mtime_ns)
    known = _LOADED.get(str(path))
    if known is not None and known[0] == stamp:
        return known[1]
    value = read_entry(path, store)
    rows: dict[bytes, tuple[Any, ...]] = {}
    if isinstance(value, tuple) and len(value) == 2 and value[0] == codes and isinstance(value[1], dict):
        rows = value[1]
    _LOADED.clear()  # one file's store at a time: they hold every record's values
    _LOADED[str(path)] = (stamp, rows)
    return rows


class _KeyedCollect:
    """A collector that takes a record's value from the store when its bytes were seen."""

    __slots__ = ("inner", "keys", "position")

    def __init__(self, inner: Callable[..., Any], keys: RecordKeys, position: int) -> None:
        self.inner, self.keys, self.position = inner, keys, position

    def __call__(self, rec: Any) -> Any:
        raw = rec.raw
        if raw is None:
            return self.inner(rec)
        row = self.keys.row(raw)
        value = row[self.position]
        if value is _MISSING:
            value = row[self.position] = self.inner(rec)
        return value


def keyed_plan(plan: Plan, keys: RecordKeys) -> Plan:
    """``plan`` with every collector worth a look-up wrapped to use ``keys``."""
    position = {code: i for i, code in enumerate(keys.codes)}

    def wrap(bound: BoundRule) -> BoundRule:
        if bound.collect is None or bound.code in UNKEYED:
            return bound
        return replace(bound, collect=_KeyedCollect(bound.collect, keys, position[bound.code]))

    return replace(plan, dataset=tuple(map(wrap, plan.dataset)), files=tuple(map(wrap, plan.files)))


class _Keyed:
    """The shard function of a keyed plan: the shard's result and the rows computed."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __call__(self, shard: Shard) -> tuple[ShardResult, dict[bytes, list[Any]]]:
        result = scan_shard(shard, self.plan)
        keys = next((b.collect.keys for b in self.plan.collectors if isinstance(b.collect, _KeyedCollect)), None)
        return result, keys.drain() if keys is not None else {}
