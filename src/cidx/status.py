"""What an open index says about itself: its consistency checks, its disk use
and the report `cidx status` shows.

The engine (`cidx.engine`) owns the index and calls these with its parts;
they only read. `store_problems` is cheap (milliseconds) and runs when an
index opens and after every sync; `status_report` also surveys the tree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cidx.config import Config
from cidx.errors import StoreDamagedError
from cidx.fsutil import disk_usage
from cidx.identity import project_identity
from cidx.indexer import META_LAST_AT, META_LAST_SECONDS, META_STORE_DAMAGED, Survey
from cidx.messages import MigrationView, PauseHold, StatusReport
from cidx.owner.lock import read_owner
from cidx.parts import IndexParts
from cidx.project import ProjectPaths

__all__ = ["disk_bytes", "status_report", "store_problems"]


def store_problems(parts: IndexParts) -> list[str]:
    """Cheap consistency checks (milliseconds): is the store readable, and
    does it hold as many points as the manifest lists chunks?"""
    collection = parts.collections.primary
    manifest = parts.db.manifest(collection)
    mark = manifest.get_mark(META_STORE_DAMAGED)
    if mark is not None:
        return [
            f"The index store is damaged ({mark}). Run `cidx index` to rebuild it, "
            "reusing cached embeddings."
        ]
    try:
        points = parts.store.count(collection)
    except StoreDamagedError as exc:
        return [exc.message]
    _, chunks = manifest.counts()
    if points != chunks:
        return [
            f"The index store holds {points:,} points but the manifest lists {chunks:,} "
            "chunks: it was changed or lost outside cidx. Run `cidx index` to repair it."
        ]
    return []


def disk_bytes(parts: IndexParts) -> int:
    """What this index takes on disk: its folder, and its collections where
    they live elsewhere (a shared store)."""
    used = disk_usage(parts.paths.index_dir)
    if parts.location.mode != "local":
        used += parts.location.usage([parts.collections.primary])
    return used


def _identity_now(paths: ProjectPaths, config: Config) -> str | None:
    """The id the git remote gives the project now, when it is not the one its
    collections are named after (a remote was added or changed)."""
    now = project_identity(paths.root, config.project_id)
    if now.source == "git-remote" and now.id != config.identity.id:
        return now.id
    return None


def status_report(
    parts: IndexParts,
    *,
    points: int,
    survey: Survey,
    problems: list[str],
    pauses: list[PauseHold],
    migration: MigrationView | None,
) -> StatusReport:
    """The report of `cidx status`, from the index's parts and what the engine
    knows of it: the store's `points`, the tree's `survey`, its `problems`,
    the `pauses` holding it and the `migration` under way."""
    paths, config, collection = parts.paths, parts.config, parts.collections.primary
    manifest = parts.db.manifest(collection)
    files, chunks = manifest.counts()
    last_at = manifest.get_mark(META_LAST_AT)
    last_seconds = manifest.get_mark(META_LAST_SECONDS)
    owner = read_owner(paths)
    return StatusReport(
        root=str(paths.root),
        index_dir=str(paths.index_dir),
        storage_mode=config.storage_mode,
        storage_path=parts.location.where(collection),
        collection=collection,
        model=config.embedding.model_id,
        files=files,
        chunks=chunks,
        points=points,
        disk_bytes=disk_bytes(parts),
        pending=survey.pending,
        last_index_at=(
            datetime.fromtimestamp(float(last_at), UTC).isoformat(timespec="seconds")
            if last_at
            else None
        ),
        last_index_seconds=float(last_seconds) if last_seconds else None,
        owner_pid=owner.pid if owner else None,
        owner_kind=owner.kind if owner else None,
        project_id=config.identity.id,
        project_id_now=_identity_now(paths, config),
        files_empty=survey.empty,
        files_skipped=survey.skipped,
        files_failed=survey.failed,
        problems=problems,
        pauses=pauses,
        migration=migration,
        chunks_pending=share.pending if (share := manifest.dense_share()) else 0,
    )
