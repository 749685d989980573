"""The units of work of a collection migration: a backfill batch, an outbox drain, a validation.

Each runs under the owner's write lock (the caller's), so no live write
interleaves with it: a backfill batch reads SOURCE's current points (never
older than TARGET's: every write reaches SOURCE first, or TARGET's copy is
queued to follow it) and writes those no tombstone names, so an older copy
never overwrites a newer one and a deleted point never comes back.
"""

from __future__ import annotations

import logging
import math
import uuid

from cidx.collections import Collections, verify_copy
from cidx.dualwrite._writes import convert, side_model
from cidx.embedcache import embed_cached
from cidx.failpoints import failpoint
from cidx.parts import Models
from cidx.representation import dense_text_of
from cidx.state.moves import CollectionMigration, MoveTable
from cidx.store import PointData

__all__ = ["backfill_batch", "drain", "validate"]

log = logging.getLogger("cidx.dualwrite")

# Outbox entries retried per drain step.
DRAIN_BATCH = 256
# Points whose payload and vectors a validation compares.
SAMPLES = 8


def backfill_batch(
    collections: Collections, models: Models, move: CollectionMigration
) -> CollectionMigration:
    """Copy the next batch of SOURCE into TARGET; `move` with the cursor after it
    (and the phase `validate` once SOURCE is exhausted)."""
    table = MoveTable(collections.db)
    if move.reembed:
        copied, following = _reembed_batch(collections, models, move)
    else:
        # Under the write lock SOURCE's copy of a point is its newest, so
        # writing it over TARGET's never loses a write.
        copied, following = collections.store.copy_page(
            move.source,
            move.target,
            offset=move.cursor,
            limit=move.batch,
            skip=lambda ids: table.buried(move.id, ids),
        )
    failpoint("backfill_batch")
    changes: dict[str, object] = {"cursor": following, "copied": move.copied + copied}
    if following is None:
        changes["phase"] = "validate"
    with collections.db.transaction() as tx:
        return table.update(tx, move, **changes)


def _reembed_batch(
    collections: Collections, models: Models, move: CollectionMigration
) -> tuple[int, str | None]:
    """The next batch of SOURCE embedded for TARGET's model, leaving out the
    points TARGET holds already (embedding them again would be the cost)."""
    store = collections.store
    points, following = store.page(move.source, offset=move.cursor, limit=move.batch)
    ids = [p.id for p in points]
    if not ids:
        return 0, following
    skipped = {hit.id for hit in store.retrieve(move.target, ids)}
    skipped |= MoveTable(collections.db).buried(move.id, ids)
    todo = [p for p in points if p.id not in skipped]
    if todo:
        store.upsert(move.target, convert(collections, models, todo, move, move.target))
    return len(todo), following


def drain(collections: Collections, models: Models, move: CollectionMigration) -> int:
    """Retry the outbox: the other side gets the current state of each queued
    point; how many entries remain (failures stay queued with their error)."""
    table = MoveTable(collections.db)
    read, mirror = move.read_side, move.mirror_side
    if mirror is None:
        return 0
    store = collections.store
    table.requeue()
    entries = table.outbox(move.id, DRAIN_BATCH)
    if not entries:
        return 0
    ids = [e.point_id for e in entries]
    current: list[PointData] = []
    gone: list[str] = []
    for pid in ids:
        found, _next = store.page(read, offset=pid, limit=1)
        if found and found[0].id == pid:
            current.append(found[0])
        else:
            gone.append(pid)
    try:
        if current:
            store.upsert(mirror, convert(collections, models, current, move, mirror))
        if gone:
            store.delete(mirror, gone)
    except Exception as exc:  # the entries stay queued with the reason
        log.warning("retrying the outbox of migration %s failed: %s", move.id, exc)
        with collections.db.transaction() as tx:
            table.failed(tx, move.id, ids, str(exc)[:500])
        return table.outbox_size(move.id)
    with collections.db.transaction() as tx:
        table.done(tx, move.id, ids)
    return table.outbox_size(move.id)


def validate(collections: Collections, models: Models, move: CollectionMigration) -> list[str]:
    """What differs between SOURCE and TARGET (nothing: an empty list)."""
    store = collections.store
    queued = MoveTable(collections.db).outbox_size(move.id)
    if queued:
        return [f"{queued:,} writes are still queued for the other side"]
    source_ids = {pid for pid, _ in store.scroll(move.source)}
    target_ids = {pid for pid, _ in store.scroll(move.target)}
    if source_ids != target_ids:
        missing, extra = source_ids - target_ids, target_ids - source_ids
        return [
            f"{move.target} lacks {len(missing):,} points of {move.source} and holds "
            f"{len(extra):,} it does not"
            + (f" (e.g. {sorted(missing or extra)[0]})" if missing or extra else "")
        ]
    if not move.reembed:
        return verify_copy(store, move.source, store, move.target, samples=SAMPLES)
    return _check_reembedded(collections, models, move)


def _check_reembedded(
    collections: Collections, models: Models, move: CollectionMigration
) -> list[str]:
    """Sampled points: the same payload and sparse vector, and a dense vector of
    the target model (its dimension, and the model's vector for the text)."""
    store = collections.store
    problems: list[str] = []
    for _ in range(SAMPLES):
        points, _next = store.page(move.source, offset=str(uuid.uuid4()), limit=1)
        if not points:
            points, _next = store.page(move.source, offset=None, limit=1)
        for point in points:
            copies, _next = store.page(move.target, offset=point.id, limit=1)
            copy = copies[0] if copies and copies[0].id == point.id else None
            if copy is None:
                problems.append(f"the point {point.id} is missing from {move.target}")
                continue
            if copy.payload != point.payload or copy.sparse != point.sparse:
                problems.append(f"the point {point.id} differs in {move.target}")
                continue
            if len(copy.dense) != move.target_dim:
                problems.append(
                    f"the point {point.id} has a vector of {len(copy.dense)} dimensions in "
                    f"{move.target}, not {move.target_dim}"
                )
                continue
            variant = models.variant(move.target_model)
            if variant is None:
                continue
            want = embed_cached(
                collections.db,
                side_model(move, move.target),
                move.target_dim,
                [dense_text_of(point.payload)],
                lambda v=variant: v.embedder,  # type: ignore[misc]
            ).vectors[0]
            if not all(
                math.isclose(a, float(b), abs_tol=1e-4)
                for a, b in zip(copy.dense, want, strict=True)
            ):
                problems.append(
                    f"the vector of the point {point.id} in {move.target} is not the "
                    f"{move.target_model} vector of its text"
                )
    return problems
