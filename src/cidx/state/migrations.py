"""Numbered schema migrations of `state.db`, applied in order when it opens.

`PRAGMA user_version` records how many have been applied. A released
migration is never edited: a change to the schema is a new function
appended to `MIGRATIONS`, tested against a stored copy of the previous
schema (tests/data/state-v*.db). A migration takes the connection and a
`MigrationContext` (what the database alone cannot tell).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MigrationContext:
    """What a migration may need to know from outside the database."""

    # The collection a manifest from before per-collection manifests (schema
    # 2 and older) describes: the one the project's config names.
    collection: str | None = None


class MissingContext(Exception):
    """A migration needed to know something its caller did not say."""


def _run(conn: sqlite3.Connection, script: str) -> None:
    # Not `executescript`: it commits first, which would break the
    # one-transaction-per-migration guarantee.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def m001_create_tables(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        -- One row per file the last sync saw: its stat and hash (so the next
        -- sync skips it unless it changed) and the ids of its points.
        CREATE TABLE files (
            path       TEXT PRIMARY KEY,      -- POSIX, relative to the root
            size       INTEGER NOT NULL,
            mtime_ns   INTEGER NOT NULL,
            hash       TEXT NOT NULL,         -- blake2b-128 of the bytes
            status     TEXT NOT NULL,         -- indexed | binary | empty
            language   TEXT NOT NULL,
            chunk_ids  TEXT NOT NULL,         -- JSON array of point ids
            indexed_at REAL NOT NULL          -- unix time of the hash
        );
        -- Vectors by (model, hash of the embedded text): unchanged, moved or
        -- reverted content is never embedded twice.
        CREATE TABLE embeddings (
            model     TEXT NOT NULL,
            text_hash BLOB NOT NULL,
            vector    BLOB NOT NULL,          -- float32, little-endian
            used_at   INTEGER NOT NULL,       -- unix seconds, for pruning
            PRIMARY KEY (model, text_hash)
        ) WITHOUT ROWID;
        CREATE INDEX embeddings_used_at ON embeddings (used_at);
        """,
    )


def m002_embeddings_with_rowid(conn: sqlite3.Connection) -> None:
    """Store cached vectors in a rowid table.

    A WITHOUT ROWID table keeps whole rows in its B-tree pages; rows of
    1.5 KiB (a 384-float vector) spill over into overflow pages and made
    the cache take 112 MB for 24,000 vectors where a rowid table takes 51.
    """
    _run(
        conn,
        """
        CREATE TABLE embeddings_new (
            id        INTEGER PRIMARY KEY,
            model     TEXT NOT NULL,
            text_hash BLOB NOT NULL,
            vector    BLOB NOT NULL,
            used_at   INTEGER NOT NULL
        );
        INSERT INTO embeddings_new (model, text_hash, vector, used_at)
            SELECT model, text_hash, vector, used_at FROM embeddings;
        DROP TABLE embeddings;
        ALTER TABLE embeddings_new RENAME TO embeddings;
        CREATE UNIQUE INDEX embeddings_key ON embeddings (model, text_hash);
        CREATE INDEX embeddings_used_at ON embeddings (used_at)
        """,
    )


# Sync marks that belong to one collection's manifest, not to the database.
_COLLECTION_KEYS = (
    "sync_dirty",
    "store_damaged",
    "index_format",
    "last_index_at",
    "last_index_seconds",
)


def m003_manifest_by_collection(conn: sqlite3.Connection, ctx: MigrationContext) -> None:
    """Key the manifest, and its sync marks, by collection.

    A project may hold several collections at once (a migration to another
    model writes both); each has its own record of which files it holds.
    Rows and marks of the one earlier manifest go to the collection the
    project's config names.
    """
    rows = conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    marks = conn.execute(
        f"SELECT COUNT(*) FROM meta WHERE key IN ({','.join('?' * len(_COLLECTION_KEYS))})",
        _COLLECTION_KEYS,
    ).fetchone()[0]
    if (rows or marks) and not ctx.collection:
        raise MissingContext("the collection of the existing manifest")
    _run(
        conn,
        """
        CREATE TABLE files_by_collection (
            collection TEXT NOT NULL,
            path       TEXT NOT NULL,         -- POSIX, relative to the root
            size       INTEGER NOT NULL,
            mtime_ns   INTEGER NOT NULL,
            hash       TEXT NOT NULL,         -- blake2b-128 of the bytes
            status     TEXT NOT NULL,         -- indexed | binary | empty | minified
            language   TEXT NOT NULL,
            chunk_ids  TEXT NOT NULL,         -- JSON array of point ids
            indexed_at REAL NOT NULL,         -- unix time of the hash
            PRIMARY KEY (collection, path)
        );
        CREATE TABLE collection_meta (
            collection TEXT NOT NULL,
            key        TEXT NOT NULL,
            value      TEXT NOT NULL,
            PRIMARY KEY (collection, key)
        ) WITHOUT ROWID
        """,
    )
    conn.execute(
        "INSERT INTO files_by_collection SELECT ?, path, size, mtime_ns, hash, status, "
        "language, chunk_ids, indexed_at FROM files",
        (ctx.collection or "",),
    )
    conn.execute(
        "INSERT INTO collection_meta SELECT ?, key, value FROM meta "
        f"WHERE key IN ({','.join('?' * len(_COLLECTION_KEYS))})",
        (ctx.collection or "", *_COLLECTION_KEYS),
    )
    conn.execute(
        f"DELETE FROM meta WHERE key IN ({','.join('?' * len(_COLLECTION_KEYS))})",
        _COLLECTION_KEYS,
    )
    _run(conn, "DROP TABLE files; ALTER TABLE files_by_collection RENAME TO files")


def m004_aliases(conn: sqlite3.Connection, _ctx: MigrationContext) -> None:
    """Collection aliases: an old name that keeps reaching data moved to a new one."""
    _run(
        conn,
        """
        CREATE TABLE aliases (
            name         TEXT PRIMARY KEY,
            target       TEXT NOT NULL,     -- a collection, never another alias
            created_by   TEXT NOT NULL,     -- who made it: a command, or "user"
            reason       TEXT NOT NULL,
            created_at   REAL NOT NULL,     -- unix time
            last_used_at REAL               -- when a read or write last went through it
        )
        """,
    )


def m005_migrations(conn: sqlite3.Connection, _ctx: MigrationContext) -> None:
    """Record the index's own migrations (moves between stores, config upgrades).

    One row per migration, updated as it advances, so that one stopped at any
    point (a crash, a SIGKILL) is resumed or rolled back by the next command,
    and `cidx migrations history` can tell what happened.
    """
    _run(
        conn,
        """
        CREATE TABLE migrations (
            id                TEXT PRIMARY KEY,
            kind              TEXT NOT NULL,  -- relocate | config
            status            TEXT NOT NULL,  -- see cidx.migration
            started_at        REAL NOT NULL,
            ended_at          REAL,
            source_mode       TEXT,
            source_collection TEXT,
            target_mode       TEXT,
            target_collection TEXT,
            backup            TEXT,           -- the data kept to return to until verified
            next_offset       TEXT,           -- the point id an interrupted copy resumes at
            copied            INTEGER NOT NULL DEFAULT 0,
            total             INTEGER,
            detail            TEXT
        )
        """,
    )


def m006_collection_migrations(conn: sqlite3.Connection, _ctx: MigrationContext) -> None:
    """Zero-downtime migrations of one collection to another (`cidx.dualwrite`).

    One row per migration, advanced phase by phase; the outbox lists points
    whose copy on the other side may lag (written before both writes, removed
    once both succeeded), tombstones the points deleted while the backfill
    runs, so that a crash at any point resumes to the same end state.
    """
    _run(
        conn,
        """
        CREATE TABLE collection_migrations (
            id             TEXT PRIMARY KEY,
            source         TEXT NOT NULL,
            target         TEXT NOT NULL,
            phase          TEXT NOT NULL,     -- see cidx.dualwrite
            source_model   TEXT NOT NULL,     -- the model id of each side's vectors
            target_model   TEXT NOT NULL,
            target_dim     INTEGER NOT NULL,
            batch          INTEGER NOT NULL,  -- points per backfill batch
            retain_seconds REAL NOT NULL,     -- how long SOURCE is kept after cutover
            started_by     TEXT NOT NULL,     -- "user" or what started it
            cursor         TEXT,              -- the SOURCE id the backfill resumes at
            copied         INTEGER NOT NULL DEFAULT 0,
            total          INTEGER,
            started_at     REAL NOT NULL,
            cutover_at     REAL,
            ended_at       REAL,
            detail         TEXT               -- why it stopped (a validation report)
        );
        CREATE TABLE collection_migration_outbox (
            migration  TEXT NOT NULL,
            point_id   TEXT NOT NULL,
            attempts   INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            queued_at  REAL NOT NULL,
            PRIMARY KEY (migration, point_id)
        ) WITHOUT ROWID;
        CREATE TABLE collection_migration_tombstones (
            migration TEXT NOT NULL,
            point_id  TEXT NOT NULL,
            PRIMARY KEY (migration, point_id)
        ) WITHOUT ROWID
        """,
    )


def m007_migration_stores(conn: sqlite3.Connection, _ctx: MigrationContext) -> None:
    """The store each side of a collection migration lives in.

    NULL: the project's own store, as for every migration before; otherwise
    a place (`cidx.storage.place_key`) — a migration moving an index to
    another store (`cidx storage migrate`) has one on each side.
    """
    _run(
        conn,
        """
        ALTER TABLE collection_migrations ADD COLUMN source_store TEXT;
        ALTER TABLE collection_migrations ADD COLUMN target_store TEXT
        """,
    )


def m008_dense_pending(conn: sqlite3.Connection, _ctx: MigrationContext) -> None:
    _run(
        conn,
        """
        -- 1: the file's points are in the store with their BM25 vectors, and
        -- some still wait for their dense vectors (a staged sync wrote them;
        -- the dense pass fills them in and clears this).
        ALTER TABLE files ADD COLUMN dense_pending INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX files_dense_pending ON files (collection, dense_pending)
        """,
    )


Migration = Callable[[sqlite3.Connection, MigrationContext], None]


def _plain(step: Callable[[sqlite3.Connection], None]) -> Migration:
    """A migration written before migrations took a context."""
    return lambda conn, _ctx: step(conn)


MIGRATIONS: list[Migration] = [
    _plain(m001_create_tables),
    _plain(m002_embeddings_with_rowid),
    m003_manifest_by_collection,
    m004_aliases,
    m005_migrations,
    m006_collection_migrations,
    m007_migration_stores,
    m008_dense_pending,
]

# Migrations that rewrite a table leave its old pages free: the file is
# compacted (VACUUM) once they have run.
COMPACT_AFTER = frozenset({2, 3})
