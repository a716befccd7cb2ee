"""``OutputSet``: a set of files and its manifest committed together, and ``recover`` for a
folder a killed run left behind (the protocol is described in :mod:`ftdata.outputs`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import orjson

from ftdata.outputs.guard import OutputError, PathLike

TEMP_PREFIX = ".ftdata-tmp."
COMMIT_PREFIX = ".ftdata-commit."
#: Seconds to sleep before each step of a commit (tests kill the writer between steps).
PAUSE_ENV = "FTDATA_TEST_PAUSE_BEFORE_RENAME"


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
