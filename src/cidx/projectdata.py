"""Where a project's data is, in every store, and removing it without a trace.

A project's collections are the folders of its own store
(`.code-indexer/qdrant-data/`, each one or a damaged copy set aside) and, in
the global store, those the registry lists for its root — plus the one its
config names there, should the registry have lost it. `project_collections`
finds them all; `remove_collections` removes a list of them together with
their manifests, the copies set aside beside them and their registry
entries, so that nothing a project wrote is left orphaned. A collection in
the global store that another project still uses is never removed for this
one (`cidx.registry.belongs_to`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from cidx.config import Config
from cidx.fsutil import disk_usage
from cidx.project import ProjectPaths
from cidx.registry import Registry, belongs_to, registry_exists
from cidx.state import StateDB
from cidx.storage import StorageLocation, location_for, open_store

__all__ = ["Placed", "project_collections", "remove_collections"]


@dataclass(frozen=True)
class Placed:
    """A collection (or a copy of one set aside) in one store."""

    location: StorageLocation
    name: str

    @property
    def path(self) -> str:
        return str(self.location.collection_dir(self.name))


def _registry() -> Registry | None:
    """The global store's registry, if there is one (never created just to look)."""
    return Registry() if registry_exists() else None


def project_collections(paths: ProjectPaths, config: Config | None) -> list[Placed]:
    """Every collection the project at `paths` has, in both stores."""
    found: list[Placed] = []
    local = location_for(paths, "local")
    if local.folder.is_dir():
        found.extend(Placed(local, entry.name) for entry in sorted(local.folder.iterdir()))
    shared = location_for(paths, "global")
    names: set[str] = set()
    configured = (
        config.collection
        if config is not None
        and config.storage_mode == "global"
        and shared.holds(config.collection)
        else None
    )
    registry = _registry()
    if registry is not None:
        with registry:
            names.update(entry.name for entry in registry.of_project(paths.root))
            if configured is not None and belongs_to(registry, configured, paths.root):
                names.add(configured)
    elif configured is not None:
        names.add(configured)
    found.extend(Placed(shared, name) for name in sorted(names))
    return found


def remove_collections(paths: ProjectPaths, items: list[Placed], db: StateDB | None) -> int:
    """Remove `items` of the project at `paths` (their manifests in `db` first,
    then the data, then their registry entries); the bytes freed.

    The manifests go first: a crash in between leaves data nothing refers to
    (which the next removal, or `cidx doctor`, finds), never a manifest that
    lists points that are gone.
    """
    registry = _registry()
    try:
        if registry is not None:
            items = [
                item
                for item in items
                if item.location.mode == "local" or belongs_to(registry, item.name, paths.root)
            ]
        if db is not None:
            with db.transaction() as tx:
                for item in items:
                    db.manifest(item.name).clear(tx)
        freed = 0
        for item in items:
            folder = item.location.collection_dir(item.name)
            freed += disk_usage(folder)
            store = open_store(item.location)
            try:
                if store.collection_exists(item.name):
                    store.drop_collection(item.name)
                elif folder.is_dir() and not folder.is_symlink():
                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    folder.unlink(missing_ok=True)
                store.drop_set_aside(item.name)
            finally:
                store.close()
            if registry is not None and item.location.mode == "global":
                registry.forget(item.name)
        return freed
    finally:
        if registry is not None:
            registry.close()
