"""Making an open index durable on disk: `cidx force-flush`, and every pause.

Every update is durable as soon as it is written — the store's shards keep a
write-ahead log, and so does the state database — but the log is the only
place a recent update is whole until the next flush. A flush writes the
store's segments (so each shard's files hold every point without replaying
its log) and acknowledges the log up to the last update, then writes the
state database's WAL back into `state.db` and truncates it. After it, the
files of the index are a complete, self-contained copy of it: what a
snapshot, a backup or a copy of the project needs.

The collections of a project are every collection of its own store in local
mode; in the global store, only those its config names (the store is shared
with other projects, whose collections are theirs to flush).
"""

from __future__ import annotations

import os
import time

from cidx.errors import CidxError, UsageError
from cidx.messages import CollectionFlush, FlushReport, StateFlush
from cidx.parts import IndexParts

__all__ = ["flush_index", "project_collections"]


def project_collections(parts: IndexParts) -> list[str]:
    """The collections that belong to the project (the primary first)."""
    primary = parts.collections.primary
    if parts.location.mode != "local":
        return [primary]
    return [primary, *(n for n in parts.collections.names() if n != primary)]


def flush_index(parts: IndexParts, collection: str | None = None) -> FlushReport:
    """Flush the project's collections (or just `collection`) and checkpoint
    the state database. The caller keeps writers out (the engine's write lock).

    A collection that fails is reported with the reason and the others are
    still flushed; `FlushReport.ok` says whether everything was.
    """
    started = time.perf_counter()
    names = project_collections(parts)
    if collection is not None:
        real = parts.collections.resolve(collection)
        if real not in names:
            listing = ", ".join(names) or "none"
            raise UsageError(
                f"The project at {parts.paths.root} has no collection {collection!r} (its "
                f"collections: {listing}). Run `cidx force-flush` without --collection to "
                "flush them all."
            )
        names = [real]
    flushed = [_flush_one(parts, name) for name in names]
    return FlushReport(
        root=str(parts.paths.root),
        collections=flushed,
        state=checkpoint_state(parts),
        seconds=time.perf_counter() - started,
        pid=os.getpid(),
    )


def _flush_one(parts: IndexParts, name: str) -> CollectionFlush:
    started = time.perf_counter()
    try:
        # Counting opens the shard when this process has not yet: a shard
        # left by a killed process replays its log then, and the flush
        # below persists what it replayed.
        points = parts.store.count(name)
        parts.store.flush(name)
    except CidxError as exc:
        return CollectionFlush(name, None, time.perf_counter() - started, exc.message)
    return CollectionFlush(name, points, time.perf_counter() - started)


def checkpoint_state(parts: IndexParts) -> StateFlush:
    """Write the state database's WAL back into it, and say how that went."""
    path = str(parts.db.path)
    try:
        frames, done, complete = parts.db.checkpoint()
    except CidxError as exc:
        return StateFlush(path, 0, 0, False, exc.message)
    return StateFlush(path, frames, done, complete)
