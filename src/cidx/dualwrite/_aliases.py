"""What follows a migration's cleanup outside the state DB.

Once a migration has dropped SOURCE and made its name an alias of TARGET
(in the state DB), the places that keep names elsewhere follow: the global
store's registry forgets a SOURCE it held, and mirrors the project's
aliases, and a Qdrant server's own aliases become those of the state DB
(as `cidx.renaming` does for a rename).
"""

from __future__ import annotations

from cidx.collections import Collections, sync_native_aliases
from cidx.config import Config
from cidx.project import ProjectPaths
from cidx.registry import Registry, mirror_aliases
from cidx.state.moves import CollectionMigration
from cidx.storage import place_location
from cidx.store import NativeAliases, VectorStore
from cidx.store.routed import RoutedStore

__all__ = ["names_after_cleanup"]


def names_after_cleanup(
    paths: ProjectPaths,
    config: Config,
    collections: Collections,
    store: VectorStore,
    move: CollectionMigration,
) -> None:
    """A migration dropped SOURCE and made its name an alias of TARGET: a
    SOURCE left in the global store leaves its registry, and the registry
    and a server keep the project's aliases too."""
    left = move.source_store if move.moves_store else None
    if left is not None and place_location(paths, left).mode == "global":
        with Registry() as registry:
            registry.forget(move.source)
    if config.storage_mode == "global":
        mirror_aliases(paths.root, collections.aliases())
    home = store.store_of(collections.primary) if isinstance(store, RoutedStore) else store
    if isinstance(home, NativeAliases):
        sync_native_aliases(home, collections, config.collection)
