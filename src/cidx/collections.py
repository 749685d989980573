"""A project's collections: naming, creating, dropping and setting them aside.

A project's index is one or more collections in its store. `Collections`
is the one place that creates a collection when it is missing, drops one,
or sets a damaged one aside; everything above asks it rather than the store.
`resolve` turns a name a user or a config gives into the collection that
holds the data (aliases resolve here).

The project's own collection is the one its config names. More exist for a
while during a migration (a new model's collection beside the old one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cidx.state import Manifest, StateDB
from cidx.store import CollectionInfo, VectorStore

__all__ = ["Collections"]


@dataclass
class Collections:
    """The collections of one open project index."""

    store: VectorStore
    db: StateDB
    dim: int  # the vector size of new collections
    primary_name: str  # the collection the project's config names

    @property
    def primary(self) -> str:
        """The collection the project's reads and writes go to."""
        return self.resolve(self.primary_name)

    def resolve(self, name: str) -> str:
        """The collection that holds the data `name` stands for."""
        return name

    def manifest(self, name: str) -> Manifest:
        return self.db.manifest(self.resolve(name))

    def exists(self, name: str) -> bool:
        return self.store.collection_exists(self.resolve(name))

    def ensure(self, name: str) -> bool:
        """Create `name` if it is missing; whether it was created now."""
        real = self.resolve(name)
        if self.store.collection_exists(real):
            return False
        self.store.create_collection(real, self.dim)
        return True

    def drop(self, name: str) -> None:
        """Remove `name`'s data, if any (its manifest is the caller's)."""
        real = self.resolve(name)
        if self.store.collection_exists(real):
            self.store.drop_collection(real)

    def recreate(self, name: str) -> None:
        """`name` empty: dropped if present, then created."""
        self.drop(name)
        self.ensure(name)

    def set_aside(self, name: str) -> Path | None:
        """Move a damaged `name` out of the way (kept until `drop_set_aside`)."""
        return self.store.set_aside(self.resolve(name))

    def drop_set_aside(self, name: str) -> list[Path]:
        return self.store.drop_set_aside(self.resolve(name))

    def names(self) -> list[str]:
        """Every collection in the store this project can see."""
        return self.store.list_collections()

    def info(self, name: str) -> CollectionInfo:
        return self.store.info(self.resolve(name))
