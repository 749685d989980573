"""What `cidx collections migrate` and `cidx collections migration ...` do in the owner.

The owner's handlers call these with the index's `Migrator`; they return the
typed report the CLI renders (as text or `--json`), whichever process ran them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cidx.config import Config
from cidx.dualwrite._migrator import Migrator
from cidx.dualwrite._storage import target_name
from cidx.errors import UsageError
from cidx.messages import (
    MigrateRequest,
    MigrationReport,
    MigrationRequest,
    MigrationView,
    Progress,
)
from cidx.state.moves import CollectionMigration
from cidx.storage import mode_named, place_key
from cidx.store.server_settings import ServerSettings

__all__ = ["STORAGE_MOVE", "finish_config_change", "migrate", "migration_action"]

# `started_by` of a migration that moves the index to another store.
STORAGE_MOVE = "storage migrate"


def _told(progress: Callable[[Progress], None]) -> Callable[[CollectionMigration], None]:
    """A migration's progress, as a progress bar takes it."""

    def told(m: CollectionMigration) -> None:
        total = m.total or 0
        progress(Progress("migrate", m.copied, total, min(m.copied, total), total))

    return told


def finish_config_change(
    migrator: Migrator, progress: Callable[[Progress], None]
) -> MigrationView | None:
    """Copy, validate, cut over and clean up the migration a config change
    started (the owner's worker finishes it if this stops); it as it ends,
    or None when the change started none."""
    move = migrator.active()
    if move is None:
        return None
    migrator.run(on_progress=_told(progress))
    return migrator.view(migrator.table.get(move.id) or move)


def migrate(
    migrator: Migrator,
    config: Config,
    root: str,
    request: MigrateRequest,
    progress: Callable[[Progress], None],
) -> MigrationReport:
    """Start migrating, and copy and validate (the owner keeps dual writes going
    after this returns, and finishes the copy in the background if it stops).
    With `to_storage`, the project's collection migrates to a new one in that
    store (`cidx storage migrate`)."""
    source, target, store, started_by = request.source, request.target, None, "user"
    if request.to_storage is not None:
        source = config.collection
        target, store = _storage_target(migrator, config, Path(root), request)
        started_by = STORAGE_MOVE
    move = migrator.start(
        source,
        target,
        reembed=request.reembed,
        batch=request.batch,
        retain_seconds=request.retain_seconds,
        started_by=started_by,
        target_store=store,
    )
    migrator.start_worker()
    migrator.run(on_progress=_told(progress))
    view = migrator.view()
    phase = view.phase if view is not None else "done"
    return MigrationReport(
        root, f"Migrating {move.source} to {move.target}: {phase}.", view or migrator.view(move)
    )


def migration_action(migrator: Migrator, root: str, request: MigrationRequest) -> MigrationReport:
    if request.action == "cutover":
        move = migrator.cutover()
        done = f"Reads of {move.source} now go to {move.target}."
    elif request.action == "rollback":
        move = migrator.rollback()
        done = f"Rolled back: {move.source} alone receives reads and writes; {move.target} is gone."
    elif request.action == "cleanup":
        move = migrator.cleanup(force=request.force)
        done = f"{move.source} is dropped; its name now reaches {move.target}."
    else:
        latest = migrator.table.all()
        view = migrator.view(latest[-1]) if latest else None
        return MigrationReport(root, "", view)
    return MigrationReport(root, done, migrator.view(move))


def _storage_target(
    migrator: Migrator, config: Config, root: Path, request: MigrateRequest
) -> tuple[str, str]:
    """(TARGET's name, TARGET's place) for a move to `request.to_storage`."""
    storage = mode_named(request.to_storage, "--to")
    server = ServerSettings.model_validate_json(request.server) if request.server else None
    if (storage == "server") != (server is not None):
        raise UsageError("--to server goes with --qdrant-url URL, and only --to server does.")
    key = place_key(storage, server)
    sides, collections = migrator.parts.sides, migrator.parts.collections
    if sides is None:
        raise UsageError("This index cannot move to another store.")
    there = sides.store(key)

    def taken(name: str) -> bool:
        return (
            collections.alias(name) is not None
            or collections.store.collection_exists(name)
            or there.collection_exists(name)
            or collections.db.manifest(name).counts() != (0, 0)
        )

    return target_name(config, root, storage, taken), key
