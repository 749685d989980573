"""A project's collections: naming, aliases, creating, dropping and setting them aside.

A project's index is one or more collections in its store. `Collections`
is the one place that creates a collection when it is missing, drops one,
or sets a damaged one aside; everything above asks it rather than the store.
`resolve` turns a name a user or a config gives into the collection that
holds the data: an alias (`cidx project update-remote` leaves one behind
when a project's data moves to a new name) resolves to its target, through
an in-memory cache that another process's change invalidates.

Alias rules: an alias names a collection, never another alias (no chains,
so no cycles); it may not have the name of a collection or of another
alias; acting on an alias (drop, clear) acts on its collection.

The project's own collection is the one its config names. More exist for a
while during a migration (a new model's collection beside the old one).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cidx.errors import UsageError
from cidx.state import Alias, Manifest, StateDB
from cidx.store import CollectionInfo, VectorStore

__all__ = ["Collections"]

# What a collection or alias name may be: a portable folder name and a valid
# Qdrant collection name.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
# An alias's "last used" time is written at most this often per process.
_TOUCH_EVERY_SECONDS = 3600.0


@dataclass
class Collections:
    """The collections of one open project index."""

    store: VectorStore
    db: StateDB
    dim: int  # the vector size of new collections
    primary_name: str  # the collection the project's config names
    # Told the alias's name each time a name resolves through one (metrics).
    on_alias: Callable[[str], None] | None = None
    _cache: dict[str, Alias] = field(default_factory=dict, init=False, repr=False)
    _version: int = field(default=-1, init=False, repr=False)
    _touched: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def primary(self) -> str:
        """The collection the project's reads and writes go to."""
        return self._real(self.primary_name)

    # -- names and aliases -------------------------------------------------

    def resolve(self, name: str) -> str:
        """The collection that holds the data `name` stands for, for a read or a
        write about to happen through it (counted as a use of an alias)."""
        alias = self._aliases().get(name)
        if alias is None:
            return name
        self._used(alias.name)
        return alias.target

    def _real(self, name: str) -> str:
        """`resolve` for a look that is not a use (existence checks, names)."""
        alias = self._aliases().get(name)
        return name if alias is None else alias.target

    def aliases(self) -> list[Alias]:
        return sorted(self._aliases().values(), key=lambda a: a.name)

    def alias(self, name: str) -> Alias | None:
        return self._aliases().get(name)

    def create_alias(self, name: str, target: str, *, created_by: str, reason: str) -> Alias:
        """Make `name` reach the collection `target`; UsageError when the rules forbid it."""
        _check_name(name, "alias")
        aliases = self._aliases()
        if target in aliases:
            raise UsageError(
                f"{target!r} is itself an alias (of {aliases[target].target!r}); aliases point "
                f"at collections, never at other aliases. Use {aliases[target].target!r}."
            )
        if not self.store.collection_exists(target):
            raise UsageError(
                f"There is no collection {target!r} to point an alias at. "
                "`cidx collections list` shows the collections."
            )
        if name == target:
            raise UsageError(f"An alias cannot point at itself ({name!r}).")
        if name in aliases:
            raise UsageError(
                f"{name!r} is already an alias (of {aliases[name].target!r}). Remove it first "
                f"with `cidx project remove-alias {name}`."
            )
        if self.store.collection_exists(name):
            raise UsageError(
                f"{name!r} is a collection: an alias may not hide it. Pick another name."
            )
        alias = Alias(name, target, created_by, reason, time.time(), None)
        with self.db.transaction() as tx:
            self.db.aliases.put(tx, alias)
        self._version = -1
        return alias

    def delete_alias(self, name: str) -> Alias:
        """Remove the alias `name`; UsageError when there is none."""
        alias = self._aliases().get(name)
        if alias is None:
            if self.store.collection_exists(name):
                raise UsageError(
                    f"{name!r} is a collection, not an alias; `cidx clear-data` removes data."
                )
            raise UsageError(
                f"There is no alias {name!r}. `cidx project list-aliases` shows the aliases."
            )
        with self.db.transaction() as tx:
            self.db.aliases.delete(tx, name)
        self._version = -1
        return alias

    def _aliases(self) -> dict[str, Alias]:
        version = self.db.aliases.version()
        if version != self._version:
            with self._lock:
                self._cache = self.db.aliases.all()
                self._version = version
        return self._cache

    def _used(self, name: str) -> None:
        if self.on_alias is not None:
            self.on_alias(name)
        now = time.monotonic()
        last = self._touched.get(name)
        if last is None or now - last >= _TOUCH_EVERY_SECONDS:
            self._touched[name] = now
            self.db.aliases.touch(name)

    # -- lifecycle -----------------------------------------------------------

    def manifest(self, name: str) -> Manifest:
        return self.db.manifest(self._real(name))

    def exists(self, name: str) -> bool:
        return self.store.collection_exists(self._real(name))

    def ensure(self, name: str) -> bool:
        """Create `name` if it is missing; whether it was created now."""
        real = self._real(name)
        if self.store.collection_exists(real):
            return False
        self.store.create_collection(real, self.dim)
        return True

    def drop(self, name: str) -> None:
        """Remove `name`'s data, if any (its manifest is the caller's)."""
        real = self._real(name)
        if self.store.collection_exists(real):
            self.store.drop_collection(real)

    def rename(self, old: str, new: str) -> None:
        """Give the collection `old` (not an alias) the name `new` (the manifest
        is the caller's)."""
        self.store.rename_collection(old, new)

    def recreate(self, name: str) -> None:
        """`name` empty: dropped if present, then created."""
        self.drop(name)
        self.ensure(name)

    def set_aside(self, name: str) -> Path | None:
        """Move a damaged `name` out of the way (kept until `drop_set_aside`)."""
        return self.store.set_aside(self._real(name))

    def drop_set_aside(self, name: str) -> list[Path]:
        return self.store.drop_set_aside(self._real(name))

    def names(self) -> list[str]:
        """Every collection in the store this project can see."""
        return self.store.list_collections()

    def info(self, name: str) -> CollectionInfo:
        return self.store.info(self._real(name))


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name):
        raise UsageError(
            f"{name!r} cannot be a {what} name: use letters, digits, '.', '_' and '-' "
            "(at most 200)."
        )
