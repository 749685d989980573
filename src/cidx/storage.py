"""Where a project's collections live, resolved from its config.

`storage_location` is the one place that turns a config into a place:

    local    the project's own `.code-indexer/qdrant-data/` (the default):
             the index travels with the project
    global   one embedded store shared by every project in this mode, in the
             user's data folder (`cidx.userdirs.data_dir()/qdrant-data`), one
             collection per project

The store, `cidx status` and disk usage read the location; nothing else
derives a storage path from the project root.

A collection's name depends on the mode too (`cidx.config.collection_name_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cidx.config import StorageMode
from cidx.fsutil import disk_usage
from cidx.userdirs import data_dir

if TYPE_CHECKING:
    from cidx.config import Config
    from cidx.project import ProjectPaths
    from cidx.store import VectorStore

__all__ = [
    "STORAGE_MODES",
    "StorageLocation",
    "StorageMode",
    "global_store_dir",
    "location_for",
    "open_store",
    "storage_location",
]

STORAGE_MODES: tuple[StorageMode, ...] = ("local", "global")
STORE_DIR_NAME = "qdrant-data"


@dataclass(frozen=True)
class StorageLocation:
    """Where one project's collections are."""

    mode: StorageMode
    data_dir: Path  # the folder holding one shard folder per collection

    def collection_dir(self, collection: str) -> Path:
        return self.data_dir / collection

    def usage(self, collections: list[str]) -> int:
        """Bytes `collections` take on disk."""
        return sum(disk_usage(self.collection_dir(name)) for name in collections)

    def holds(self, collection: str) -> bool:
        """Whether `collection` is here (one `stat`, no shard opened). A store
        this user cannot look into holds nothing of theirs."""
        from cidx.store.edge import shard_exists

        try:
            return shard_exists(self.collection_dir(collection))
        except OSError:
            return False


def global_store_dir() -> Path:
    """The shared store of every project in global mode."""
    return data_dir() / STORE_DIR_NAME


def location_for(paths: ProjectPaths, mode: StorageMode) -> StorageLocation:
    """Where the project at `paths` keeps its collections in `mode`."""
    if mode == "global":
        return StorageLocation("global", global_store_dir())
    return StorageLocation("local", paths.index_dir / STORE_DIR_NAME)


def storage_location(paths: ProjectPaths, config: Config) -> StorageLocation:
    """The location `config.storage_mode` names for the project at `paths`."""
    return location_for(paths, config.storage_mode)


def open_store(location: StorageLocation) -> VectorStore:
    """The store at `location` (the embedded engine, for every mode so far)."""
    from cidx.store.edge import EdgeStore

    return EdgeStore(location.data_dir)
