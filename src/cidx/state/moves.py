"""Collection migrations as stored in `state.db`: the row, its outbox and its tombstones.

Only storage lives here; the phases and what each one does are
`cidx.dualwrite`'s. Every phase change bumps a version number in the
database, so a process holding a cached route (`cidx.collections`) sees
another process's change on its next write or read, as with aliases.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cidx.state.db import StateDB

__all__ = ["ACTIVE_PHASES", "CUT_OVER_PHASES", "CollectionMigration", "MoveTable", "OutboxEntry"]

_VERSION_KEY = "collection_migrations_version"
# The ids of the dual write under way (`MoveTable.in_flight`), as JSON.
_IN_FLIGHT_KEY = "collection_migration_in_flight"

# Phases in which SOURCE and TARGET both receive every write.
DUAL_WRITE_PHASES = frozenset({"backfill", "validate", "invalid", "validated", "cutover"})
# Phases in which reads of SOURCE go to TARGET.
CUT_OVER_PHASES = frozenset({"cutover", "cleanup"})
ACTIVE_PHASES = frozenset(
    {
        "prepare",
        "backfill",
        "validate",
        "invalid",
        "validated",
        "cutover",
        "cleanup",
        "rolling_back",
    }
)


@dataclass(frozen=True)
class CollectionMigration:
    """One migration of a collection (SOURCE) to another (TARGET)."""

    id: str
    source: str
    target: str
    phase: str
    source_model: str
    target_model: str
    target_dim: int
    batch: int
    retain_seconds: float
    started_by: str
    cursor: str | None = None
    copied: int = 0
    total: int | None = None
    started_at: float = 0.0
    cutover_at: float | None = None
    ended_at: float | None = None
    detail: str | None = None
    # Where each side lives (`cidx.storage.place_key`); None: the project's store.
    source_store: str | None = None
    target_store: str | None = None

    @property
    def moves_store(self) -> bool:
        """Whether TARGET is in another store than SOURCE (the index moves there)."""
        return self.source_store != self.target_store

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @property
    def dual_write(self) -> bool:
        return self.phase in DUAL_WRITE_PHASES

    @property
    def cut_over(self) -> bool:
        return self.phase in CUT_OVER_PHASES

    @property
    def reembed(self) -> bool:
        return self.source_model != self.target_model

    @property
    def read_side(self) -> str:
        """The collection reads of SOURCE go to now."""
        return self.target if self.cut_over else self.source

    @property
    def mirror_side(self) -> str | None:
        """The collection that receives a copy of every write, if any."""
        if not self.dual_write:
            return None
        return self.source if self.cut_over else self.target


@dataclass(frozen=True)
class OutboxEntry:
    point_id: str
    attempts: int
    last_error: str | None


_COLUMNS = tuple(f.name for f in fields(CollectionMigration))


class MoveTable:
    """The collection migrations of one state database."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def version(self) -> int:
        """A number that changes whenever a migration starts or changes phase."""
        return int(self.db.get_meta(_VERSION_KEY) or 0)

    def all(self) -> list[CollectionMigration]:
        with self.db.errors():
            rows = self.db.conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM collection_migrations ORDER BY started_at, id"
            ).fetchall()
        return [CollectionMigration(**dict(zip(_COLUMNS, row, strict=True))) for row in rows]

    def active(self) -> CollectionMigration | None:
        """The one migration under way, if any (at most one runs at a time)."""
        return next((m for m in reversed(self.all()) if m.active), None)

    def get(self, migration_id: str) -> CollectionMigration | None:
        return next((m for m in self.all() if m.id == migration_id), None)

    def add(self, conn: sqlite3.Connection, move: CollectionMigration) -> None:
        marks = ", ".join("?" * len(_COLUMNS))
        with self.db.errors():
            conn.execute(
                f"INSERT INTO collection_migrations ({', '.join(_COLUMNS)}) VALUES ({marks})",
                tuple(getattr(move, name) for name in _COLUMNS),
            )
            self._bump(conn)

    def update(
        self, conn: sqlite3.Connection, move: CollectionMigration, **changes: Any
    ) -> CollectionMigration:
        """`move` with `changes`, written in `conn`'s transaction; a new phase
        bumps the version (progress alone does not)."""
        new = replace(move, **changes)
        sets = ", ".join(f"{name} = ?" for name in changes)
        with self.db.errors():
            conn.execute(
                f"UPDATE collection_migrations SET {sets} WHERE id = ?",
                (*(getattr(new, name) for name in changes), move.id),
            )
            if "phase" in changes:
                self._bump(conn)
        return new

    # -- the outbox --------------------------------------------------------

    def queue(self, conn: sqlite3.Connection, migration_id: str, ids: Iterable[str]) -> None:
        """Note that the other side's copy of `ids` may lag until removed again."""
        now = time.time()
        with self.db.errors():
            conn.executemany(
                "INSERT OR IGNORE INTO collection_migration_outbox "
                "(migration, point_id, attempts, queued_at) VALUES (?, ?, 0, ?)",
                [(migration_id, pid, now) for pid in ids],
            )

    def in_flight(self, conn: sqlite3.Connection, migration_id: str, ids: Sequence[str]) -> None:
        """Note, in one row, that a write of `ids` is under way: the other side
        may lag for them until `landed`. What a write stopped part-way (a
        failure, a crash) left noted goes into the outbox first, so a batch
        costs two one-row writes, not two of a row per point."""
        self._requeue(conn)
        with self.db.errors():
            self.db.set_meta(_IN_FLIGHT_KEY, json.dumps([migration_id, list(ids)]), conn)

    def landed(self, conn: sqlite3.Connection) -> None:
        """The write `in_flight` noted reached both sides."""
        with self.db.errors():
            self.db.set_meta(_IN_FLIGHT_KEY, None, conn)

    def requeue(self) -> None:
        """Queue in the outbox the ids of a write stopped part-way."""
        if self.db.get_meta(_IN_FLIGHT_KEY) is not None:
            with self.db.transaction() as tx:
                self._requeue(tx)

    def _requeue(self, conn: sqlite3.Connection) -> None:
        with self.db.errors():
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (_IN_FLIGHT_KEY,)).fetchone()
            if row is None:
                return
            migration_id, ids = json.loads(row[0])
            self.queue(conn, migration_id, ids)
            self.landed(conn)

    def done(self, conn: sqlite3.Connection, migration_id: str, ids: Iterable[str]) -> None:
        with self.db.errors():
            conn.executemany(
                "DELETE FROM collection_migration_outbox WHERE migration = ? AND point_id = ?",
                [(migration_id, pid) for pid in ids],
            )

    def failed(
        self, conn: sqlite3.Connection, migration_id: str, ids: Iterable[str], error: str
    ) -> None:
        with self.db.errors():
            conn.executemany(
                "UPDATE collection_migration_outbox SET attempts = attempts + 1, last_error = ? "
                "WHERE migration = ? AND point_id = ?",
                [(error, migration_id, pid) for pid in ids],
            )

    def outbox(self, migration_id: str, limit: int = 1_000_000) -> list[OutboxEntry]:
        with self.db.errors():
            rows = self.db.conn.execute(
                "SELECT point_id, attempts, last_error FROM collection_migration_outbox "
                "WHERE migration = ? ORDER BY point_id LIMIT ?",
                (migration_id, limit),
            ).fetchall()
        return [OutboxEntry(*row) for row in rows]

    def outbox_size(self, migration_id: str) -> int:
        with self.db.errors():
            return int(
                self.db.conn.execute(
                    "SELECT COUNT(*) FROM collection_migration_outbox WHERE migration = ?",
                    (migration_id,),
                ).fetchone()[0]
            )

    # -- tombstones ----------------------------------------------------------

    def bury(self, conn: sqlite3.Connection, migration_id: str, ids: Iterable[str]) -> None:
        with self.db.errors():
            conn.executemany(
                "INSERT OR IGNORE INTO collection_migration_tombstones (migration, point_id) "
                "VALUES (?, ?)",
                [(migration_id, pid) for pid in ids],
            )

    def unbury(self, conn: sqlite3.Connection, migration_id: str, ids: Iterable[str]) -> None:
        with self.db.errors():
            if not self._any_buried(conn, migration_id):
                return  # the common case: one lookup, not one delete per point
            conn.executemany(
                "DELETE FROM collection_migration_tombstones WHERE migration = ? AND point_id = ?",
                [(migration_id, pid) for pid in ids],
            )

    def buried(self, migration_id: str, ids: Sequence[str]) -> set[str]:
        """Those of `ids` deleted during the backfill (one lookup when none was)."""
        found: set[str] = set()
        with self.db.errors():
            if not self._any_buried(self.db.conn, migration_id):
                return found
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                found.update(
                    row[0]
                    for row in self.db.conn.execute(
                        "SELECT point_id FROM collection_migration_tombstones WHERE migration = ? "
                        f"AND point_id IN ({','.join('?' * len(part))})",
                        (migration_id, *part),
                    )
                )
        return found

    def _any_buried(self, conn: sqlite3.Connection, migration_id: str) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM collection_migration_tombstones WHERE migration = ? LIMIT 1",
                (migration_id,),
            ).fetchone()
            is not None
        )

    def forget(self, conn: sqlite3.Connection, migration_id: str) -> None:
        """Drop the outbox and tombstones of a migration that has ended."""
        with self.db.errors():
            for table in ("collection_migration_outbox", "collection_migration_tombstones"):
                conn.execute(f"DELETE FROM {table} WHERE migration = ?", (migration_id,))
        self.landed(conn)

    def _bump(self, conn: sqlite3.Connection) -> None:
        self.db.set_meta(_VERSION_KEY, str(self.version() + 1), conn)
