"""The store each side of a collection migration lives in.

A migration within one store needs nothing here. One that moves an index
to another store (`cidx storage migrate`) records a place for each side
(`CollectionMigration.source_store`, `.target_store`, written by
`cidx.storage.place_key`); `SideStores` opens the other store once and
attaches each side's name to its store in the project's `RoutedStore`,
so the migrator, the one write path and the searcher keep addressing
collections by name. The place the project's store was opened from is
never opened twice: a shard opens in one process, once.
"""

from __future__ import annotations

from collections.abc import Callable

from cidx.state.moves import CollectionMigration
from cidx.store import VectorStore
from cidx.store.routed import RoutedStore

__all__ = ["SideStores"]


class SideStores:
    """Opens the stores of a migration's sides and routes their names there."""

    def __init__(
        self, routed: RoutedStore, default_key: str, opener: Callable[[str], VectorStore]
    ) -> None:
        self.routed = routed
        self.default_key = default_key
        self._opener = opener
        self._open: dict[str, VectorStore] = {}

    def store(self, key: str | None) -> VectorStore:
        """The store at the place `key` (None, or the place the project's store
        was opened from: that store), opened on first use."""
        if key is None or key == self.default_key:
            return self.routed.default
        if key not in self._open:
            self._open[key] = self._opener(key)
        return self._open[key]

    def place_of(self, name: str) -> str:
        """The place of the store the collection `name` is routed to."""
        store = self.routed.store_of(name)
        return next((k for k, s in self._open.items() if s is store), self.default_key)

    def follow(self, move: CollectionMigration | None) -> None:
        """Route `move`'s sides to their stores (nothing for one within a store)."""
        if move is None or not move.moves_store:
            return
        self.routed.attach(move.source, self.store(move.source_store))
        self.routed.attach(move.target, self.store(move.target_store))

    def close(self) -> None:
        """Close the stores opened here that no name was routed to (the routed
        store closes the others)."""
        routed = {id(s) for s in self.routed.stores()}
        for store in self._open.values():
            if id(store) not in routed:
                store.close()
        self._open.clear()
