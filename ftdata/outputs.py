"""What every command that writes files promises, and the one writer that keeps the promise.

**The guard.** No output replaces an input or another output, and the output's folder
exists and is writable, all checked before any data is read (:func:`check_outputs`,
:func:`check_folder_outputs`). An input read twice is fingerprinted (:class:`Fingerprint`:
size, mtime, inode and the sha256 of its bytes) and a change between the passes is an
error (:class:`InputChangedError`): nothing is written.

**The writer.** :class:`OutputSet` writes a set of files and its manifest into one folder:

1. every file goes to a temporary name ``.ftdata-tmp.<token>.<name>`` in that folder and
   is fsynced, the manifest too;
2. the manifest's temporary file is renamed ``.ftdata-commit.<token>.<manifest>``: from
   here on the new set is durable and the commit will be finished;
3. the old manifest is removed, the files are renamed into place, then the manifest.

So a manifest in place always describes the files beside it (their sha256s match): either
the old complete set or the new one. A run killed during step 3 leaves no manifest and a
``.ftdata-commit`` file; the next :class:`OutputSet` on that folder (or :func:`recover`)
finishes that commit, and removes the temporary files of runs killed before step 2, which
leaves the old set as it was. On any error (a full disk included) the temporary files are
removed and the old set is untouched.

**Rejects** (``ftdata.rejects/1``), one JSON object a line, in input order::

    {"schema": "ftdata.rejects/1", "index": 4, "line": 5, "reason": "unreadable",
     "rule": "FT001", "detail": "unexpected character ...", "raw": "{\\"messages\\": [oops]}"}

``index`` is the 0-based record index, ``line`` its 1-based first line (None when
unknown), ``reason`` why it was left out (``duplicate``, ``unreadable``), ``rule`` the code
of the rule that explains it (None when no rule does), ``detail`` a sentence. Then the
record's exact bytes: ``raw`` (their text, when they are valid UTF-8) or ``raw_base64``,
so that the kept file and the rejects together hold every input record byte for byte
(the parsed record is ``json.loads(raw)``; a re-serialised copy would not round-trip).
Further keys depend on the reason (a duplicate's ``cluster``, ``representative``,
``representative_line``, ``similarity``, ``method``).

**Manifest** (``ftdata.manifest/1``), written last by every command that writes data::

    {"schema": "ftdata.manifest/1", "ftdata": "0.1.0", "command": "split",
     "options": {...}, "rules": [{"code": "FT601", "options": {...}}],
     "inputs": [{"path": "data.jsonl", "size": 1234, "sha256": "...", "records": 110}],
     "counts": {...},
     "outputs": {"train": {"path": "train.jsonl", "bytes": 1000, "sha256": "...", "records": 87}}}

Output paths are relative to the manifest's folder. Commands may add keys of their own.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

PathLike = str | os.PathLike[str]

REJECTS_SCHEMA = "ftdata.rejects/1"
MANIFEST_SCHEMA = "ftdata.manifest/1"
TEMP_PREFIX = ".ftdata-tmp."
COMMIT_PREFIX = ".ftdata-commit."
#: Seconds to sleep before each step of a commit (tests kill the writer between steps).
PAUSE_ENV = "FTDATA_TEST_PAUSE_BEFORE_RENAME"


class OutputError(ValueError):
    """An output path that would destroy an input or another output, or cannot be written."""


class InputChangedError(OSError, ValueError):
    """An input that changed while a command read it more than once (an I/O error to lint)."""


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(inputs: Iterable[PathLike], outputs: Iterable[PathLike | None]) -> None:
    """Raise :class:`OutputError` when an output resolves to an input (symlinks and hard
    links included) or to another output, or when its folder is missing or read-only."""
    ins = [Path(p) for p in inputs]
    outs = [Path(p) for p in outputs if p is not None]
    for k, out in enumerate(outs):
        for src in ins:
            if _same(out, src):
                raise OutputError(f"the output {out} is the input {src}; refusing to overwrite it")
        for other in outs[:k]:
            if _same(out, other):
                raise OutputError(f"two outputs are the same file: {other} and {out}")
        if out.is_dir():
            raise OutputError(f"the output {out} is a folder")
        folder = out.parent if str(out.parent) else Path(".")
        if not folder.is_dir():
            raise OutputError(f"the folder of the output {out} does not exist: {folder}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"the folder of the output {out} is not writable: {folder}")


def check_folder_outputs(inputs: Iterable[PathLike], folder: PathLike, names: Iterable[str]) -> None:
    """:func:`check_outputs` for files ``names`` in ``folder``, which may not exist yet
    (it will be created): then its nearest existing ancestor must be a writable folder."""
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise OutputError(f"the output folder {root} is a file")
    if root.is_dir():
        check_outputs(inputs, [root / name for name in names])
        return
    ancestor = root.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create the output folder {root}: {ancestor} is not a writable folder")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What identifies the bytes of an input: size, modification time, inode (and device)
    and the sha256 of its content."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    sha256: str

    @classmethod
    def of(cls, path: PathLike) -> Fingerprint:
        """Fingerprint ``path`` now (one streaming read); an input that changes while it is
        hashed raises :class:`InputChangedError`."""
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
            h = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
            after = os.fstat(f.fileno())
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            raise InputChangedError(f"the input {path} changed while it was read")
        return cls(str(path), after.st_size, after.st_mtime_ns, after.st_ino, after.st_dev, h.hexdigest())

    def check(self, path: PathLike | None = None) -> None:
        """Raise :class:`InputChangedError` unless ``path`` (default: the fingerprinted
        path) still holds the same bytes under the same identity."""
        where = self.path if path is None else path
        try:
            now = Fingerprint.of(where)
        except FileNotFoundError:
            raise InputChangedError(f"the input {where} was removed while it was read; nothing was written") from None
        if (now.size, now.mtime_ns, now.inode, now.device, now.sha256) != (
            self.size,
            self.mtime_ns,
            self.inode,
            self.device,
            self.sha256,
        ):
            raise InputChangedError(
                f"the input {where} changed between two reads (it was replaced or written to); nothing was written"
            )

    def to_dict(self, records: int | None = None) -> dict[str, Any]:
        """The manifest's entry for this input."""
        out: dict[str, Any] = {"path": self.path, "size": self.size, "sha256": self.sha256}
        if records is not None:
            out["records"] = records
        return out


def reject_line(
    *,
    index: int,
    line: int | None,
    reason: str,
    raw: bytes,
    rule: str | None = None,
    detail: str = "",
    **extra: Any,
) -> bytes:
    """One line of a rejects file (``ftdata.rejects/1``, see the module docs), newline included."""
    entry: dict[str, Any] = {
        "schema": REJECTS_SCHEMA,
        "index": index,
        "line": line,
        "reason": reason,
        "rule": rule,
        "detail": detail,
        **extra,
    }
    try:
        entry["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        entry["raw_base64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(entry) + b"\n"


def manifest(
    command: str,
    *,
    options: Mapping[str, Any],
    inputs: Iterable[Mapping[str, Any]],
    counts: Mapping[str, Any],
    rules: Iterable[Mapping[str, Any]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """A manifest (``ftdata.manifest/1``) without its ``outputs``, which
    :meth:`OutputSet.commit` fills in."""
    from ftdata._version import __version__

    return {
        "schema": MANIFEST_SCHEMA,
        "ftdata": __version__,
        "command": command,
        "options": dict(options),
        "rules": [dict(r) for r in rules],
        "inputs": [dict(i) for i in inputs],
        "counts": dict(counts),
        **extra,
    }


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _pause() -> None:
    value = os.environ.get(PAUSE_ENV)
    if value:
        with contextlib.suppress(ValueError):
            time.sleep(float(value))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _token_of(name: str) -> str | None:
    for prefix in (TEMP_PREFIX, COMMIT_PREFIX):
        if name.startswith(prefix):
            return name[len(prefix) :].split(".", 1)[0]
    return None


def recover(folder: PathLike) -> list[Path]:
    """Finish or undo the commits of writers that died in ``folder``: a set whose commit
    had begun is renamed into place (its manifest last); the temporary files of the others
    are removed. Writers still running are left alone. Returns the manifests finished."""
    root = Path(folder)
    try:
        names = os.listdir(root)
    except OSError:
        return []
    tokens: dict[str, list[str]] = {}
    for name in names:
        token = _token_of(name)
        if token is not None:
            tokens.setdefault(token, []).append(name)
    finished = []
    for token, files in sorted(tokens.items()):
        try:
            pid = int(token.split("-", 1)[0])
        except ValueError:
            continue
        if _alive(pid):
            continue
        commits = [n for n in files if n.startswith(COMMIT_PREFIX)]
        for commit in commits:
            done = _roll_forward(root, token, commit)
            if done is not None:
                finished.append(done)
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(root / name)
    if tokens:
        _fsync_folder(root)
    return finished


def _roll_forward(root: Path, token: str, commit: str) -> Path | None:
    target = root / commit[len(COMMIT_PREFIX) + len(token) + 1 :]
    try:
        outputs = orjson.loads((root / commit).read_bytes())["outputs"]
        paths = [str(entry["path"]) for entry in outputs.values()]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None  # not a commit this writer made: leave the folder as it is
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)
    _fsync_folder(root)
    for name in paths:
        with contextlib.suppress(FileNotFoundError):
            os.replace(root / f"{TEMP_PREFIX}{token}.{name}", root / name)
    _fsync_folder(root)
    os.replace(root / commit, target)
    _fsync_folder(root)
    return target


class _Sink:
    """One file being written: its temporary path, handle, sha256 and size."""

    __slots__ = ("file", "name", "sha256", "size", "target", "temp")

    def __init__(self, target: Path, temp: Path, file: IO[bytes]) -> None:
        self.target = target
        self.temp = temp
        self.file: IO[bytes] | None = file
        self.name = target.name
        self.sha256 = hashlib.sha256()
        self.size = 0


class OutputSet:
    """Files written into one folder and committed together with their manifest, so that
    a reader finds the old complete set or the new one (see the module docs).

    Use as a context manager: :meth:`write` the files, then :meth:`commit` the manifest.
    Leaving the block without a commit, or with an exception, removes every temporary file
    and leaves the folder as it was. Errors of the output (a full disk, a read-only
    folder) are raised as :class:`OutputError`.
    """

    def __init__(self, paths: Mapping[str, PathLike], manifest: PathLike) -> None:
        self.manifest_path = Path(manifest)
        self.folder = self.manifest_path.parent
        self.paths = {key: Path(p) for key, p in paths.items()}
        for key, p in self.paths.items():
            if p.parent.absolute() != self.folder.absolute():
                raise ValueError(f"output {key} ({p}) is not in the manifest's folder {self.folder}")
        self.token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._sinks: dict[str, _Sink] = {}
        self._committed = False

    def __enter__(self) -> OutputSet:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the output folder {self.folder}: {e.strerror}") from None
        recover(self.folder)
        try:
            for key, target in self.paths.items():
                temp = self.folder / f"{TEMP_PREFIX}{self.token}.{target.name}"
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                self._sinks[key] = _Sink(target, temp, os.fdopen(fd, "wb", buffering=1 << 20))
        except OSError as e:
            self._discard()
            raise OutputError(f"cannot write in {self.folder}: {e.strerror}") from None
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self._committed:
            self._discard()

    def write(self, key: str, data: bytes) -> None:
        """Append ``data`` to the output ``key``."""
        sink = self._sinks[key]
        if sink.file is None:
            raise ValueError(f"output {key} is already closed")
        try:
            sink.file.write(data)
        except OSError as e:
            raise self._error(sink, e) from None
        sink.sha256.update(data)
        sink.size += len(data)

    def temp_path(self, key: str) -> Path:
        """Where ``key`` is being written (complete once :meth:`finish` has run)."""
        return self._sinks[key].temp

    def finish(self) -> None:
        """Flush, fsync and close every file (the folder too); :meth:`commit` calls it."""
        for sink in self._sinks.values():
            if sink.file is None:
                continue
            f, sink.file = sink.file, None
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                with contextlib.suppress(OSError):
                    f.close()
                raise self._error(sink, e) from None
            f.close()
        _fsync_folder(self.folder)

    def digests(self) -> dict[str, dict[str, Any]]:
        """Each output's ``path`` (relative to the folder), ``bytes`` and ``sha256``."""
        return {
            key: {"path": s.name, "bytes": s.size, "sha256": s.sha256.hexdigest()} for key, s in self._sinks.items()
        }

    def commit(self, manifest: Mapping[str, Any], records: Mapping[str, int] | None = None) -> dict[str, Any]:
        """Write ``manifest`` (its ``outputs`` filled in with each file's path, size,
        sha256 and ``records`` count) and rename the set into place. Returns the
        manifest written."""
        self.finish()
        outputs = self.digests()
        for key, n in (records or {}).items():
            outputs[key]["records"] = n
        body = {**manifest, "outputs": outputs}
        data = orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        name = self.manifest_path.name
        staged = self.folder / f"{TEMP_PREFIX}{self.token}.{name}"
        intent = self.folder / f"{COMMIT_PREFIX}{self.token}.{name}"
        try:
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(staged, _mode(self.manifest_path))
            for sink in self._sinks.values():
                os.chmod(sink.temp, _mode(sink.target))
            _fsync_folder(self.folder)
            _pause()
            os.replace(staged, intent)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(staged)
            self._discard()
            raise OutputError(f"cannot write {self.manifest_path}: {e.strerror}") from None
        # Past this point the new set is durable: finish it, or leave it for recover().
        self._committed = True
        _fsync_folder(self.folder)
        try:
            _pause()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.manifest_path)
            _fsync_folder(self.folder)
            for sink in self._sinks.values():
                _pause()
                os.replace(sink.temp, sink.target)
            _fsync_folder(self.folder)
            _pause()
            os.replace(intent, self.manifest_path)
            _fsync_folder(self.folder)
        except OSError as e:
            raise OutputError(
                f"the outputs in {self.folder} could not be renamed into place ({e.strerror}); "
                "the next run writing there finishes the commit"
            ) from None
        return body

    def _discard(self) -> None:
        for sink in self._sinks.values():
            if sink.file is not None:
                with contextlib.suppress(OSError):
                    sink.file.close()
                sink.file = None
            with contextlib.suppress(OSError):
                os.unlink(sink.temp)

    def _error(self, sink: _Sink, error: OSError) -> OutputError:
        self._discard()
        return OutputError(f"cannot write {sink.target}: {error.strerror or error}")


def _mode(target: Path) -> int:
    """An existing file's permissions, else the umask's default for a new file."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask
