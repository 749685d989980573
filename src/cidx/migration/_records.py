"""The persistent record of a project's migrations, in its state DB.

Each migration is one row of the `migrations` table, updated as it advances
(`MigrationLog`). A move between stores goes through these statuses:

    copying       points are being copied to the target (resumes at `next_offset`)
    copied        every point is in the target, and the manifest beside it
    verified      the copy's count and sample queries match the source
    committed     the config names the target: the move has happened
    done          the source is removed
    rolling_back  the move failed before its commit; the target is being removed
    rolled_back   it was undone: the source is still the project's index

A config schema upgrade is recorded as one row, `done`, when it happens.

A marker file (`.code-indexer/migrating`) exists from before a move's row is
written until after it is finished, so that checking for an unfinished
migration costs one `stat` when there is none.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from cidx.fsutil import write_atomic
from cidx.project import ProjectPaths
from cidx.state import StateDB
from cidx.state.db import state_error

__all__ = [
    "FINISHED",
    "MARKER",
    "MigrationLog",
    "MigrationRecord",
    "clear_marker",
    "has_marker",
    "read_records",
    "set_marker",
]

Kind = Literal["relocate", "config"]
FINISHED = frozenset({"done", "rolled_back"})
MARKER = "migrating"


@dataclass(frozen=True)
class MigrationRecord:
    """One migration of a project's index, as recorded in its state DB."""

    id: str
    kind: Kind
    status: str
    started_at: float
    ended_at: float | None = None
    source_mode: str | None = None
    source_collection: str | None = None
    target_mode: str | None = None
    target_collection: str | None = None
    # Where the data the project can return to is kept until the copy is
    # verified (the source collection's folder).
    backup: str | None = None
    next_offset: str | None = None
    copied: int = 0
    total: int | None = None
    detail: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


_COLUMNS = tuple(f.name for f in fields(MigrationRecord))


def _record(row: tuple[Any, ...]) -> MigrationRecord:
    return MigrationRecord(**dict(zip(_COLUMNS, row, strict=True)))


class MigrationLog:
    """The migrations table of one state DB."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def add(self, record: MigrationRecord) -> MigrationRecord:
        marks = ", ".join("?" * len(_COLUMNS))
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO migrations ({', '.join(_COLUMNS)}) VALUES ({marks})",
                tuple(getattr(record, name) for name in _COLUMNS),
            )
        return record

    def update(
        self, record: MigrationRecord, conn: sqlite3.Connection | None = None, **changes: Any
    ) -> MigrationRecord:
        """`record` with `changes`, written (in `conn`'s transaction when given);
        a final status also sets `ended_at`."""
        if changes.get("status") in FINISHED and "ended_at" not in changes:
            changes["ended_at"] = time.time()
        new = replace(record, **changes)
        sets = ", ".join(f"{name} = ?" for name in changes)
        values = (*(getattr(new, name) for name in changes), record.id)
        if conn is not None:
            with self.db.errors():
                conn.execute(f"UPDATE migrations SET {sets} WHERE id = ?", values)
            return new
        with self.db.transaction() as tx:
            tx.execute(f"UPDATE migrations SET {sets} WHERE id = ?", values)
        return new

    def all(self) -> list[MigrationRecord]:
        with self.db.errors():
            rows = self.db.conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM migrations ORDER BY started_at, id"
            ).fetchall()
        return [_record(row) for row in rows]

    def unfinished(self) -> list[MigrationRecord]:
        return [r for r in self.all() if not r.finished]


def read_records(state_db: Path) -> list[MigrationRecord] | None:
    """The records of a state DB read without writing to it (no lock needed),
    or None when its schema has no migrations table yet."""
    if not state_db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{state_db}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM migrations ORDER BY started_at, id"
            ).fetchall()
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return None
        raise state_error(state_db, exc) from None
    return [_record(row) for row in rows]


def has_marker(paths: ProjectPaths) -> bool:
    return (paths.index_dir / MARKER).exists()


def set_marker(paths: ProjectPaths, migration_id: str) -> None:
    write_atomic(paths.index_dir / MARKER, migration_id + "\n")


def clear_marker(paths: ProjectPaths) -> None:
    (paths.index_dir / MARKER).unlink(missing_ok=True)
