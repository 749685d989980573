"""Zero-downtime migration of a collection to another, with dual writes.

`cidx collections migrate SOURCE TARGET [--reembed MODEL]`, a change of
the embedding model and a change of the config's naming scheme run through
here. While a migration runs, every write
of points goes to both collections (`PointWriter`, the one write path),
SOURCE is backfilled into TARGET batch by batch, TARGET is validated, reads
switch to it atomically (cutover), and SOURCE is dropped after a retention
window (cleanup) — or everything returns to SOURCE (rollback). The state
machine lives in the state DB (`cidx.state.moves`), so a migration resumes
from wherever a crash stopped it; `Migrator` advances it in the owner.
`cidx storage migrate` is the same migration with TARGET in another store
(`SideStores` routes each side's name to its store; the project's config
follows the reads, `config_for_reads`).
"""

from cidx.dualwrite._aliases import names_after_cleanup
from cidx.dualwrite._commands import finish_config_change, migrate, migration_action
from cidx.dualwrite._config_change import (
    CollectionChange,
    config_after,
    follow_config,
    note_for_user,
    wanted_change,
)
from cidx.dualwrite._migrator import (
    DEFAULT_BATCH,
    DEFAULT_RETAIN,
    MODEL_CHANGE,
    NAMING_CHANGE,
    REEMBED_BATCH,
    MigrationParts,
    Migrator,
)
from cidx.dualwrite._steps import backfill_batch, drain, validate
from cidx.dualwrite._storage import config_for_reads, storage_move_request, target_name
from cidx.dualwrite._stores import SideStores
from cidx.dualwrite._writes import PointWriter, convert

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_RETAIN",
    "MODEL_CHANGE",
    "NAMING_CHANGE",
    "REEMBED_BATCH",
    "CollectionChange",
    "MigrationParts",
    "Migrator",
    "PointWriter",
    "SideStores",
    "backfill_batch",
    "config_after",
    "config_for_reads",
    "convert",
    "drain",
    "finish_config_change",
    "follow_config",
    "migrate",
    "migration_action",
    "names_after_cleanup",
    "note_for_user",
    "storage_move_request",
    "target_name",
    "validate",
    "wanted_change",
]
