"""Collection aliases as stored in `state.db`: name → target, and who made them why.

Only storage lives here; the rules (no alias shadows a collection or another
alias, no chains, resolution with a cache) are `cidx.collections`'s. Every
change bumps a version number in the database, so a process holding a cache
of the aliases sees another process's change on its next resolution.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cidx.state.db import StateDB

__all__ = ["Alias", "AliasTable"]

_VERSION_KEY = "aliases_version"


@dataclass(frozen=True)
class Alias:
    name: str
    target: str
    created_by: str
    reason: str
    created_at: float
    last_used_at: float | None


class AliasTable:
    """The aliases of one state database."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def version(self) -> int:
        """A number that changes whenever an alias is added, changed or removed."""
        return int(self.db.get_meta(_VERSION_KEY) or 0)

    def all(self) -> dict[str, Alias]:
        with self.db.errors():
            rows = self.db.conn.execute(
                "SELECT name, target, created_by, reason, created_at, last_used_at FROM aliases "
                "ORDER BY name"
            ).fetchall()
        return {row[0]: Alias(*row) for row in rows}

    def put(self, conn: sqlite3.Connection, alias: Alias) -> None:
        with self.db.errors():
            conn.execute(
                "INSERT INTO aliases (name, target, created_by, reason, created_at, last_used_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "target = excluded.target, created_by = excluded.created_by, "
                "reason = excluded.reason, created_at = excluded.created_at",
                (
                    alias.name,
                    alias.target,
                    alias.created_by,
                    alias.reason,
                    alias.created_at,
                    alias.last_used_at,
                ),
            )
            self._bump(conn)

    def delete(self, conn: sqlite3.Connection, name: str) -> bool:
        with self.db.errors():
            gone = conn.execute("DELETE FROM aliases WHERE name = ?", (name,)).rowcount > 0
            if gone:
                self._bump(conn)
        return gone

    def retarget(self, conn: sqlite3.Connection, old: str, new: str) -> None:
        """Point every alias of `old` at `new` (the collection was renamed)."""
        with self.db.errors():
            if conn.execute("UPDATE aliases SET target = ? WHERE target = ?", (new, old)).rowcount:
                self._bump(conn)

    def touch(self, name: str) -> None:
        """Record that `name` was just used (not a change: no version bump)."""
        with self.db.errors(), self.db.transaction() as conn:
            conn.execute("UPDATE aliases SET last_used_at = ? WHERE name = ?", (time.time(), name))

    def _bump(self, conn: sqlite3.Connection) -> None:
        self.db.set_meta(_VERSION_KEY, str(self.version() + 1), conn)
