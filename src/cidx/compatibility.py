"""Whether this cidx can use what a backup archive holds.

The archive format itself is checked when its manifest is read
(`cidx.archive.parse_manifest`); this is the rest: its
storage mode, the schema versions of the config and state database it
carries, and the embedding model of its vectors. `cidx restore` refuses an
archive that fails; `cidx backup verify` reports it.
"""

from __future__ import annotations

from pathlib import Path

from cidx.archive import ArchiveManifest
from cidx.config import CONFIG_SCHEMA_VERSION
from cidx.embedding import EMBEDDING_DIM, MODEL_NAME
from cidx.errors import ArchiveError
from cidx.state.migrations import MIGRATIONS as STATE_MIGRATIONS

__all__ = ["check_compatible"]


def check_compatible(manifest: ArchiveManifest, archive: Path) -> None:
    """ArchiveError, saying what to do, unless this cidx can use what `archive` holds.

    The archive format itself is checked when the manifest is read
    (`cidx.archive.parse_manifest`); here: its storage mode (a project's
    own store, the global store, or a Qdrant server's, whose collections
    come as points and restore in local mode), the schema versions of
    what it holds, and the embedding model — vectors of another model cannot
    answer this cidx's queries.
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
    if not manifest.model_id.startswith(f"{MODEL_NAME}@") or manifest.dim != EMBEDDING_DIM:
        raise ArchiveError(
            f"The backup {archive} holds vectors of the embedding model {manifest.model_id} "
            f"({manifest.dim} dimensions), but this cidx embeds with {MODEL_NAME} "
            f"({EMBEDDING_DIM} dimensions): its index could not answer queries here. Nothing "
            "was restored. Run `cidx index` in the project to build its index with this cidx, "
            "or restore the backup with the cidx version that wrote it."
        )
