"""What `cidx collections migrate` and `cidx collections migration ...` do in the owner.

The owner's handlers call these with the index's `Migrator`; they return the
typed report the CLI renders (as text or `--json`), whichever process ran them.
"""

from __future__ import annotations

from collections.abc import Callable

from cidx.dualwrite._migrator import Migrator
from cidx.messages import MigrateRequest, MigrationReport, MigrationRequest, Progress
from cidx.state.moves import CollectionMigration

__all__ = ["migrate", "migration_action"]


def migrate(
    migrator: Migrator, root: str, request: MigrateRequest, progress: Callable[[Progress], None]
) -> MigrationReport:
    """Start migrating, and copy and validate (the owner keeps dual writes going
    after this returns, and finishes the copy in the background if it stops)."""
    move = migrator.start(
        request.source,
        request.target,
        reembed=request.reembed,
        batch=request.batch,
        retain_seconds=request.retain_seconds,
    )
    migrator.start_worker()

    def told(m: CollectionMigration) -> None:
        total = m.total or 0
        progress(Progress("migrate", m.copied, total, min(m.copied, total), total))

    migrator.run(on_progress=told)
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
