"""The registry of the global store: whose each collection in it is.

Every project in `global` storage mode keeps its collection in one store
shared by all of them, in the user's data folder
(`cidx.userdirs.data_dir()/qdrant-data`). The registry beside that store,
`registry.db`, records for each collection the project it belongs to (its
root, its id), its model, when it was created and last used, and whether it
is complete or still being copied in; and it mirrors every migration that
moves a collection into or out of the store. `cidx collections list`,
`cidx clear-data --all` and fix-config read it to know whose data is whose
without opening other projects' shards (each can be open in its own
project's owner process only).

SQLite in WAL mode rather than a JSON file: several projects' processes
update it at the same time (one is used, another migrates), and two
read-modify-writes of a JSON file, however atomically each is written, lose
one of the two updates unless every writer also takes a separate lock.
SQLite's transactions give that, readers never wait, and the file changes
shape only through numbered migrations, like each project's state DB.

The registry also keeps the aliases of every project in global mode
(`aliases`, from schema version 2): each project's state database is where
its aliases are used, and `mirror_aliases` copies them here each time they
change, so the store's side knows every name that reaches a collection in
it. `cidx doctor` compares the two (`alias_drift`) and `--repair` makes
them agree without removing any alias.

`claim` is how a project in global mode takes its collection when it opens:
first use registers it; a project that moved takes its entry along; a copy
of a project that still uses the collection is refused, since the two
would overwrite each other's index.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cidx.errors import AccessError, ConfigError, StateError
from cidx.fsutil import disk_full, ensure_free, private_dir
from cidx.project import ProjectPaths
from cidx.state import Alias
from cidx.state.db import immediate
from cidx.userdirs import data_dir

__all__ = [
    "REGISTRY_FILE",
    "AliasDrift",
    "Registry",
    "RegistryEntry",
    "RegistryMigration",
    "alias_drift",
    "belongs_to",
    "claim",
    "mirror_aliases",
    "registry_exists",
    "registry_path",
    "uses_collection",
]

REGISTRY_FILE = "registry.db"
# A collection's state: complete and in use, or being copied in by a
# migration (whose project is named, so nothing mistakes it for an orphan).
EntryState = Literal["ready", "incoming"]
_ROOM_TO_WRITE = 256 * 1024


def registry_path() -> Path:
    return data_dir() / REGISTRY_FILE


def registry_exists() -> bool:
    """Whether there is a registry to consult. One this user cannot even see
    (a data folder of someone else's, through an inherited CIDX_DATA_DIR)
    counts as none: a project in local mode never needs it."""
    try:
        return registry_path().exists()
    except OSError:
        return False


@dataclass(frozen=True)
class RegistryEntry:
    """One collection of the global store and the project it belongs to."""

    name: str
    project_root: str
    project_id: str
    model: str
    state: EntryState
    created_at: float
    last_used_at: float


@dataclass(frozen=True)
class RegistryMigration:
    """A migration into or out of the global store, as the registry mirrors it."""

    id: str
    project_root: str
    collection: str  # the collection on the global store's side
    direction: Literal["in", "out"]
    status: str
    started_at: float
    ended_at: float | None
    backup: str | None
    detail: str | None


def _m001_create_tables(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE collections (
            name          TEXT PRIMARY KEY,
            project_root  TEXT NOT NULL,
            project_id    TEXT NOT NULL,
            model         TEXT NOT NULL,
            state         TEXT NOT NULL,     -- ready | incoming
            created_at    REAL NOT NULL,
            last_used_at  REAL NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX collections_root ON collections (project_root)")
    conn.execute(
        """
        CREATE TABLE migrations (
            id            TEXT PRIMARY KEY,  -- the id in the project's state DB
            project_root  TEXT NOT NULL,
            collection    TEXT NOT NULL,
            direction     TEXT NOT NULL,     -- in | out (of the global store)
            status        TEXT NOT NULL,
            started_at    REAL NOT NULL,
            ended_at      REAL,
            backup        TEXT,
            detail        TEXT
        )
        """
    )


def _m002_aliases(conn: sqlite3.Connection) -> None:
    # Keyed by project too: a copy of a project keeps the aliases it was
    # copied with, under the same names as the original's.
    conn.execute(
        """
        CREATE TABLE aliases (
            project_root  TEXT NOT NULL,
            name          TEXT NOT NULL,
            target        TEXT NOT NULL,
            created_by    TEXT NOT NULL,
            reason        TEXT NOT NULL,
            created_at    REAL NOT NULL,
            PRIMARY KEY (project_root, name)
        )
        """
    )


_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_create_tables, _m002_aliases]

# Seconds between two updates of an entry's last use: a query loop must not
# write the registry each time.
_TOUCH_EVERY = 60.0


class Registry:
    """The registry file of the global store (created when first needed)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or registry_path()
        self._guard = threading.Lock()
        try:
            private_dir(self.path.parent)
        except PermissionError:
            raise AccessError(
                f"Cannot open the registry of the global store in {self.path.parent}: "
                "permission denied. Projects in global storage mode keep their data in "
                "your data folder: make that folder yours, or point CIDX_DATA_DIR at a "
                "folder you own."
            ) from None
        with self._errors():
            ensure_free(self.path.parent, _ROOM_TO_WRITE)
            self._conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
            except BaseException:
                self._conn.close()
                raise

    def close(self) -> None:
        with self._guard, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _registry_error(self.path, exc) from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._guard, self._errors():
            ensure_free(self.path.parent, _ROOM_TO_WRITE)
            with immediate(self._conn) as conn:
                yield conn

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._guard, self._errors():
            return list(self._conn.execute(sql, args).fetchall())

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(_MIGRATIONS):
            raise StateError(
                f"The registry of the global store {self.path} has schema version {version}, "
                f"newer than this cidx understands ({len(_MIGRATIONS)}). Upgrade cidx to use "
                "projects in global storage mode."
            )
        for number in range(version, len(_MIGRATIONS)):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if int(self._conn.execute("PRAGMA user_version").fetchone()[0]) == number:
                    _MIGRATIONS[number](self._conn)
                    self._conn.execute(f"PRAGMA user_version = {number + 1}")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- collections -------------------------------------------------------

    def entry(self, name: str) -> RegistryEntry | None:
        rows = self._read(f"SELECT {_ENTRY} FROM collections WHERE name = ?", (name,))
        return _entry(rows[0]) if rows else None

    def entries(self) -> list[RegistryEntry]:
        return [_entry(r) for r in self._read(f"SELECT {_ENTRY} FROM collections ORDER BY name")]

    def of_project(self, root: Path) -> list[RegistryEntry]:
        rows = self._read(
            f"SELECT {_ENTRY} FROM collections WHERE project_root = ? ORDER BY name", (str(root),)
        )
        return [_entry(r) for r in rows]

    def put(
        self,
        name: str,
        *,
        root: Path,
        project_id: str,
        model: str,
        state: EntryState = "ready",
    ) -> None:
        """Record `name` as the collection of the project at `root` (keeping when
        it was created, if it was already known)."""
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO collections (name, project_root, project_id, model, state, "
                "created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET project_root = excluded.project_root, "
                "project_id = excluded.project_id, model = excluded.model, "
                "state = excluded.state, last_used_at = excluded.last_used_at",
                (name, str(root), project_id, model, state, now, now),
            )

    def touch(self, name: str) -> None:
        """Note that `name` was used now (at most once a minute)."""
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "UPDATE collections SET last_used_at = ? WHERE name = ? AND last_used_at < ?",
                (now, name, now - _TOUCH_EVERY),
            )

    def forget(self, name: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM collections WHERE name = ?", (name,))

    def forget_project(self, root: Path) -> None:
        """Forget everything recorded for the project at `root` (it is uninstalled)."""
        with self._write() as conn:
            for table in ("collections", "migrations", "aliases"):
                conn.execute(f"DELETE FROM {table} WHERE project_root = ?", (str(root),))

    # -- aliases -----------------------------------------------------------

    def aliases(self, root: Path) -> list[Alias]:
        """The aliases recorded for the project at `root` (no last use: that is
        the state database's)."""
        rows = self._read(
            "SELECT name, target, created_by, reason, created_at FROM aliases "
            "WHERE project_root = ? ORDER BY name",
            (str(root),),
        )
        return [
            Alias(str(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4]), None)  # type: ignore[arg-type]
            for r in rows
        ]

    def move_aliases(self, old: Path, new: Path) -> None:
        """The aliases recorded for the project at `old` are the one at `new`'s."""
        with self._write() as conn:
            conn.execute(
                "UPDATE OR REPLACE aliases SET project_root = ? WHERE project_root = ?",
                (str(new), str(old)),
            )

    def set_aliases(self, root: Path, aliases: Iterable[Alias]) -> None:
        """Make `aliases` the project's aliases here (one transaction)."""
        with self._write() as conn:
            conn.execute("DELETE FROM aliases WHERE project_root = ?", (str(root),))
            conn.executemany(
                "INSERT INTO aliases (project_root, name, target, created_by, reason, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (str(root), a.name, a.target, a.created_by, a.reason, a.created_at)
                    for a in aliases
                ],
            )

    # -- migrations --------------------------------------------------------

    def record_migration(self, migration: RegistryMigration) -> None:
        m = migration
        with self._write() as conn:
            conn.execute(
                "INSERT INTO migrations (id, project_root, collection, direction, status, "
                "started_at, ended_at, backup, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                "ended_at = excluded.ended_at, backup = excluded.backup, "
                "detail = excluded.detail",
                (
                    m.id,
                    m.project_root,
                    m.collection,
                    m.direction,
                    m.status,
                    m.started_at,
                    m.ended_at,
                    m.backup,
                    m.detail,
                ),
            )

    def migrations(self, root: Path | None = None) -> list[RegistryMigration]:
        where, args = ("WHERE project_root = ?", (str(root),)) if root is not None else ("", ())
        rows = self._read(
            "SELECT id, project_root, collection, direction, status, started_at, ended_at, "
            f"backup, detail FROM migrations {where} ORDER BY started_at, id",
            args,
        )
        return [
            RegistryMigration(
                str(r[0]),
                str(r[1]),
                str(r[2]),
                "in" if r[3] == "in" else "out",
                str(r[4]),
                float(r[5]),  # type: ignore[arg-type]
                None if r[6] is None else float(r[6]),  # type: ignore[arg-type]
                None if r[7] is None else str(r[7]),
                None if r[8] is None else str(r[8]),
            )
            for r in rows
        ]


@dataclass(frozen=True)
class AliasDrift:
    """Aliases of one project recorded in one place only, or differently."""

    state_only: list[Alias]  # in its state database, not in the registry
    registry_only: list[Alias]  # in the registry, not in its state database
    differ: list[str]  # in both, reaching different collections

    @property
    def names(self) -> list[str]:
        return sorted(
            {a.name for a in self.state_only}
            | {a.name for a in self.registry_only}
            | set(self.differ)
        )


def mirror_aliases(root: Path, aliases: Iterable[Alias]) -> None:
    """Record the aliases of the project at `root` (in global mode) in the
    registry, as its state database has them after a change."""
    with Registry() as registry:
        registry.set_aliases(root, aliases)


def alias_drift(registry: Registry, root: Path, aliases: Iterable[Alias]) -> AliasDrift:
    """How the registry's aliases of the project at `root` differ from `aliases`
    (its state database's)."""
    mine = {a.name: a for a in aliases}
    theirs = {a.name: a for a in registry.aliases(root)}
    return AliasDrift(
        state_only=[a for n, a in sorted(mine.items()) if n not in theirs],
        registry_only=[a for n, a in sorted(theirs.items()) if n not in mine],
        differ=sorted(n for n in mine.keys() & theirs.keys() if mine[n].target != theirs[n].target),
    )


_ENTRY = "name, project_root, project_id, model, state, created_at, last_used_at"


def _entry(row: tuple[object, ...]) -> RegistryEntry:
    name, root, project_id, model, state, created, used = row
    return RegistryEntry(
        name=str(name),
        project_root=str(root),
        project_id=str(project_id),
        model=str(model),
        state="incoming" if state == "incoming" else "ready",
        created_at=float(created),  # type: ignore[arg-type]
        last_used_at=float(used),  # type: ignore[arg-type]
    )


def _registry_error(path: Path, exc: sqlite3.Error) -> Exception:
    text = str(exc)
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == 13 or "disk is full" in text:  # SQLITE_FULL
        return disk_full(path.parent)
    if code in (11, 26) or "malformed" in text or "not a database" in text:
        return StateError(
            f"The registry of the global store {path} is damaged ({text}). Move it aside "
            f"(`mv {path} {path}.damaged`): each project in global storage mode registers "
            "its collection again the next time cidx runs in it."
        )
    return StateError(
        f"The registry of the global store {path} failed ({text}). Run the command again; "
        "if this repeats, check that the folder is writable."
    )


def uses_collection(root: Path, name: str) -> bool:
    """Whether the project at `root` has a config naming `name` in global mode.

    Read without validation (a plain JSON read): this asks about another
    project, whose config this cidx may not even understand.
    """
    try:
        raw = json.loads(ProjectPaths(root).config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(raw, dict)
        and raw.get("storage_mode") == "global"
        and raw.get("collection") == name
    )


def belongs_to(registry: Registry, name: str, root: Path) -> bool:
    """Whether the project at `root` may treat `name` in the global store as its
    own: the registry says so, or knows no owner for it, or names a project
    that no longer uses it (this one moved from there)."""
    entry = registry.entry(name)
    return (
        entry is None
        or entry.project_root == str(root)
        or not uses_collection(Path(entry.project_root), name)
    )


def claim(registry: Registry, name: str, *, root: Path, project_id: str, model: str) -> None:
    """Make `name` the collection of the project at `root`, as it opens in global mode.

    ConfigError when another project at a different root still uses it: this
    project is a copy of that one, and sharing a collection would let each
    overwrite the other's index.
    """
    entry = registry.entry(name)
    if entry is not None and entry.project_root == str(root):
        registry.touch(name)
        return
    if entry is not None and uses_collection(Path(entry.project_root), name):
        raise ConfigError(
            f"The index of {root} uses the collection {name} in the global store, which "
            f"belongs to the project at {entry.project_root}: this project is a copy of that "
            "one. Run `cidx fix-config --force` here to give this copy collections of its own "
            f"(copied from that project's, which keeps its index)."
        )
    # First use, or the project moved from the root the entry names (its
    # aliases move along).
    registry.put(name, root=root, project_id=project_id, model=model)
    if entry is not None:
        registry.move_aliases(Path(entry.project_root), root)
