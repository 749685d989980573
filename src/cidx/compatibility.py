"""Whether this cidx can use what a backup archive holds.

The archive format itself is checked when its manifest is read
(`cidx.archive.parse_manifest`); this is the rest: its
storage mode and the schema versions of the config and state database it
carries. `cidx restore` refuses an archive that fails; `cidx backup verify`
reports it. The embedding model of its vectors is not a reason: an index of
another model migrates to the bundled one when it is next opened (a re-embed
migration from the points' stored text), so a backup outlives the model.
"""

from __future__ import annotations

from pathlib import Path

from cidx.archive import ArchiveManifest
from cidx.config import CONFIG_SCHEMA_VERSION
from cidx.errors import ArchiveError
from cidx.state.migrations import MIGRATIONS as STATE_MIGRATIONS

__all__ = ["check_compatible"]


def check_compatible(manifest: ArchiveManifest, archive: Path) -> None:
    """ArchiveError, saying what to do, unless this cidx can use what `archive` holds.

    The archive format itself is checked when the manifest is read
    (`cidx.archive.parse_manifest`); here: its storage mode (a project's
    own store, the global store, or a Qdrant server's, whose collections
    come as points and restore in local mode) and the schema versions of
    what it holds.
    """
    if manifest.storage_mode not in ("local", "global", "server"):
        raise ArchiveError(
            f"The backup {archive} holds a project in {manifest.storage_mode} storage mode, "
            "which this cidx cannot restore. Restore it with a cidx that has that mode, or "
            "run `cidx index` in the project to build its index afresh."
        )
    newer = []
    if manifest.config_schema > CONFIG_SCHEMA_VERSION:
        newer.append(f"config schema {manifest.config_schema} (this cidx: {CONFIG_SCHEMA_VERSION})")
    if manifest.state_schema > len(STATE_MIGRATIONS):
        newer.append(f"state schema {manifest.state_schema} (this cidx: {len(STATE_MIGRATIONS)})")
    if newer:
        raise ArchiveError(
            f"The backup {archive} was written by cidx {manifest.cidx_version}, which is newer "
            f"than this one: {', '.join(newer)}. Upgrade cidx to restore it."
        )
