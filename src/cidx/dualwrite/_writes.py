"""The one write path to a collection's points, and how a point crosses to the other side.

Every upsert and delete of points (the indexer's, whatever process or
front end asked for the sync) goes through `PointWriter`. Outside a
migration it writes the collection. While a collection migration runs, it
writes the side reads use and then mirrors the write to the other side:

1. the ids are noted in flight (one row; while the backfill runs, deleted
   ids also become tombstones), in one transaction;
2. the read side is written (a failure here fails the write, as without a
   migration);
3. the other side is written (converted for its model when the migration
   re-embeds); once it succeeded the note is cleared. A failure there puts
   the ids in the migration's outbox, with the error, for `drain` to retry.

A write stopped between 1 and 3 (an error, a SIGKILL) leaves its note; the
next write, or the migration's next step, moves its ids to the outbox. An
id in the outbox means "the other side may lag for this point": `drain`
copies the point's current state from the read side (or deletes it when
the read side no longer has it), which is right whatever happened to it
meanwhile, so a crash between any two steps loses nothing.

(Writing both sides at once from two threads was measured no faster: the
engine holds the interpreter while it writes, benchmarks/RESULTS.md.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from cidx.collections import Collections
from cidx.embedcache import embed_cached
from cidx.failpoints import failpoint
from cidx.parts import Models
from cidx.representation import dense_text_of
from cidx.state.moves import CollectionMigration, MoveTable
from cidx.store import PointData

__all__ = ["PointWriter", "convert", "side_model"]

log = logging.getLogger("cidx.dualwrite")


def side_model(move: CollectionMigration, side: str) -> str:
    return move.target_model if side == move.target else move.source_model


def side_dim(move: CollectionMigration, side: str, dim: int) -> int:
    return move.target_dim if side == move.target else dim


def convert(
    collections: Collections,
    models: Models,
    points: Sequence[PointData],
    move: CollectionMigration,
    side: str,
) -> Sequence[PointData]:
    """`points`, read from the other side of `move`, as `side` stores them: the
    same points, or re-embedded from their payload's text through the cache
    when the two sides hold different models' vectors."""
    to_model = side_model(move, side)
    variant = models.variant(to_model)
    if not move.reembed or not points or variant is None:
        # A side whose model this cidx cannot run (an older cidx's) keeps the
        # other side's vectors: it is searched by keywords only. The batch
        # itself, so the store can reuse what it built for the first side.
        return points
    dense = embed_cached(
        collections.db,
        to_model,
        side_dim(move, side, collections.dim),
        [dense_text_of(p.payload) for p in points],
        lambda: variant.embedder,
    )
    return [replace(p, dense=dense.vectors[i].tolist()) for i, p in enumerate(points)]


@dataclass
class PointWriter:
    """Upserts and deletes points of a collection (and of its migration's other side)."""

    collections: Collections
    models: Models

    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        store = self.collections.store
        self._write(
            name,
            [p.id for p in points],
            lambda side: store.upsert(side, points),
            lambda move, side: store.upsert(
                side, convert(self.collections, self.models, points, move, side)
            ),
            deleting=False,
        )

    def delete(self, name: str, ids: Sequence[str]) -> None:
        store = self.collections.store
        self._write(
            name,
            ids,
            lambda side: store.delete(side, ids),
            lambda _move, side: store.delete(side, ids),
            deleting=True,
        )

    def _write(
        self,
        name: str,
        ids: Sequence[str],
        write: Callable[[str], None],
        mirror: Callable[[CollectionMigration, str], None],
        *,
        deleting: bool,
    ) -> None:
        """`write` the side reads use and, while a migration runs, `mirror` to
        the other side, with the outbox and tombstones kept as the module says."""
        route = self.collections.route(name)
        move, other = route.migration, route.mirror
        if other is None or move is None or not ids:
            write(route.read)
            return
        table = MoveTable(self.collections.db)
        with self.collections.db.transaction() as tx:
            table.in_flight(tx, move.id, ids)
            if move.phase == "backfill":
                # A deleted point must not come back with the backfill; one
                # written again is no longer deleted.
                (table.bury if deleting else table.unbury)(tx, move.id, ids)
        failpoint("dualwrite_queued")
        try:
            write(route.read)
        except BaseException:
            table.requeue()
            raise
        failpoint("dualwrite_read_side")
        self._mirror(move, ids, lambda: mirror(move, other))

    def recreate(self, name: str) -> None:
        """`name` emptied (dropped and created again), and its migration's other
        side with it: a rebuild that follows writes both again."""
        route = self.collections.route(name)
        store = self.collections.store
        sides = [route.read] if route.mirror is None else [route.read, route.mirror]
        for side in sides:
            if store.collection_exists(side):
                store.drop_collection(side)
            move = route.migration
            dim = (
                self.collections.dim if move is None else side_dim(move, side, self.collections.dim)
            )
            store.create_collection(side, dim)

    def _mirror(
        self, move: CollectionMigration, ids: Sequence[str], write: Callable[[], None]
    ) -> None:
        table = MoveTable(self.collections.db)
        try:
            failpoint("dualwrite_mirror")
            write()
        except Exception as exc:  # any failure leaves the ids queued
            log.warning(
                "the copy of %d points to the other side of migration %s failed (%s); "
                "queued for a retry",
                len(ids),
                move.id,
                exc,
            )
            with self.collections.db.transaction() as tx:
                table.queue(tx, move.id, ids)
                table.failed(tx, move.id, ids, str(exc)[:500])
                table.landed(tx)
            return
        failpoint("dualwrite_mirrored")
        with self.collections.db.transaction() as tx:
            table.landed(tx)
