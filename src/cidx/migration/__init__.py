"""Migrations of a project's index: run before any command touches it, recorded, recoverable.

What migrates: the config's schema (`cidx.config.MIGRATIONS`), the state
DB's schema (`cidx.state.migrations`, when it opens), and a project's
collection between the project's own store and the global store when its
config names the other mode (`cidx init --storage`, or an index from a
layout that kept it elsewhere). `run_pending` runs them; a move is recorded
step by step in the state DB (and mirrored in the global store's registry),
so one stopped at any point is finished or rolled back by the next command;
`cidx migrations status|history|reset` inspect and recover.
"""

from cidx.migration._move import MigrationFn, MigrationProgress, Place
from cidx.migration._records import MigrationRecord
from cidx.migration._runner import (
    MigrationHistory,
    MigrationStatus,
    ResetReport,
    migration_history,
    migration_status,
    misplaced,
    reset_migrations,
    run_pending,
)

__all__ = [
    "MigrationFn",
    "MigrationHistory",
    "MigrationProgress",
    "MigrationRecord",
    "MigrationStatus",
    "Place",
    "ResetReport",
    "migration_history",
    "migration_status",
    "misplaced",
    "reset_migrations",
    "run_pending",
]
