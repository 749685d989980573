"""One collection's manifest: which files it holds, their points, and its sync marks.

Every row says what the last sync of that collection saw of one file (stat,
hash, status, language) and the ids of the points it wrote for it; the
next sync trusts it to skip unchanged files. A row may say its
points still wait for their dense vectors (`dense_pending`: a staged sync
wrote them with BM25 vectors only; `cidx.indexer` fills them in). The marks (`get_mark`,
`set_mark`) are the collection's own: "a sync is under way", "the store was
found damaged", the index format and when it was last synced.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cidx.state.db import StateDB

__all__ = ["DenseShare", "FileRecord", "Manifest"]


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    hash: str
    status: str  # "indexed" | "binary" | "empty" | "minified"
    language: str
    chunk_ids: tuple[str, ...]
    indexed_at: float
    # Its points are stored without their dense vectors yet.
    dense_pending: bool = False


@dataclass(frozen=True)
class DenseShare:
    """How many of a collection's chunks have their dense vectors."""

    chunks: int
    pending: int

    @property
    def share(self) -> float:
        """The embedded share, 0..1 (1 for an empty collection)."""
        return 1.0 if self.chunks == 0 else (self.chunks - self.pending) / self.chunks


_SELECT = (
    "SELECT path, size, mtime_ns, hash, status, language, chunk_ids, indexed_at, dense_pending "
    "FROM files WHERE collection = ?"
)


class Manifest:
    """The manifest of `collection` in a state database."""

    def __init__(self, db: StateDB, collection: str) -> None:
        self.db = db
        self.collection = collection

    # -- files -------------------------------------------------------------

    def files(self, under: Iterable[str] | None = None) -> dict[str, FileRecord]:
        """Every entry; with `under`, only the entries at or below those paths."""
        conn = self.db.conn
        with self.db.errors():
            if under is None:
                rows = conn.execute(_SELECT, (self.collection,)).fetchall()
            else:
                # A range on the key: everything from "p/" up to the highest
                # code point after it (SQLite compares UTF-8 bytes, which
                # orders like code points).
                rows = []
                for p in under:
                    rows.extend(
                        conn.execute(
                            _SELECT + " AND (path = ? OR (path >= ? AND path < ?))",
                            (self.collection, p, p + "/", p + "/\U0010ffff"),
                        )
                    )
        return {row[0]: _record(row) for row in rows}

    def file(self, path: str) -> FileRecord | None:
        with self.db.errors():
            row = self.db.conn.execute(
                _SELECT + " AND path = ?", (self.collection, path)
            ).fetchone()
        return None if row is None else _record(row)

    def indexed_paths(self) -> list[str]:
        """Paths of the files whose chunks are in the store."""
        with self.db.errors():
            return [
                r[0]
                for r in self.db.conn.execute(
                    "SELECT path FROM files WHERE collection = ? AND status = 'indexed'",
                    (self.collection,),
                )
            ]

    def languages(self) -> set[str]:
        """The languages of the files whose chunks are in the store."""
        with self.db.errors():
            rows = self.db.conn.execute(
                "SELECT DISTINCT language FROM files WHERE collection = ? AND status = 'indexed'",
                (self.collection,),
            ).fetchall()
        return {str(r[0]) for r in rows}

    def sample_chunk_ids(self, n: int) -> list[str]:
        """One point id of each of up to `n` randomly chosen indexed files."""
        with self.db.errors():
            rows = self.db.conn.execute(
                "SELECT chunk_ids FROM files WHERE collection = ? AND status = 'indexed' "
                "ORDER BY random() LIMIT ?",
                (self.collection, n),
            ).fetchall()
        return [random.choice(ids) for (c,) in rows if (ids := json.loads(str(c)))]

    def counts(self) -> tuple[int, int]:
        """(indexed files, chunks)."""
        with self.db.errors():
            row = self.db.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(json_array_length(chunk_ids)), 0) FROM files "
                "WHERE collection = ? AND status = 'indexed'",
                (self.collection,),
            ).fetchone()
        return int(row[0]), int(row[1])

    def dense_share(self) -> DenseShare | None:
        """Chunks in the store and how many of them wait for dense vectors, or
        None when none does (the usual case, answered from an index: every
        search asks)."""
        with self.db.errors():
            any_pending = self.db.conn.execute(
                "SELECT 1 FROM files WHERE collection = ? AND dense_pending = 1 LIMIT 1",
                (self.collection,),
            ).fetchone()
            if any_pending is None:
                return None
            row = self.db.conn.execute(
                "SELECT COALESCE(SUM(json_array_length(chunk_ids)), 0), "
                "COALESCE(SUM(json_array_length(chunk_ids) * dense_pending), 0) FROM files "
                "WHERE collection = ? AND status = 'indexed'",
                (self.collection,),
            ).fetchone()
        return DenseShare(int(row[0]), int(row[1]))

    def dense_pending(self) -> list[FileRecord]:
        """The files whose points wait for their dense vectors."""
        with self.db.errors():
            rows = self.db.conn.execute(
                _SELECT + " AND dense_pending = 1", (self.collection,)
            ).fetchall()
        return [_record(row) for row in rows]

    def dense_done(self, conn: sqlite3.Connection, records: Iterable[FileRecord]) -> None:
        """The points of these files (as the records list them) have their dense
        vectors now; a file written again since keeps its own mark."""
        with self.db.errors():
            conn.executemany(
                "UPDATE files SET dense_pending = 0 WHERE collection = ? AND path = ? "
                "AND chunk_ids = ?",
                [(self.collection, r.path, json.dumps(list(r.chunk_ids))) for r in records],
            )

    def put(self, conn: sqlite3.Connection, records: Iterable[FileRecord]) -> None:
        with self.db.errors():
            conn.executemany(
                "INSERT INTO files "
                "(collection, path, size, mtime_ns, hash, status, language, chunk_ids, "
                "indexed_at, dense_pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (collection, path) DO UPDATE SET "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash, "
                "status = excluded.status, language = excluded.language, "
                "chunk_ids = excluded.chunk_ids, indexed_at = excluded.indexed_at, "
                "dense_pending = excluded.dense_pending",
                [
                    (
                        self.collection,
                        r.path,
                        r.size,
                        r.mtime_ns,
                        r.hash,
                        r.status,
                        r.language,
                        json.dumps(list(r.chunk_ids)),
                        r.indexed_at,
                        int(r.dense_pending),
                    )
                    for r in records
                ],
            )

    def delete(self, conn: sqlite3.Connection, paths: Iterable[str]) -> None:
        with self.db.errors():
            conn.executemany(
                "DELETE FROM files WHERE collection = ? AND path = ?",
                [(self.collection, p) for p in paths],
            )

    def clear(self, conn: sqlite3.Connection) -> None:
        """Forget every file and every mark of the collection."""
        with self.db.errors():
            conn.execute("DELETE FROM files WHERE collection = ?", (self.collection,))
            conn.execute("DELETE FROM collection_meta WHERE collection = ?", (self.collection,))

    def copy_to(self, conn: sqlite3.Connection, target: str) -> Manifest:
        """Make `target`'s entries and marks a copy of this collection's (what
        it had before is replaced)."""
        if target == self.collection:
            return self
        copy = Manifest(self.db, target)
        copy.clear(conn)
        with self.db.errors():
            conn.execute(
                "INSERT INTO files (collection, path, size, mtime_ns, hash, status, language, "
                "chunk_ids, indexed_at, dense_pending) SELECT ?, path, size, mtime_ns, hash, "
                "status, language, chunk_ids, indexed_at, dense_pending FROM files "
                "WHERE collection = ?",
                (target, self.collection),
            )
            conn.execute(
                "INSERT INTO collection_meta (collection, key, value) "
                "SELECT ?, key, value FROM collection_meta WHERE collection = ?",
                (target, self.collection),
            )
        return copy

    def rename(self, conn: sqlite3.Connection, new: str) -> Manifest:
        """Move the entries and marks to the collection's new name."""
        with self.db.errors():
            for table in ("files", "collection_meta"):
                conn.execute(
                    f"UPDATE {table} SET collection = ? WHERE collection = ?",
                    (new, self.collection),
                )
        return Manifest(self.db, new)

    # -- marks -------------------------------------------------------------

    def get_mark(self, key: str) -> str | None:
        with self.db.errors():
            row = self.db.conn.execute(
                "SELECT value FROM collection_meta WHERE collection = ? AND key = ?",
                (self.collection, key),
            ).fetchone()
        return None if row is None else str(row[0])

    def set_mark(self, key: str, value: str | None, conn: sqlite3.Connection | None = None) -> None:
        c = conn or self.db.conn
        with self.db.errors():
            if value is None:
                c.execute(
                    "DELETE FROM collection_meta WHERE collection = ? AND key = ?",
                    (self.collection, key),
                )
            else:
                c.execute(
                    "INSERT INTO collection_meta (collection, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value",
                    (self.collection, key, value),
                )


def _record(row: tuple[object, ...]) -> FileRecord:
    path, size, mtime_ns, hash_, status, language, chunk_ids, indexed_at, pending = row
    return FileRecord(
        path=str(path),
        size=int(size),  # type: ignore[call-overload]
        mtime_ns=int(mtime_ns),  # type: ignore[call-overload]
        hash=str(hash_),
        status=str(status),
        language=str(language),
        chunk_ids=tuple(json.loads(str(chunk_ids))),
        indexed_at=float(indexed_at),  # type: ignore[arg-type]
        dense_pending=bool(pending),
    )
