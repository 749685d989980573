"""The state machine of a collection migration, run by the index's owner.

A migration is one row of `collection_migrations` (`cidx.state.moves`),
advanced phase by phase; every step re-reads it, so one stopped anywhere
(a crash, a SIGKILL, the owner exiting) resumes from its phase when the
index is next opened:

    prepare       TARGET is being created (SOURCE's settings, or the new
                  model's dimension)
    backfill      every write goes to both; SOURCE is copied into TARGET batch
                  by batch from `cursor` (deleted points are tombstoned)
    validate      counts, id sets, sampled payloads and vectors, and (copies)
                  sample queries are being compared
    invalid       they differ (`detail`); nothing was switched
    validated     TARGET equals SOURCE; dual writes go on until cutover
    cutover       reads go to TARGET; SOURCE still receives every write until
                  cleanup, so rollback is instant and loses nothing
    cleanup       dual writes have stopped; SOURCE is being dropped
    done          SOURCE is gone; its name is an alias of TARGET
    rolling_back  reads and writes are SOURCE's alone; TARGET is being dropped
    rolled_back   TARGET is gone: SOURCE is as if nothing had happened

Every step runs under the owner's write lock (`writing`), so a backfill
batch never interleaves with a live write.

TARGET may live in another store than SOURCE (the index moves there,
`cidx storage migrate`): the row records each side's place, `SideStores`
routes each name to its store, and `on_switch` is told after each change
of the side reads go to (cutover, rollback), so the project's config can
follow. Nothing else differs: every step addresses collections by name.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from cidx.collections import Collections, _check_name
from cidx.dualwrite._steps import backfill_batch, drain, validate
from cidx.dualwrite._stores import SideStores
from cidx.errors import CidxError, UsageError
from cidx.failpoints import failpoint
from cidx.formatting import duration
from cidx.messages import MigrationView
from cidx.parts import Models
from cidx.state import Alias, StateDB
from cidx.state.moves import CollectionMigration, MoveTable
from cidx.storage import place_name

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_RETAIN",
    "MODEL_CHANGE",
    "NAMING_CHANGE",
    "REEMBED_BATCH",
    "MigrationParts",
    "Migrator",
]

log = logging.getLogger("cidx.dualwrite")

# Points per backfill step (under the write lock): a copy's batch takes about
# a quarter of a second on 2 cores, and bigger ones cost less per point; a
# re-embedding batch is embedded in that step too, so it is kept smaller.
DEFAULT_BATCH = 2048
REEMBED_BATCH = 512
DEFAULT_RETAIN = 30 * 86400.0
# `started_by` of the migration a change of the embedding model starts: it
# cuts over by itself once validated, and cleans up at once (the old model's
# vectors are not wanted back, and keeping them would embed every write twice).
MODEL_CHANGE = "model change"
# `started_by` of the migration a change of the config's naming scheme starts
# (`cidx.dualwrite._config_change`): it cuts over and cleans up by itself too,
# the old name becoming an alias of the new one.
NAMING_CHANGE = "naming change"
_BY_ITSELF = frozenset({MODEL_CHANGE, NAMING_CHANGE})
# The background worker rests this many times as long as each step took:
# measured, an unpaced backfill tripled the p50 of searches answered
# meanwhile on 2 cores (benchmarks/RESULTS.md, "Collection migration").
_BACKGROUND_PACE = 2.0
# How often an idle worker looks for work (a retention window ending, a
# migration started by a command through the socket).
_IDLE_SECONDS = 30.0


@dataclass(frozen=True)
class MigrationParts:
    """What a migration works with: the project's collections and models, the
    owner's write lock, who to tell when SOURCE is about to go (the
    project's config names the collection it keeps) and when reads switch
    sides, and (to move an index to another store) the stores of the sides."""

    collections: Collections
    models: Models
    writing: Callable[[], AbstractContextManager[None]]
    on_cleanup: Callable[[CollectionMigration], None] | None = None
    on_switch: Callable[[CollectionMigration], None] | None = None
    sides: SideStores | None = None
    # Told once a migration is done: SOURCE is gone and its name an alias of
    # TARGET (registries and servers that keep aliases follow).
    on_done: Callable[[CollectionMigration], None] | None = None


class Migrator:
    """Starts and advances the collection migration of one open index."""

    def __init__(self, parts: MigrationParts) -> None:
        self.parts = parts
        self.table = MoveTable(parts.collections.db)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def db(self) -> StateDB:
        return self.parts.collections.db

    def active(self) -> CollectionMigration | None:
        return self.table.active()

    def follow(self, move: CollectionMigration | None = None) -> None:
        """Route the sides of `move` (the migration under way) to their stores,
        and bring the config to the side reads use (when an index opens)."""
        move = move or self.table.active()
        if move is None:
            return
        if self.parts.sides is not None:
            self.parts.sides.follow(move)
        self._switched(move)

    def _switched(self, move: CollectionMigration) -> None:
        if move.moves_store and self.parts.on_switch is not None:
            self.parts.on_switch(move)

    # -- starting ------------------------------------------------------------

    def start(
        self,
        source: str,
        target: str,
        *,
        reembed: str | None = None,
        batch: int | None = None,
        retain_seconds: float = DEFAULT_RETAIN,
        started_by: str = "user",
        target_store: str | None = None,
    ) -> CollectionMigration:
        """Prepare the migration of `source` to `target` (in the store at the
        place `target_store`; None: SOURCE's) and start its dual writes;
        UsageError when it cannot start."""
        collections = self.parts.collections
        sides = self.parts.sides
        if target_store is not None and sides is None:
            raise UsageError("This index cannot move to another store.")
        with self.parts.writing():
            running = self.table.active()
            if running is not None:
                raise UsageError(
                    f"A migration of {running.source} to {running.target} is under way "
                    f"(phase {running.phase}); one runs at a time. `cidx collections migration "
                    "status` shows it."
                )
            real = collections.resolve(source)
            source_store = sides.place_of(real) if target_store is not None and sides else None
            if target_store is not None and target_store == source_store:
                raise UsageError(
                    f"{real} is in the {place_name(target_store)} store already: there is "
                    "nothing to move."
                )
            if not collections.store.collection_exists(real):
                raise UsageError(
                    f"There is no collection {source!r} to migrate. `cidx collections list` "
                    "shows the collections."
                )
            _check_name(target, "collection")
            if target == real:
                raise UsageError(f"{source!r} cannot be migrated to itself.")
            there = sides.store(target_store) if sides is not None else collections.store
            if (
                collections.store.collection_exists(target)
                or there.collection_exists(target)
                or collections.alias(target)
            ):
                raise UsageError(
                    f"{target!r} exists already (a collection or an alias). A migration "
                    "creates its target: pick a new name."
                )
            if batch is None:
                batch = DEFAULT_BATCH if reembed is None else REEMBED_BATCH
            if not 1 <= batch <= 65_536:
                raise UsageError(f"--batch must be between 1 and 65536, not {batch}.")
            source_model = collections.model_of(real) or collections.model
            target_model = reembed or source_model
            if reembed is not None and self.parts.models.variant(reembed) is None:
                raise UsageError(
                    f"This cidx cannot make vectors of the model {reembed!r}. Give the "
                    f"bundled model, with any max length (e.g. {collections.model!r})."
                )
            move = CollectionMigration(
                id=uuid.uuid4().hex[:12],
                source=real,
                target=target,
                phase="prepare",
                source_model=source_model,
                target_model=target_model,
                target_dim=collections.dim,
                batch=batch,
                retain_seconds=retain_seconds,
                started_by=started_by,
                started_at=time.time(),
                source_store=source_store,
                target_store=target_store,
            )
            with self.db.transaction() as tx:
                self.table.add(tx, move)
            self.follow(move)
            move = self._prepare(move)
        self._wake.set()
        return move

    def _prepare(self, move: CollectionMigration) -> CollectionMigration:
        store = self.parts.collections.store
        if not store.collection_exists(move.target):
            store.create_collection(move.target, move.target_dim)
        failpoint("migration_prepared")
        with self.db.transaction() as tx:
            return self.table.update(tx, move, phase="backfill", total=store.count(move.source))

    # -- advancing -----------------------------------------------------------

    def step(self) -> bool:
        """Do the next unit of work of the migration under way; whether more
        can be done now (False: none runs, or it waits for a command or for
        its retention window)."""
        with self.parts.writing():
            move = self.table.active()
            if move is None:
                return False
            self.table.requeue()  # a write a crash stopped part-way
            collections, models = self.parts.collections, self.parts.models
            # Writes that failed on the other side are retried first, for as
            # long as retrying gets somewhere.
            queued = 0
            if move.dual_write:
                before = self.table.outbox_size(move.id)
                queued = drain(collections, models, move) if before else 0
                if 0 < queued < before:
                    return True
            phase = move.phase
            if phase == "prepare":
                self._prepare(move)
            elif phase == "backfill":
                backfill_batch(collections, models, move)
            elif phase == "validate" and queued:
                return False  # validated once the other side has every write
            elif phase == "validate":
                problems = validate(collections, models, move)
                with self.db.transaction() as tx:
                    self.table.update(
                        tx,
                        move,
                        phase="invalid" if problems else "validated",
                        detail="; ".join(problems) or None,
                    )
                failpoint("migration_validated")
            elif phase == "validated" and move.started_by in _BY_ITSELF:
                self._cut_over(move)
            elif phase == "cutover" and (
                move.started_by in _BY_ITSELF or time.time() >= _cleanup_after(move)
            ):
                self._clean_up(self._begin_cleanup(move))
            elif phase == "cleanup":
                self._clean_up(move)
            elif phase == "rolling_back":
                self._roll_back(move)
            else:
                return False
            return True

    def run(
        self,
        on_progress: Callable[[CollectionMigration], None] | None = None,
        stop: threading.Event | None = None,
        pace: float = 0.0,
    ) -> CollectionMigration | None:
        """Step until the migration waits (validated, invalid, in its retention
        window) or ends; the migration as it then is. With `pace`, rest that
        many times each step's duration after it (the background worker
        leaves the cores to searches and syncs this way)."""
        while True:
            started = time.monotonic()
            if (stop is not None and stop.is_set()) or not self.step():
                return self.table.active()
            if on_progress is not None:
                move = self.table.active()
                if move is not None:
                    on_progress(move)
            if pace and stop is not None:
                stop.wait(pace * (time.monotonic() - started))

    # -- the commands ----------------------------------------------------------

    def cutover(self) -> CollectionMigration:
        """Switch reads to TARGET (validating first if it has not been)."""
        self.run()
        with self.parts.writing():
            move = self._require()
            if move.phase == "invalid":
                raise UsageError(
                    f"The migration of {move.source} to {move.target} failed its validation "
                    f"({move.detail}); reads stay on {move.source}. Roll it back with `cidx "
                    "collections migration rollback` and migrate again."
                )
            if move.phase != "validated":
                raise UsageError(
                    f"The migration of {move.source} to {move.target} is in phase "
                    f"{move.phase}, not validated: nothing to cut over."
                )
            return self._cut_over(move)

    def _cut_over(self, move: CollectionMigration) -> CollectionMigration:
        """Reads switch to TARGET in one transaction, with the manifest that
        says which files it holds (the outbox is empty: checked under the lock)."""
        collections = self.parts.collections
        if drain(collections, self.parts.models, move):
            raise UsageError(
                f"Writes to {move.target} are still failing ({self._last_error(move)}); "
                "reads stay on the source. Run the command again once the store is healthy."
            )
        with self.db.transaction() as tx:
            self.db.manifest(move.source).copy_to(tx, move.target)
            move = self.table.update(tx, move, phase="cutover", cutover_at=time.time())
        failpoint("migration_cut_over")
        self._switched(move)
        log.info("migration %s: reads switched from %s to %s", move.id, move.source, move.target)
        return move

    def rollback(self) -> CollectionMigration:
        """Return reads and writes to SOURCE alone and drop TARGET."""
        with self.parts.writing():
            move = self._require()
            if move.phase == "cleanup":
                raise UsageError(
                    f"{move.source} is being dropped (cleanup has begun): the migration can "
                    "no longer be rolled back."
                )
            if move.phase == "cutover":
                if drain(self.parts.collections, self.parts.models, move):
                    raise UsageError(
                        f"Writes to {move.source} are still failing ({self._last_error(move)}); "
                        "it would lack them, so reads stay on "
                        f"{move.target}. Run the command again once the store is healthy."
                    )
                with self.db.transaction() as tx:
                    self.db.manifest(move.target).copy_to(tx, move.source)
                    move = self.table.update(tx, move, phase="rolling_back")
                self._switched(move)
            elif move.phase != "rolling_back":
                with self.db.transaction() as tx:
                    move = self.table.update(tx, move, phase="rolling_back")
            failpoint("migration_rolling_back")
            return self._roll_back(move)

    def _roll_back(self, move: CollectionMigration) -> CollectionMigration:
        collections = self.parts.collections
        if collections.store.collection_exists(move.target):
            collections.store.drop_collection(move.target)
        with self.db.transaction() as tx:
            self.db.manifest(move.target).clear(tx)
            self.table.forget(tx, move.id)
            return self.table.update(tx, move, phase="rolled_back", ended_at=time.time())

    def cleanup(self, *, force: bool = False) -> CollectionMigration:
        """Stop dual writes and drop SOURCE; before the retention window ends only
        with `force`."""
        with self.parts.writing():
            move = self._require()
            if move.phase not in ("cutover", "cleanup"):
                raise UsageError(
                    f"The migration of {move.source} to {move.target} is in phase {move.phase}; "
                    "cleanup comes after cutover (`cidx collections migration cutover`)."
                )
            if move.phase == "cutover":
                after = _cleanup_after(move)
                if time.time() < after and not force:
                    raise UsageError(
                        f"{move.source} is kept for rollback for {duration(after - time.time())} "
                        "more (the retention window). Give --force to drop it now; rollback is "
                        "then no longer possible."
                    )
                move = self._begin_cleanup(move)
            return self._clean_up(move)

    def _begin_cleanup(self, move: CollectionMigration) -> CollectionMigration:
        with self.db.transaction() as tx:
            return self.table.update(tx, move, phase="cleanup")

    def _clean_up(self, move: CollectionMigration) -> CollectionMigration:
        """Drop SOURCE; its name (and its aliases) then reach TARGET. Each step
        can be repeated, so a crash here resumes to the same end."""
        if self.parts.on_cleanup is not None:
            self.parts.on_cleanup(move)
        store = self.parts.collections.store
        failpoint("migration_cleanup")
        if store.collection_exists(move.source):
            store.drop_collection(move.source)
        now = time.time()
        with self.db.transaction() as tx:
            self.db.manifest(move.source).clear(tx)
            self.db.aliases.retarget(tx, move.source, move.target)
            self.db.aliases.put(
                tx,
                Alias(
                    move.source,
                    move.target,
                    "collections migrate",
                    f"migration {move.id}",
                    now,
                    None,
                ),
            )
            self.table.forget(tx, move.id)
            move = self.table.update(tx, move, phase="done", ended_at=now)
        if self.parts.on_done is not None:
            try:
                self.parts.on_done(move)
            except CidxError as exc:  # cidx's own aliases work; the next change retries
                log.warning("the aliases kept outside the index were not changed: %s", exc.message)
        return move

    def _require(self) -> CollectionMigration:
        move = self.table.active()
        if move is None:
            raise UsageError(
                "No collection migration is under way. Start one with `cidx collections "
                "migrate SOURCE TARGET`."
            )
        return move

    def _last_error(self, move: CollectionMigration) -> str:
        errors = [e.last_error for e in self.table.outbox(move.id, 1) if e.last_error]
        return errors[0] if errors else "unknown error"

    # -- reporting -----------------------------------------------------------

    def view(self, move: CollectionMigration | None = None) -> MigrationView | None:
        """The migration under way (or `move`) as status shows it."""
        move = move or self.table.active()
        if move is None:
            return None
        return MigrationView(
            id=move.id,
            source=move.source,
            target=move.target,
            phase=move.phase,
            reads=move.read_side if move.active else _finally_read(move),
            dual_write=move.dual_write,
            source_model=move.source_model,
            target_model=move.target_model,
            copied=move.copied,
            total=move.total,
            queued=self.table.outbox_size(move.id),
            started_by=move.started_by,
            started_at=move.started_at,
            cutover_at=move.cutover_at,
            cleanup_after=_cleanup_after(move) if move.cutover_at else None,
            ended_at=move.ended_at,
            detail=move.detail,
            next_step=_next_step(move),
            source_place=place_name(move.source_store) if move.source_store else None,
            target_place=place_name(move.target_store) if move.target_store else None,
        )

    # -- the owner's background worker -------------------------------------------

    def start_worker(self) -> None:
        """Advance migrations in a background thread until `stop_worker`."""
        if self._thread is not None:
            self._wake.set()
            return
        self._thread = threading.Thread(target=self._work, name="cidx-migration", daemon=True)
        self._thread.start()

    def stop_worker(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                self.run(stop=self._stop, pace=_BACKGROUND_PACE)
            except CidxError as exc:
                log.warning("the collection migration stopped: %s", exc.message)
            except Exception:
                log.exception("the collection migration failed")
            self._wake.wait(_IDLE_SECONDS)
            self._wake.clear()


def _finally_read(move: CollectionMigration) -> str:
    return move.target if move.phase == "done" else move.source


def _cleanup_after(move: CollectionMigration) -> float:
    return (move.cutover_at or time.time()) + move.retain_seconds


def _next_step(move: CollectionMigration) -> str:
    phase = move.phase
    if phase in ("prepare", "backfill", "validate"):
        return "The owner copies and validates in the background; reads stay on the source."
    if phase == "invalid":
        return "Roll it back with `cidx collections migration rollback`, then migrate again."
    if phase == "validated" and move.moves_store:
        return (
            "Switch reads, and the project's config, to the new store with `cidx collections "
            "migration cutover`."
        )
    if phase == "validated":
        return "Switch reads with `cidx collections migration cutover`."
    if phase == "cutover":
        return (
            "`cidx collections migration rollback` returns reads to the source; `cidx "
            "collections migration cleanup` drops it once the retention window ends."
        )
    if phase in ("cleanup", "rolling_back"):
        return "The owner finishes it when it next runs."
    return ""
