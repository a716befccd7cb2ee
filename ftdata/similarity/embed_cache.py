"""Embeddings kept on disk by (model identity, text hash), so that re-linting an edited
file embeds only the texts that changed.

One sqlite file (``embeddings.sqlite`` in the cache folder) in WAL mode: concurrent runs
read and write it safely, a writer never blocks readers, and a row is either there whole
or not at all. Vectors are stored as float32 bytes, so a hit gives back the very vector
the model gave. The file is bounded: past :data:`MAX_ROWS` rows the oldest are deleted.
Any sqlite error (a read-only or corrupt file, a lock held too long) costs only the
speed-up, never the run. ``FTDATA_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

#: Rows kept (about 1 KiB each for a 256-dimensional model).
MAX_ROWS = 1_000_000
_CHUNK = 500  # below sqlite's limit on bound parameters
_TRUE = ("1", "true", "yes", "on")


def text_key(text: str) -> bytes:
    """A stable 16-byte digest of ``text`` (lone surrogates included, as JSON allows)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def disabled_by_env() -> bool:
    """Whether ``FTDATA_NO_CACHE`` asks for no cache."""
    return os.environ.get("FTDATA_NO_CACHE", "").strip().lower() in _TRUE


class EmbeddingCache:
    """Vectors by (model identity, text key) in one sqlite file."""

    def __init__(self, path: Path, *, max_rows: int = MAX_ROWS) -> None:
        self.path = path
        self.max_rows = max_rows
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, key BLOB NOT NULL,"
                " vec BLOB NOT NULL, added REAL NOT NULL, PRIMARY KEY (model, key))"
            )
            db.execute("CREATE INDEX IF NOT EXISTS vectors_added ON vectors (added)")
            self._db = db
        except (sqlite3.Error, OSError):
            self._db = None

    @property
    def usable(self) -> bool:
        return self._db is not None

    def get(self, model: str, keys: Sequence[bytes], dim: int) -> dict[bytes, np.ndarray]:
        """The stored vectors of those ``keys`` that are there (of dimension ``dim``)."""
        found: dict[bytes, np.ndarray] = {}
        if self._db is None:
            return found
        try:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, vec FROM vectors WHERE model = ? AND key IN ({marks})", [model, *chunk]
                )
                for key, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape[0] == dim:
                        found[bytes(key)] = vec
        except sqlite3.Error:
            return {}
        return found

    def put(
        self,
        model: str,
        items: Mapping[bytes, np.ndarray] | Iterable[tuple[bytes, np.ndarray]],
        *,
        prune: bool = True,
    ) -> None:
        """Store ``items`` (key, vector); keys already there are left as they are. With
        ``prune`` the oldest rows beyond ``max_rows`` go too (:meth:`prune`); a caller that
        stores batch after batch prunes once at the end."""
        if self._db is None:
            return
        pairs = items.items() if isinstance(items, Mapping) else items
        now = time.time()
        rows = [(model, key, np.ascontiguousarray(vec, dtype=np.float32).tobytes(), now) for key, vec in pairs]
        if not rows:
            return
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error:
            return
        if prune:
            self.prune()

    def prune(self) -> None:
        """Drop the oldest rows beyond ``max_rows``."""
        if self._db is None:
            return
        try:
            (count,) = self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()
            if count > self.max_rows:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute(
                        "DELETE FROM vectors WHERE rowid IN (SELECT rowid FROM vectors ORDER BY added LIMIT ?)",
                        (count - self.max_rows,),
                    )
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
