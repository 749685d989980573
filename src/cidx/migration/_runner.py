"""Running what is pending before an index opens, and inspecting or resetting it.

`run_pending` is called by every command that opens a project's index,
under its owner lock, before anything else touches it:

1. the config is brought to this cidx's schema (and the upgrade recorded);
2. a move stopped part-way (its marker file exists) is finished or rolled
   back, from its recorded status;
3. data found in the other store than the one the config names — a project
   switched to `local` whose collection is still in the global store, or
   the reverse — is moved where the config says.

When nothing is pending this costs reading the config and two `stat`s
(benchmarks/RESULTS.md, "Migration check"). The state DB's own schema is
brought forward when it opens, as before.

`migration_status`, `migration_history` and `reset_migrations` are the
`cidx migrations` commands' core.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cidx import service
from cidx.config import (
    CONFIG_SCHEMA_VERSION,
    Config,
    collection_name_for,
    load_config,
    read_config,
    save_config,
)
from cidx.errors import NoIndexError
from cidx.migration._move import MigrationFn, Move, Place, describe, start_move
from cidx.migration._records import (
    MigrationLog,
    MigrationRecord,
    clear_marker,
    has_marker,
    read_records,
)
from cidx.project import ProjectPaths, project_paths
from cidx.registry import Registry, belongs_to
from cidx.state import StateDB
from cidx.state.migrations import MIGRATIONS as STATE_MIGRATIONS
from cidx.storage import StorageMode, location_for, storage_location

__all__ = [
    "MigrationHistory",
    "MigrationStatus",
    "ResetReport",
    "migration_history",
    "migration_status",
    "misplaced",
    "reset_migrations",
    "run_pending",
]


def run_pending(paths: ProjectPaths, notify: MigrationFn | None = None) -> Config:
    """Run every pending migration of the project's index; the config to open it
    with. The caller holds the owner lock."""
    config, upgraded_from = read_config(paths)
    if (
        upgraded_from is None
        and not has_marker(paths)
        # A server's collections stay where they are (no move to or from one).
        and (
            config.storage_mode == "server"
            or storage_location(paths, config).holds(config.collection)
        )
    ):
        return config
    db = StateDB(paths.state_db, collection=config.collection)
    try:
        log = MigrationLog(db)
        if upgraded_from is not None:
            now = time.time()
            log.add(
                MigrationRecord(
                    id=uuid.uuid4().hex[:12],
                    kind="config",
                    status="done",
                    started_at=now,
                    ended_at=now,
                    detail=f"config schema {upgraded_from} → {CONFIG_SCHEMA_VERSION}",
                )
            )
        for record in log.unfinished():
            _resume(paths, db, record, notify)
        clear_marker(paths)  # a marker left without a record: nothing was started
        config = load_config(paths)
        plan = misplaced(paths, config)
        if plan is not None:
            Move(paths, db, start_move(paths, db, *plan), notify).run()
            config = load_config(paths)
    finally:
        db.close()
    return config


def _resume(
    paths: ProjectPaths, db: StateDB, record: MigrationRecord, notify: MigrationFn | None
) -> None:
    if record.kind == "relocate":
        Move(paths, db, record, notify).run()
    else:
        MigrationLog(db).update(record, status="done")


def _other(mode: StorageMode) -> StorageMode:
    return "global" if mode == "local" else "local"


def misplaced(paths: ProjectPaths, config: Config) -> tuple[Place, Place] | None:
    """(where the project's data is, where the config says it belongs) when the
    two differ, else None.

    The data may be under the config's collection name or under the name the
    other mode gives it. In the global store only a collection that is this
    project's counts: one that another project still uses is that project's
    (this one would then be a copy of it), never taken away from it.
    """
    if config.storage_mode == "server":
        return None
    here = storage_location(paths, config)
    if here.holds(config.collection):
        return None
    mode = config.storage_mode
    other = _other(mode)
    there = location_for(paths, other)
    pid, model = config.identity.id, config.embedding.model_id
    scheme = config.naming_scheme
    target = Place(mode, collection_name_for(mode, pid, model, paths.root, scheme))
    for name in dict.fromkeys(
        (config.collection, collection_name_for(other, pid, model, paths.root, scheme))
    ):
        if there.holds(name) and (other == "local" or _ours(name, paths.root)):
            return Place(other, name), target
    return None


def _ours(name: str, root: Path) -> bool:
    with Registry() as registry:
        return belongs_to(registry, name, root)


# -- cidx migrations ----------------------------------------------------------


@dataclass(frozen=True)
class MigrationStatus:
    """What is pending or unfinished for a project's index, without running it."""

    root: str
    storage_mode: str
    storage_path: str
    # Migrations stopped part-way: the next command finishes or rolls back each.
    unfinished: list[MigrationRecord] = field(default_factory=list)
    # What the next command that opens the index will do, one sentence each.
    pending: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MigrationHistory:
    root: str
    migrations: list[MigrationRecord]


@dataclass(frozen=True)
class ResetReport:
    root: str
    actions: list[str]
    storage_mode: str
    storage_path: str


def _paths(start: Path | None) -> ProjectPaths:
    paths = project_paths(start)
    if not paths.exists():
        raise NoIndexError(
            f"There is no cidx index for {paths.root}, so it has no migrations. Run "
            "`cidx index` there to create one."
        )
    return paths


def migration_status(start: Path | None = None) -> MigrationStatus:
    """The migrations pending for the project at `start` (read only: no lock taken)."""
    paths = _paths(start)
    config, old_version = read_config(paths, write_back=False)
    pending: list[str] = []
    if old_version is not None:
        pending.append(
            f"Upgrade {paths.config_file} from schema {old_version} to {CONFIG_SCHEMA_VERSION}."
        )
    state_version = _state_version(paths.state_db)
    if state_version is not None and state_version < len(STATE_MIGRATIONS):
        pending.append(
            f"Upgrade {paths.state_db} from schema {state_version} to {len(STATE_MIGRATIONS)}."
        )
    records = read_records(paths.state_db) or []
    unfinished = [r for r in records if not r.finished]
    plan = misplaced(paths, config) if not unfinished else None
    if plan is not None:
        source, target = plan
        pending.append(
            f"Move the index from {describe(location_for(paths, source.mode))} to "
            f"{describe(location_for(paths, target.mode))}, where its config says it belongs."
        )
    location = storage_location(paths, config)
    return MigrationStatus(
        str(paths.root),
        config.storage_mode,
        str(location.collection_dir(config.collection)),
        unfinished,
        pending,
    )


def _state_version(path: Path) -> int | None:
    if not path.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error:
        return None


def migration_history(start: Path | None = None) -> MigrationHistory:
    """Every migration recorded for the project at `start`, oldest first."""
    paths = _paths(start)
    return MigrationHistory(str(paths.root), read_records(paths.state_db) or [])


def reset_migrations(
    start: Path | None = None, *, wait: service.WaitPolicy = service.WAIT_FOREVER
) -> ResetReport:
    """Stop migrating: roll back every unfinished move that can be (one already
    committed is finished instead), and make the config name the data where it
    is, so no command moves it again."""
    paths = _paths(start)
    with service.holding_lock(paths, "migrations", wait):
        return _reset(paths, wait.on_migration)


def _reset(paths: ProjectPaths, notify: MigrationFn | None) -> ResetReport:
    actions: list[str] = []
    config = load_config(paths)
    db = StateDB(paths.state_db, collection=config.collection)
    try:
        for record in MigrationLog(db).unfinished():
            if record.kind != "relocate":
                MigrationLog(db).update(record, status="done")
                continue
            move = Move(paths, db, record, notify)
            if record.status == "committed":
                move.finish()
                actions.append(
                    f"Finished moving the index to {describe(move.target)} (migration "
                    f"{record.id} had already switched to it)."
                )
            else:
                move.roll_back()
                actions.append(
                    f"Rolled back moving the index to {describe(move.target)} (migration "
                    f"{record.id}): it stays in {describe(move.source)}."
                )
        clear_marker(paths)
        config = load_config(paths)
        plan = misplaced(paths, config)
        if plan is not None:
            source, _target = plan
            save_config(
                paths,
                config.model_copy(
                    update={"storage_mode": source.mode, "collection": source.collection}
                ),
            )
            actions.append(
                f"The index stays in {describe(location_for(paths, source.mode))}: the config "
                f"now says storage mode {source.mode}. `cidx init --storage "
                f"{config.storage_mode}` moves it when you want."
            )
            config = load_config(paths)
    finally:
        db.close()
    location = storage_location(paths, config)
    return ResetReport(
        str(paths.root),
        actions,
        config.storage_mode,
        str(location.collection_dir(config.collection)),
    )
