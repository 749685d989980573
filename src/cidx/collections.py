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
while during a migration (a new model's collection beside the old one, or
the same collection in another store while it moves there). While a
collection migration (`cidx.dualwrite`) runs, `route` tells the one write
path where a write goes (the side reads use, and the side that mirrors it),
and after its cutover every name of SOURCE resolves to TARGET; both come
from the migration's row, cached like the aliases.

`copy_collection` copies a collection from one store to another — every
point with both its vectors and its payload, in batches, resumable from the
last batch written — and `verify_copy` checks a copy by its count and by
sample queries; storage-mode migrations and copies of a cloned project's
collections are built on them. On a store that keeps aliases itself (a
server), `sync_native_aliases` makes its aliases of the project's
collections the project's.
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cidx.errors import UsageError
from cidx.failpoints import failpoint
from cidx.state import Alias, Manifest, StateDB
from cidx.state.moves import CollectionMigration, MoveTable
from cidx.store import (
    CollectionInfo,
    NativeAliases,
    Nearest,
    PointData,
    StoreQuery,
    VectorStore,
)

__all__ = [
    "COPY_BATCH",
    "Collections",
    "Route",
    "copy_collection",
    "sync_native_aliases",
    "verify_copy",
]

# Points per batch of a copy: about 1 MiB of vectors and text at a time.
COPY_BATCH = 256
# Scores of one query on a collection and on its copy may differ by float
# rounding only.
_SCORE_TOLERANCE = 1e-4

# What a collection or alias name may be: a portable folder name and a valid
# Qdrant collection name.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
# An alias's "last used" time is written at most this often per process.
_TOUCH_EVERY_SECONDS = 3600.0


@dataclass(frozen=True)
class Route:
    """Where a write to a collection goes: the side reads use, and the side
    that receives a copy of it while a migration runs (None: no copy)."""

    read: str
    mirror: str | None = None
    migration: CollectionMigration | None = None


@dataclass
class Collections:
    """The collections of one open project index."""

    store: VectorStore
    db: StateDB
    dim: int  # the vector size of new collections
    primary_name: str  # the collection the project's config names
    # Told the alias's name each time a name resolves through one (metrics).
    on_alias: Callable[[str], None] | None = None
    # The model id of the vectors in the project's collections (outside a
    # migration, every collection's).
    model: str = ""
    _cache: dict[str, Alias] = field(default_factory=dict, init=False, repr=False)
    _version: int = field(default=-1, init=False, repr=False)
    _move: CollectionMigration | None = field(default=None, init=False, repr=False)
    _move_version: int = field(default=-1, init=False, repr=False)
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
            return self._redirect(name)
        self._used(alias.name)
        return self._redirect(alias.target)

    def _real(self, name: str) -> str:
        """`resolve` for a look that is not a use (existence checks, names)."""
        alias = self._aliases().get(name)
        return self._redirect(name if alias is None else alias.target)

    # -- collection migrations -------------------------------------------

    def migration(self) -> CollectionMigration | None:
        """The collection migration under way (its phase as last changed), if any."""
        table = MoveTable(self.db)
        version = table.version()
        if version != self._move_version:
            with self._lock:
                self._move = table.active()
                self._move_version = version
        return self._move

    def _redirect(self, name: str) -> str:
        move = self.migration()
        if move is not None and move.cut_over and name == move.source:
            return move.target
        return name

    def route(self, name: str) -> Route:
        """Where a write to `name` (a name or alias of a collection) goes."""
        real = self.resolve(name)
        move = self.migration()
        if move is None or real not in (move.source, move.target):
            return Route(real)
        return Route(move.read_side, move.mirror_side, move)

    def model_of(self, name: str) -> str:
        """The model id of the vectors in the collection `name` resolves to."""
        real = self._real(name)
        move = self.migration()
        if move is not None and real == move.target:
            return move.target_model
        if move is not None and real == move.source:
            return move.source_model
        return self.model

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


def sync_native_aliases(store: NativeAliases, collections: Collections, own: str) -> None:
    """Make the server's aliases of this project's collections (`own` and the
    targets of its aliases) those of its state DB, in one atomic change:
    every reader of the server switches at once, none sees a gap."""
    wanted = {a.name: a.target for a in collections.aliases()}
    ours = {own, *wanted.values()}
    current = store.aliases()
    stale = [name for name, target in current.items() if target in ours and name not in wanted]
    changed = {name: target for name, target in wanted.items() if current.get(name) != target}
    if changed or stale:
        store.set_aliases(changed, remove=stale)


# Told after each batch of a copy: where the next batch starts (None: the copy
# is complete) and how many points this copy has written so far.
CopyProgressFn = Callable[[str | None, int], None]


def copy_collection(
    source: VectorStore,
    source_name: str,
    target: VectorStore,
    target_name: str,
    dim: int,
    *,
    start: str | None = None,
    batch: int = COPY_BATCH,
    on_batch: CopyProgressFn | None = None,
) -> int:
    """Copy the points of `source_name` (in `source`) into `target_name` (in
    `target`, created if missing), from the point id `start` on; how many
    points were written.

    Points go in id order, whole (dense and sparse vectors, payload), one
    batch at a time. A copy stopped at any point resumes from the `start`
    that `on_batch` was last told: points are written under their own ids,
    so a batch written twice changes nothing.
    """
    if not target.collection_exists(target_name):
        target.create_collection(target_name, dim)
    offset = start
    copied = 0
    while True:
        points, following = source.page(source_name, offset=offset, limit=batch)
        target.upsert(target_name, points)
        copied += len(points)
        failpoint("copy_batch")
        if on_batch is not None:
            on_batch(following, copied)
        if following is None:
            return copied
        offset = following


def verify_copy(
    source: VectorStore, source_name: str, target: VectorStore, target_name: str, samples: int = 3
) -> list[str]:
    """What differs between a collection and its copy (nothing: an empty list).

    The counts must match; then for a few points picked at random, the copy
    must hold the same payload and vectors, and a dense and a sparse query
    made from each must rank the same scores in both.
    """
    source_count = source.count(source_name)
    target_count = target.count(target_name)
    if source_count != target_count:
        return [f"the copy holds {target_count:,} points, the original {source_count:,}"]
    problems: list[str] = []
    for point in _sample(source, source_name, samples):
        copies, _ = target.page(target_name, offset=point.id, limit=1)
        copy = copies[0] if copies else None
        if copy is None or copy.id != point.id:
            problems.append(f"the point {point.id} is missing from the copy")
            continue
        # Sparse weights within float rounding: an embedded store keeps them as
        # float32, a server as given.
        if (
            copy.payload != point.payload
            or copy.sparse.indices != point.sparse.indices
            or not _close(copy.sparse.values, point.sparse.values)
        ):
            problems.append(f"the point {point.id} differs in the copy")
            continue
        if not _close(copy.dense, point.dense):
            problems.append(f"the dense vector of the point {point.id} differs in the copy")
            continue
        searches = [Nearest("dense", point.dense, 5)]
        if point.sparse.indices:
            searches.append(Nearest("sparse", point.sparse, 5))
        for search in searches:
            query = StoreQuery(searches=(search,), limit=5, with_payload=False)
            mine = source.query(source_name, query)
            theirs = target.query(target_name, query)
            if not _close([h.score for h in mine], [h.score for h in theirs]):
                problems.append(
                    f"a {search.using} query for the point {point.id} ranks differently in the copy"
                )
    return problems


def _sample(store: VectorStore, name: str, n: int) -> list[PointData]:
    """Up to `n` points picked at random (by the first id from a random one on)."""
    picked: dict[str, PointData] = {}
    for _ in range(n):
        points, _next = store.page(name, offset=str(uuid.uuid4()), limit=1)
        if not points:
            points, _next = store.page(name, offset=None, limit=1)
        for point in points:
            picked[point.id] = point
    return list(picked.values())


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, abs_tol=_SCORE_TOLERANCE) for x, y in zip(a, b, strict=True)
    )


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name):
        raise UsageError(
            f"{name!r} cannot be a {what} name: use letters, digits, '.', '_' and '-' "
            "(at most 200)."
        )
