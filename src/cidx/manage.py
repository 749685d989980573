"""Collection management in both storage modes: list, inspect, clear, uninstall.

The core of `cidx collections list|info`, `cidx clear-data [--all]` and
`cidx uninstall`. A project's own collection is reported through its index
handle (an owner that runs answers for it); other projects' collections in
the global store are described from the registry, their folders and their
manifests, never by opening their shards, which may be open in their own
owner processes. Everything that removes data holds the owning project's
lock while it does, removes manifests before data, and closes any migration
left unfinished, so that nothing it touched is left half-removed or
orphaned (`cidx.projectdata`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cidx import service
from cidx.config import Config, load_config
from cidx.errors import CidxError, ConfigError, NoIndexError, UsageError
from cidx.fsutil import disk_usage
from cidx.migration._records import MigrationLog, clear_marker
from cidx.project import ProjectPaths, project_paths
from cidx.projectdata import Placed, project_collections, remove_collections
from cidx.registry import Registry, RegistryEntry, registry_exists, uses_collection
from cidx.state import StateDB
from cidx.storage import StorageLocation, location_for, open_store, storage_location
from cidx.store.base import DROPPED, SET_ASIDE
from cidx.treecopy import remove_tree

__all__ = [
    "ClearReport",
    "CollectionRow",
    "CollectionsReport",
    "ConfirmFn",
    "RemovalPlan",
    "RemovedCollection",
    "UninstallReport",
    "clear_data",
    "collection_info",
    "list_collections",
    "uninstall",
]

# "other": on a Qdrant server, a collection that is not this project's
# (cidx keeps no registry of a server's collections: another project's, most likely).
State = Literal["in use", "incoming", "unused", "orphaned", "set aside", "other"]


@dataclass(frozen=True)
class CollectionRow:
    """One collection of a store, and whose it is."""

    name: str
    mode: str  # the store it is in: local | global
    path: str
    disk_bytes: int
    # None where counting would mean opening a shard another process may hold.
    points: int | None
    project_root: str | None  # whose it is (in the global store, from the registry)
    state: State
    current: bool = False  # the collection of the project the command ran in
    model: str | None = None
    created_at: float | None = None
    last_used_at: float | None = None
    files: int | None = None  # indexed files, from the owning project's manifest


@dataclass(frozen=True)
class CollectionsReport:
    root: str | None  # the project asked from (None: outside any project)
    storage_mode: str | None
    store_dir: str  # the store listed
    collections: list[CollectionRow]


@dataclass(frozen=True)
class RemovedCollection:
    name: str
    mode: str
    path: str
    project_root: str | None
    disk_bytes: int


@dataclass(frozen=True)
class RemovalPlan:
    """What a removal is about to delete, for the person to confirm."""

    action: Literal["uninstall", "clear-all"]
    collections: list[RemovedCollection]
    index_dir: str | None = None  # uninstall: the project's index folder
    index_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.index_bytes + sum(c.disk_bytes for c in self.collections)


ConfirmFn = Callable[[RemovalPlan], bool]


@dataclass(frozen=True)
class ClearReport:
    scope: Literal["project", "all"]
    root: str | None
    removed: list[RemovedCollection]
    freed_bytes: int
    # Migrations left unfinished that clearing closed (their data is gone).
    closed_migrations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UninstallReport:
    root: str
    index_dir: str
    removed: list[RemovedCollection]
    freed_bytes: int


# -- listing -------------------------------------------------------------------


def list_collections(
    start: Path | None = None,
    *,
    global_store: bool = False,
    wait: service.WaitPolicy = service.WAIT_FOREVER,
) -> CollectionsReport:
    """The collections of the project's store: its own folder in local mode; the
    whole global store (every project's) in global mode, with `global_store`,
    or outside any project."""
    paths = project_paths(start)
    config = _config_or_none(paths)
    own = _own_row(paths, config, wait) if config is not None else None
    if config is not None and config.storage_mode == "local" and not global_store:
        local = location_for(paths, "local")
        rows = [_local_row(entry) for entry in _entries(local.folder)]
        rows = [own if own is not None and r.name == own.name else r for r in rows]
        if own is not None and own.name not in {r.name for r in rows}:
            rows.insert(0, own)
        return CollectionsReport(str(paths.root), "local", str(local.data_dir), rows)
    if config is not None and config.storage_mode == "server" and not global_store:
        return _server_report(paths, config, own)
    shared = location_for(paths, "global")
    rows = _global_rows(shared.folder, own)
    return CollectionsReport(
        str(paths.root) if config is not None else None,
        config.storage_mode if config is not None else None,
        str(shared.data_dir),
        rows,
    )


def _server_report(
    paths: ProjectPaths, config: Config, own: CollectionRow | None
) -> CollectionsReport:
    """The collections of the project's Qdrant server: its own, and the others there."""
    location = storage_location(paths, config)
    assert location.server is not None
    names: list[str] = []
    with contextlib.suppress(CidxError):
        # A `local:` folder (the testing aid) opens in one process only: while
        # an owner holds it, only the project's own collection is listed.
        store = open_store(location)
        try:
            names = store.list_collections()
        finally:
            store.close()
    rows = [own] if own is not None else []
    rows += [
        CollectionRow(
            name=name,
            mode="server",
            path=location.where(name),
            disk_bytes=0,
            points=None,
            project_root=None,
            state="other",
        )
        for name in names
        if own is None or name != own.name
    ]
    return CollectionsReport(str(paths.root), "server", location.server.url, rows)


def collection_info(
    start: Path | None = None,
    name: str | None = None,
    *,
    wait: service.WaitPolicy = service.WAIT_FOREVER,
) -> CollectionRow:
    """One collection in detail: the project's own, or `name` in its store or
    the global store."""
    paths = project_paths(start)
    config = _config_or_none(paths)
    if name is None:
        if config is None:
            raise NoIndexError(
                f"There is no cidx index for {paths.root}. Give a collection's name (`cidx "
                "collections list --global` lists the global store), or run `cidx index` to "
                "create one."
            )
        return _own_row(paths, config, wait)
    report = list_collections(start, wait=wait)
    rows = list(report.collections)
    if report.storage_mode == "local":
        rows += list_collections(start, global_store=True, wait=wait).collections
    for row in rows:
        if row.name == name:
            return row
    raise UsageError(
        f"There is no collection {name!r} in {report.store_dir}. Run `cidx collections list` "
        "to see the collections there."
    )


def _config_or_none(paths: ProjectPaths) -> Config | None:
    if not paths.exists():
        return None
    return load_config(paths)


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _own_row(paths: ProjectPaths, config: Config, wait: service.WaitPolicy) -> CollectionRow:
    report = service.with_index(
        lambda handle: handle.status(), paths.root, kind="status", wait=wait
    )
    location = storage_location(paths, config)
    entry = _registry_entry(report.collection) if location.mode == "global" else None
    return CollectionRow(
        name=report.collection,
        mode=report.storage_mode,
        path=report.storage_path,
        disk_bytes=location.usage([report.collection]),
        points=report.points,
        project_root=report.root,
        state="in use",
        current=True,
        model=report.model,
        created_at=entry.created_at if entry is not None else None,
        last_used_at=entry.last_used_at if entry is not None else None,
        files=report.files,
    )


def _local_row(entry: Path) -> CollectionRow:
    state: State = "set aside" if (SET_ASIDE in entry.name or DROPPED in entry.name) else "unused"
    return CollectionRow(
        name=entry.name,
        mode="local",
        path=str(entry),
        disk_bytes=disk_usage(entry),
        points=None,
        project_root=None,
        state=state,
    )


def _registry_entry(name: str) -> RegistryEntry | None:
    if not registry_exists():
        return None
    with Registry() as registry:
        return registry.entry(name)


def _global_rows(store_dir: Path, own: CollectionRow | None) -> list[CollectionRow]:
    entries: dict[str, RegistryEntry] = {}
    if registry_exists():
        with Registry() as registry:
            entries = {entry.name: entry for entry in registry.entries()}
    rows: list[CollectionRow] = []
    for folder in _entries(store_dir):
        name = folder.name
        if own is not None and own.mode == "global" and name == own.name:
            rows.append(own)
            continue
        entry = entries.get(name)
        aside = SET_ASIDE in name or DROPPED in name
        state: State
        points: int | None = None
        files: int | None = None
        if aside:
            state = "set aside"
        elif entry is None:
            state = "orphaned"
        elif entry.state == "incoming":
            state = "incoming"
        elif uses_collection(Path(entry.project_root), name):
            state = "in use"
            files, points = _manifest_counts(Path(entry.project_root), name)
        else:
            state = "orphaned"
        rows.append(
            CollectionRow(
                name=name,
                mode="global",
                path=str(folder),
                disk_bytes=disk_usage(folder),
                points=points,
                project_root=entry.project_root if entry is not None else None,
                state=state,
                model=entry.model if entry is not None else None,
                created_at=entry.created_at if entry is not None else None,
                last_used_at=entry.last_used_at if entry is not None else None,
                files=files,
            )
        )
    return rows


def _manifest_counts(root: Path, name: str) -> tuple[int | None, int | None]:
    """(files, points) of `name` by its project's manifest, read without writing
    to it; (None, None) when it cannot be read."""
    db = ProjectPaths(root).state_db
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            files, chunks = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(json_array_length(chunk_ids)), 0) FROM files "
                "WHERE collection = ? AND status = 'indexed'",
                (name,),
            ).fetchone()
    except sqlite3.Error:
        return None, None
    return int(files), int(chunks)


# -- clearing ------------------------------------------------------------------


def clear_data(
    start: Path | None = None,
    *,
    everything: bool = False,
    confirm: ConfirmFn | None = None,
    wait: service.WaitPolicy = service.WAIT_FOREVER,
) -> ClearReport:
    """Remove the project's index data (its collections in both stores and their
    manifests; the config and the embedding cache stay, so the next index
    embeds nothing again), or with `everything`, every collection in the global
    store, each under its project's lock. `confirm` is asked first for
    `everything` (None: do not ask)."""
    if everything:
        return _clear_global(start, confirm, wait)
    paths = project_paths(start)
    if not paths.index_dir.is_dir():
        raise NoIndexError(
            f"There is no cidx index for {paths.root}, so there is no data to clear. "
            "(`cidx clear-data --all` clears the global store of every project.)"
        )
    with service.holding_lock(paths, "clear-data", wait):
        config = _config_leniently(paths)
        items = project_collections(paths, config)
        removed = [_removed(item, str(paths.root)) for item in items]
        db = StateDB(paths.state_db, collection=config.collection if config else None)
        try:
            closed = _close_migrations(paths, db, "the data was removed by `cidx clear-data`")
            freed = remove_collections(paths, items, db)
        finally:
            db.close()
    return ClearReport("project", str(paths.root), removed, freed, closed)


def _config_leniently(paths: ProjectPaths) -> Config | None:
    try:
        return load_config(paths)
    except ConfigError:
        return None


def _removed(item: Placed, root: str | None) -> RemovedCollection:
    return RemovedCollection(
        item.name,
        item.location.mode,
        item.path,
        root,
        disk_usage(item.location.collection_dir(item.name)),
    )


def _close_migrations(paths: ProjectPaths, db: StateDB, why: str) -> list[str]:
    """Mark the project's unfinished migrations rolled back: the data they were
    moving is being removed."""
    log = MigrationLog(db)
    closed = []
    for record in log.unfinished():
        log.update(record, status="rolled_back", detail=why)
        closed.append(record.id)
    clear_marker(paths)
    return closed


def _clear_global(
    start: Path | None, confirm: ConfirmFn | None, wait: service.WaitPolicy
) -> ClearReport:
    shared = location_for(project_paths(start), "global")
    entries: dict[str, RegistryEntry] = {}
    if registry_exists():
        with Registry() as registry:
            entries = {entry.name: entry for entry in registry.entries()}
    folders = {folder.name: folder for folder in _entries(shared.folder)}
    names = sorted(set(folders) | set(entries))
    plan = RemovalPlan(
        "clear-all",
        [
            RemovedCollection(
                name,
                "global",
                str(shared.collection_dir(name)),
                entries[name].project_root if name in entries else None,
                disk_usage(folders[name]) if name in folders else 0,
            )
            for name in names
        ],
    )
    if not plan.collections:
        return ClearReport("all", None, [], 0)
    if confirm is not None and not confirm(plan):
        raise _declined()
    freed = 0
    closed: list[str] = []
    for item in plan.collections:
        root = Path(item.project_root) if item.project_root else None
        if root is not None and uses_collection(root, item.name):
            owner = ProjectPaths(root)
            with service.holding_lock(owner, "clear-data", wait):
                db = StateDB(owner.state_db)
                try:
                    closed += _close_migrations(owner, db, "cleared by `cidx clear-data --all`")
                    freed += remove_collections(owner, [Placed(shared, item.name)], db)
                finally:
                    db.close()
        else:
            freed += _remove_unowned(shared.folder, item.name)
    return ClearReport("all", None, plan.collections, freed, closed)


def _remove_unowned(store_dir: Path, name: str) -> int:
    """Remove a folder of the global store no living project uses, and its entry."""
    location = StorageLocation("global", store_dir)
    folder = store_dir / name
    freed = disk_usage(folder)
    store = open_store(location)
    try:
        if store.collection_exists(name):
            store.drop_collection(name)
        elif folder.is_dir() and not folder.is_symlink():
            remove_tree(folder)
        else:
            folder.unlink(missing_ok=True)
    finally:
        store.close()
    if registry_exists():
        with Registry() as registry:
            registry.forget(name)
    return freed


def _declined() -> CidxError:
    return UsageError("Nothing was removed: the removal was not confirmed.")


# -- uninstall -------------------------------------------------------------------


def uninstall(
    start: Path | None = None,
    *,
    confirm: ConfirmFn | None = None,
    wait: service.WaitPolicy = service.WAIT_FOREVER,
) -> UninstallReport:
    """Remove the project's index: `.code-indexer/` and, in the global store, its
    collections and their registry entries. `confirm` is asked first."""
    paths = project_paths(start)
    if not paths.index_dir.is_dir():
        raise NoIndexError(
            f"There is no cidx index for {paths.root}, so there is nothing to uninstall."
        )
    config = _config_leniently(paths)
    items = project_collections(paths, config)
    shared = [item for item in items if item.location.mode == "global"]
    plan = RemovalPlan(
        "uninstall",
        [_removed(item, str(paths.root)) for item in shared],
        str(paths.index_dir),
        disk_usage(paths.index_dir),
    )
    if confirm is not None and not confirm(plan):
        raise _declined()
    with service.holding_lock(paths, "uninstall", wait):
        # Again under the lock: a migration may have moved data meanwhile.
        items = project_collections(paths, _config_leniently(paths))
        freed = remove_collections(paths, [i for i in items if i.location.mode == "global"], None)
        freed += disk_usage(paths.index_dir)
        remove_tree(paths.index_dir)
        if registry_exists():
            with Registry() as registry:
                registry.forget_project(paths.root)
    return UninstallReport(str(paths.root), str(paths.index_dir), plan.collections, freed)
