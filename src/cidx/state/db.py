"""The project's `state.db`: manifests, embedding cache and small metadata.

SQLite in WAL mode, so readers (status, queries) never wait for the indexer.
Each thread gets its own connection; writes happen in short transactions.
Each collection's manifest is reached through `StateDB.manifest`
(`cidx.state.manifest`); the embedding cache is shared by all of them.
Every SQLite error leaves this module as a `CidxError` that says what to do:
a damaged file as a `StateError` naming `cidx doctor --repair` (which
rebuilds it from the store), a full disk as a `DiskFullError`.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from cidx.errors import CidxError, StateError
from cidx.fsutil import disk_full, ensure_free, free_bytes
from cidx.state.migrations import COMPACT_AFTER, MIGRATIONS, MigrationContext, MissingContext

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from cidx.state.aliases import AliasTable
    from cidx.state.manifest import Manifest


# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_CORRUPT = 5, 6, 10, 11
_SQLITE_FULL, _SQLITE_NOTADB = 13, 26
# Below this much free space an I/O error on write is taken for a full disk
# (SQLite reports some ENOSPC cases as a plain SQLITE_IOERR).
_NEARLY_FULL = 1024 * 1024
# Free space checked before opening and before each write transaction. The
# WAL index (state.db-shm) is a memory-mapped file: SQLite allocates it by
# writing one byte per 4 KiB page, which leaves holes on a filesystem with
# 1 KiB blocks, and a write into a hole on a full disk is a SIGBUS, not an
# error. Measured on a 64 MiB ext4 image: with 64 KiB free the first
# transaction was killed so.
_ROOM_TO_OPEN = 256 * 1024
_ROOM_TO_WRITE = 1024 * 1024


def state_error(path: Path, exc: sqlite3.Error) -> CidxError:
    """The error to show for `exc`, raised by SQLite on the state database at `path`."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(exc)
    if code == _SQLITE_FULL or "disk is full" in text:
        return disk_full(path.parent)
    if code == _SQLITE_IOERR:
        with contextlib.suppress(OSError):
            if free_bytes(path.parent) < _NEARLY_FULL:
                return disk_full(path.parent)
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        return StateError(
            f"The state database {path} is damaged ({text}). Run `cidx doctor --repair`: "
            "it sets the file aside and rebuilds it from the index, without embedding "
            "anything again."
        )
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StateError(
            f"The state database {path} stayed locked by another process ({text}). Run the "
            "command again once the other cidx process on this project has finished."
        )
    return StateError(
        f"The state database {path} failed ({text}). Run `cidx doctor` to check the index."
    )


P = ParamSpec("P")
R = TypeVar("R")


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    """Raise SQLite's errors from a `StateDB` method as the `CidxError` naming the next step."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            db = args[0]
            assert isinstance(db, StateDB)
            raise state_error(db.path, exc) from None

    return wrapper


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction on `conn`: committed, or rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # A failed statement may already have ended the transaction
        # (SQLITE_FULL does); the error that matters is the first one.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class StateDB:
    """Access to one project's state.db.

    `collection` is needed only to bring forward a database from before
    per-collection manifests: the collection its one manifest describes (the
    one the project's config names).
    """

    def __init__(self, path: Path, *, collection: str | None = None) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._migrate(MigrationContext(collection=collection))

    @property
    def aliases(self) -> AliasTable:
        from cidx.state.aliases import AliasTable

        return AliasTable(self)

    def manifest(self, collection: str) -> Manifest:
        """The record of which files `collection` holds, and its sync marks."""
        from cidx.state.manifest import Manifest

        return Manifest(self, collection)

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Raise SQLite's errors as the `CidxError` naming the next step."""
        try:
            yield
        except sqlite3.Error as exc:
            raise state_error(self.path, exc) from None

    # -- connections -------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @_translated
    def _connect(self) -> sqlite3.Connection:
        ensure_free(self.path.parent, _ROOM_TO_OPEN)
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error:
            conn.close()
            raise
        with self._guard:
            self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._guard:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        ensure_free(self.path.parent, _ROOM_TO_WRITE)
        try:
            with immediate(conn):
                yield conn
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise state_error(self.path, exc) from None

    @_translated
    def _migrate(self, ctx: MigrationContext) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StateError(
                f"The state database {self.path} has schema version {version}, newer than this "
                f"cidx understands ({len(MIGRATIONS)}). Upgrade cidx to use this index."
            )
        for number in range(version, len(MIGRATIONS)):
            try:
                with self.transaction() as tx:
                    MIGRATIONS[number](tx, ctx)
                    tx.execute(f"PRAGMA user_version = {number + 1}")
            except MissingContext as exc:
                raise StateError(
                    f"The state database {self.path} is from an older cidx and needs {exc} "
                    "to be brought forward. Open it through a cidx command in its project."
                ) from None
        if version and COMPACT_AFTER & set(range(version + 1, len(MIGRATIONS) + 1)):
            self.conn.execute("VACUUM")

    @property
    @_translated
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @_translated
    def checkpoint(self) -> tuple[int, int, bool]:
        """Write the WAL back into the database and truncate it: (pages that
        were in the WAL, pages written back, whether it is now empty).

        The WAL is left as it is (and the database still consistent with
        it) when a reader keeps it from being truncated.
        """
        conn = self.conn
        _busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if not busy:
            done = frames
        return max(0, int(frames)), max(0, int(done)), not busy

    # -- meta --------------------------------------------------------------

    @_translated
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @_translated
    def set_meta(self, key: str, value: str | None, conn: sqlite3.Connection | None = None) -> None:
        c = conn or self.conn
        if value is None:
            c.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- embedding cache ---------------------------------------------------

    @_translated
    def cached_vectors(
        self, model: str, hashes: list[bytes]
    ) -> dict[bytes, npt.NDArray[np.float32]]:
        import numpy as np

        found: dict[bytes, npt.NDArray[np.float32]] = {}
        conn = self.conn
        for start in range(0, len(hashes), 500):
            part = hashes[start : start + 500]
            marks = ",".join("?" * len(part))
            for text_hash, blob in conn.execute(
                "SELECT text_hash, vector FROM embeddings "
                f"WHERE model = ? AND text_hash IN ({marks})",
                (model, *part),
            ):
                found[bytes(text_hash)] = np.frombuffer(blob, dtype="<f4").copy()
        return found

    @_translated
    def put_vectors(
        self,
        conn: sqlite3.Connection,
        model: str,
        items: Iterable[tuple[bytes, npt.NDArray[np.float32]]],
    ) -> None:
        now = int(time.time())
        conn.executemany(
            "INSERT INTO embeddings (model, text_hash, vector, used_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (model, text_hash) DO UPDATE SET used_at = excluded.used_at",
            [(model, h, v.astype("<f4").tobytes(), now) for h, v in items],
        )

    @_translated
    def touch_vectors(self, conn: sqlite3.Connection, model: str, hashes: Iterable[bytes]) -> None:
        now = int(time.time())
        conn.executemany(
            "UPDATE embeddings SET used_at = ? WHERE model = ? AND text_hash = ? AND used_at < ?",
            [(now, model, h, now) for h in hashes],
        )

    @_translated
    def cache_size(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    @_translated
    def prune_cache(self, keep: int) -> int:
        """Drop the least recently used vectors beyond `keep`; how many went."""
        with self.transaction() as conn:
            total = int(conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
            excess = total - keep
            if excess <= 0:
                return 0
            conn.execute(
                "DELETE FROM embeddings WHERE id IN "
                "(SELECT id FROM embeddings ORDER BY used_at LIMIT ?)",
                (excess,),
            )
        return excess
