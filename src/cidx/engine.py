"""An open project index: the wiring of its parts, its locks and its metrics.

Exactly one process holds an `Engine` for a project at a time (it holds the
owner lock); every command on that project runs against it, in-process or
through the owner socket. The engine opens the parts (`cidx.parts`) and
hands them to an `Indexer` for each sync and a `Searcher` for each search;
it serialises syncs (`write_lock`; searches run concurrently with them),
holds them while the index is paused (`holds`), decides when the store is
flushed, counts what happens for /metrics, and keeps the problems found on
the way for `cidx status`. The config it opens with comes from
`cidx.initialize`; collection migrations (a new model, name or store) are
`cidx.dualwrite`'s; the writer lease of a shared server is `cidx.lease`'s;
the status report is `cidx.status`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence

from cidx.collections import Collections
from cidx.config import (
    Config,
    save_config,
    with_setting,
)
from cidx.densework import DenseWorker
from cidx.dualwrite import (
    MODEL_CHANGE,
    NAMING_CHANGE,
    MigrationParts,
    Migrator,
    SideStores,
    config_after,
    config_for_reads,
    finish_config_change,
    follow_config,
    names_after_cleanup,
)
from cidx.errors import (
    CidxError,
    LockBusyError,
    StoreDamagedError,
    StoreError,
    UsageError,
)
from cidx.flush import flush_index
from cidx.formatting import partial_note
from cidx.holds import Hold, Holds
from cidx.ignore import IgnoreRules
from cidx.indexer import (
    META_STORE_DAMAGED,
    DenseStep,
    Indexer,
    ProgressFn,
)
from cidx.initialize import claim_global, opening_config
from cidx.lease import WriterLease, sync_refused, take_lease
from cidx.messages import (
    ConfigSetRequest,
    FileIssue,
    FlushReport,
    IndexRequest,
    IndexSummary,
    MigrationReport,
    QueryAnswer,
    QueryRequest,
    SearchOutcome,
    SearchRequest,
    SearchResult,
    StatusReport,
)
from cidx.metrics import Metrics
from cidx.migration import MigrationFn
from cidx.parts import IndexParts, Models
from cidx.project import ProjectPaths
from cidx.search import Searcher
from cidx.state import Manifest, StateDB
from cidx.state.db import state_error
from cidx.state.moves import CollectionMigration
from cidx.status import disk_bytes, status_report, store_problems
from cidx.storage import open_store, place_key, place_location, storage_location
from cidx.store import VectorStore
from cidx.store.routed import RoutedStore

# Writes (points upserted or deleted) or seconds after which the store is
# flushed; see `Engine.maybe_flush`.
FLUSH_AFTER_WRITES = 20_000
FLUSH_AFTER_SECONDS = 300.0


class Engine:
    """One project's open index. Create with `Engine.open` while holding the owner lock."""

    def __init__(self, paths: ProjectPaths, config: Config, models: Models | None = None) -> None:
        self.paths = paths
        self.config = config
        location = storage_location(paths, config)
        db = StateDB(paths.state_db, collection=config.collection)
        try:
            # Routed: while the index moves to another store, its copy there
            # is one more collection of the same store (`cidx.dualwrite`).
            store = RoutedStore(open_store(location))
        except BaseException:
            db.close()
            raise
        self.sides = SideStores(
            store,
            place_key(config.storage_mode, config.server),
            lambda key: open_store(place_location(paths, key)),
        )
        self.parts = IndexParts(
            paths=paths,
            config=config,
            location=location,
            db=db,
            store=store,
            collections=Collections(
                store, db, config.embedding.dim, config.collection, model=config.embedding.model_id
            ),
            models=models or Models(config.embedding.max_length),
        )
        self.write_lock = threading.RLock()
        # A store shared between machines: one writer at a time, by a lease in it.
        claims = store.writer_claims()
        self.lease = WriterLease(claims, config.collection) if claims is not None else None
        # Collection migrations (`cidx.dualwrite`), advanced in the background.
        self.migrator = Migrator(self._migration_parts())
        # Pauses (`cidx pause`, `cidx clone`): no write starts while one holds.
        self.holds = Holds()
        # The dense pass a staged sync leaves (long-lived owners only).
        self.dense = DenseWorker(
            lambda: self.indexer().dense_pass(), self.writing, self._dense_stepped
        )
        self._writer = threading.local()
        # Nonzero while a sync runs: lets `--no-wait` callers see a busy owner.
        self.syncing = 0
        # Used by syncs only (under write_lock): the class is not thread-safe.
        self.rules = IgnoreRules(paths.root)
        self.metrics = Metrics()
        self.parts.collections.on_alias = self.metrics.alias_resolutions.inc
        # Sizes are read when scraped, not after every sync: most processes
        # never expose metrics.
        self.metrics.on_scrape = self._read_sizes
        self.metrics.points.read = lambda: float(self.store.count(self.collection))
        self.metrics.watch_migration(self.migrator.view)
        self._unflushed = 0
        self._flushed_at = time.monotonic()
        self.opened_at = time.time()
        # Damage or drift found when opening or by the last sync (sentences
        # naming the repair); shown by status and by searches that skip the sync.
        self.problems: list[str] = []
        # This process created the index: the first sync says so, once.
        self.created = False
        # Set by owners that keep running: a large sync stores BM25 first and
        # leaves the dense vectors to the background dense pass (`densework`).
        self.staged = False

    @classmethod
    def open(
        cls,
        paths: ProjectPaths,
        *,
        max_file_size: int | None = None,
        models: Models | None = None,
        on_migration: MigrationFn | None = None,
    ) -> tuple[Engine, bool]:
        """Open the project's index, creating it if needed: (engine, created).

        Pending migrations run first (`cidx.migration`; `on_migration` is told
        how one advances). Callers that create an index for a user who did
        not ask for one check the tree first (`cidx.walk.refuse_large_first_index`).
        """
        created = not paths.exists()
        config = opening_config(paths, max_file_size=max_file_size, on_migration=on_migration)
        engine = cls(paths, config, models)
        engine.created = created
        try:
            if paths.index_location is None:
                # A move to another store under way: its sides' stores, and
                # the config naming the side reads use.
                engine.migrator.follow()
            engine.collections.ensure(engine.collection)
            engine.problems = engine.check()
            if paths.index_location is None:
                engine._follow_model()
        except BaseException:
            engine.close()
            raise
        return engine, created

    # -- collection migrations -----------------------------------------------

    def _migration_parts(self) -> MigrationParts:
        return MigrationParts(
            self.parts.collections,
            self.parts.models,
            self.writing,
            self._migrated,
            self._switched,
            self.sides,
            self._migration_done,
        )

    def _follow_model(self) -> None:
        """Resume a collection migration, or start one to the bundled model when
        the index holds another one's vectors (`cidx.dualwrite`)."""
        follow_config(self.migrator, self.paths, self.config, self.collection)

    def set_setting(self, request: ConfigSetRequest, progress: ProgressFn) -> MigrationReport:
        """`cidx config set`: the config with the setting, saved; and when the
        setting changes the collection's name, its migration, copied and cut
        over here (the owner's worker finishes it if this stops)."""
        with self.writing():
            changed = with_setting(self.config, request.key, request.value)
            if changed != self.config:
                self._use_config(changed)
        self._follow_model()
        view = finish_config_change(self.migrator, progress)
        done = f"{request.key} is {request.value}; the collection is {self.collection}."
        return MigrationReport(str(self.paths.root), done, view)

    def _migrated(self, move: CollectionMigration) -> None:
        """A migration's SOURCE is about to go: the config follows it to TARGET."""
        moved = config_after(self.config, move)
        if moved is not None:
            self._use_config(moved)

    def _switched(self, move: CollectionMigration) -> None:
        """Reads of an index moving to another store switched sides (or the index
        opened): the config names the side they use, and its store."""
        moved = config_for_reads(self.config, move)
        if moved is not None:
            self._use_config(moved)

    def _migration_done(self, move: CollectionMigration) -> None:
        names_after_cleanup(self.paths, self.config, self.collections, self.store, move)

    def _use_config(self, moved: Config) -> None:
        """Save `moved` and work by it from now on (its collection, model and place)."""
        save_config(self.paths, moved)
        claim_global(self.paths, moved)
        with self.write_lock:
            self.config = moved
            embedding = moved.embedding
            collections = Collections(
                self.store, self.db, embedding.dim, moved.collection, model=embedding.model_id
            )
            collections.on_alias = self.metrics.alias_resolutions.inc
            models = self.parts.models.variant(embedding.model_id) or self.parts.models
            self.parts = dataclasses.replace(
                self.parts,
                config=moved,
                location=storage_location(self.paths, moved),
                collections=collections,
                models=models,
            )
            self.migrator.parts = self._migration_parts()

    # -- the parts, by name --------------------------------------------------

    @property
    def db(self) -> StateDB:
        return self.parts.db

    @property
    def store(self) -> VectorStore:
        return self.parts.store

    @property
    def collections(self) -> Collections:
        return self.parts.collections

    @property
    def collection(self) -> str:
        """The collection reads and writes go to."""
        return self.parts.collections.primary

    @property
    def manifest(self) -> Manifest:
        return self.parts.db.manifest(self.collection)

    @property
    def long_lived(self) -> bool:
        return self.parts.models.long_lived

    @long_lived.setter
    def long_lived(self, value: bool) -> None:
        """Set by processes that keep the index open and answer many queries
        (before the model is loaded: it decides how the model is loaded)."""
        self.parts.models.long_lived = value

    def indexer(self) -> Indexer:
        return Indexer(self.parts, self.rules, on_writes=self.maybe_flush)

    def _dense_stepped(self, step: DenseStep) -> None:
        self.metrics.embedded.inc(step.embedded)
        self.metrics.reused.inc(step.reused)
        self.maybe_flush(step.chunks)

    def check(self) -> list[str]:
        return store_problems(self.parts)

    def _note_damage(self, exc: StoreDamagedError) -> None:
        """Remember a damaged store, so that the next sync rebuilds it."""
        with contextlib.suppress(CidxError):
            self.manifest.set_mark(META_STORE_DAMAGED, exc.detail)
        self.problems = [exc.message]

    # -- writing and pausing ---------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold `write_lock` for a write, once no pause holds the index.

        The holds are checked with the lock held and waited for without it,
        so a pause waits only for the write in progress, never for one
        queued behind it. Nested writes (an index of paths runs a sync) do
        not wait again. `holds.Stopping` when the index closes meanwhile.
        """
        if getattr(self._writer, "depth", 0):
            with self.write_lock:
                self._writer.depth += 1
                try:
                    yield
                finally:
                    self._writer.depth -= 1
            return
        take_lease(self.lease, self.paths.root, self.collection)
        while True:
            self.write_lock.acquire()
            if not self.holds.closed:
                break
            self.write_lock.release()
            self.holds.wait_open()
        self._writer.depth = 1
        try:
            yield
        finally:
            self._writer.depth = 0
            self.write_lock.release()

    def pause(
        self,
        by: str,
        pid: int,
        seconds: float,
        *,
        token: str | None = None,
        wait: float | None = None,
    ) -> tuple[Hold, FlushReport | None]:
        """Hold writes for `seconds` and flush: (the hold, the flush report).

        Waits for a sync in progress to finish (at most `wait` seconds:
        `LockBusyError` after that, and nothing is held). Renewing a hold
        still in effect (its `token`) only moves its deadline.
        """
        hold, new = self.holds.add(by, pid, seconds, token)
        if not new:
            return hold, None
        try:
            if not self.write_lock.acquire(timeout=-1 if wait is None else wait):
                raise LockBusyError(
                    f"Gave up after waiting {wait:g} s for the sync in progress on the index "
                    f"of {self.paths.root} to finish, before pausing it. Run the command "
                    "again, or give it longer with --wait-timeout SECONDS."
                )
            try:
                report = self.force_flush()
            finally:
                self.write_lock.release()
        except BaseException:
            self.holds.release(hold.token)
            raise
        return hold, report

    def force_flush(self, collection: str | None = None) -> FlushReport:
        """Every collection of the project (or `collection`) durably on disk,
        and the state database's WAL checkpointed (see `cidx.flush`)."""
        with self.write_lock:
            report = flush_index(self.parts, collection)
            self._unflushed = 0
            self._flushed_at = time.monotonic()
            return report

    # -- operations --------------------------------------------------------

    def sync(
        self,
        *,
        clear: bool = False,
        paths: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
    ) -> IndexSummary:
        with self.writing():
            self.syncing += 1
            try:
                staged = self.staged
                try:
                    summary = self.indexer().sync(
                        clear=clear, paths=paths, progress=progress, staged=staged
                    )
                except StoreDamagedError as exc:
                    # Found damaged while writing: marked, the same sync again
                    # sets the store aside and rebuilds it (once).
                    self._note_damage(exc)
                    summary = self.indexer().sync(progress=progress, staged=staged)
            except Exception:
                self.metrics.errors.inc()
                raise
            finally:
                self.syncing -= 1
            summary.initialized, self.created = self.created, False
            if summary.chunks_pending:
                self.dense.wake()
            self.metrics.record_sync(summary)
            self.problems = self.check()
            return summary

    def index(self, request: IndexRequest, progress: ProgressFn | None = None) -> IndexSummary:
        """What `cidx index` and the owner's "index" request do: a full sync, a
        rebuild (`clear`), or a sync of just `request.paths` (widened by the
        indexer when an ignore file is among them).

        UsageError when none of the paths exists or was ever indexed: a typo
        would otherwise sync nothing without a word.
        """
        move = self.migrator.active()
        if move is not None and move.started_by in (MODEL_CHANGE, NAMING_CHANGE):
            # `cidx index` brings the index up to date: with the new model
            # and name too.
            self.migrator.run()
        if request.clear or not request.paths:
            return self.sync(clear=request.clear, progress=progress)
        with self.writing():
            absent = [p for p in request.paths if not os.path.lexists(self.paths.root / p)]
            known = self.manifest.files(absent) if absent else {}
            summary = self.sync(paths=request.paths, progress=progress)
        missing = [
            rel for rel in absent if not any(p == rel or p.startswith(rel + "/") for p in known)
        ]
        if missing and len(missing) == len(request.paths):
            listing = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
            raise UsageError(
                f"Nothing to index: {listing} does not exist in {self.paths.root}, and nothing "
                "is indexed there. Check the path (it is relative to the current folder)."
            )
        for rel in missing:
            summary.warnings.append(
                FileIssue(rel, "not_found", "no such file or folder, and nothing indexed there")
            )
        return summary

    def _read_sizes(self) -> None:
        files, chunks = self.manifest.counts()  # one scan of the manifest for both
        self.metrics.files.set(files)
        self.metrics.chunks.set(chunks)

    def search(self, request: QueryRequest) -> list[SearchResult]:
        return Searcher(self.parts).search(request)

    def search_outcome(
        self, request: SearchRequest, progress: ProgressFn | None = None, *, sync: bool = True
    ) -> SearchOutcome:
        """A sync (if asked and `sync`), then the searches, timed.

        A search that finds the store damaged leaves the mark that makes a
        sync rebuild it: when syncing is allowed, that happens here, and the
        searches run again on the rebuilt store.
        """
        syncing = request.sync and sync
        notes: list[str] = []
        refused = sync_refused(self.lease) if syncing else None
        if refused is not None:
            syncing, notes = False, [refused]
        summary = self.sync(progress=progress) if syncing else None
        started = time.perf_counter()
        try:
            answers = self.search_batch(request.queries, request.collection)
        except StoreDamagedError:
            if not syncing:
                raise
            summary = self.sync(progress=progress)
            started = time.perf_counter()
            answers = self.search_batch(request.queries, request.collection)
        # After a sync its summary tells what was repaired; without one, the
        # caller learns here that the answers come from a damaged index.
        warnings = list(self.problems) if summary is None else []
        partial = next((a for a in answers if a.partial), None)
        if partial is not None:
            warnings.append(partial_note(partial.embedded_share))
        model = self.collections.model_of(request.collection or self.collection)
        if model and self.parts.models.variant(model) is None:
            warnings.append(
                f"Answered by keywords only: the index holds vectors of the model {model}, "
                "which this cidx cannot run, while it migrates to the bundled model "
                "(`cidx collections migration status` shows how far)."
            )
        return SearchOutcome(answers, summary, time.perf_counter() - started, [*notes, *warnings])

    def search_batch(
        self, requests: list[QueryRequest], collection: str | None = None
    ) -> list[QueryAnswer]:
        """Answer `requests` from the project's collection, or from `collection`
        (a name or an alias of one)."""
        started = time.perf_counter()
        try:
            if collection is not None and not self.collections.exists(collection):
                raise UsageError(
                    f"There is no collection or alias {collection!r} in this index. "
                    "`cidx project info` lists its collections and aliases."
                )
            searcher = Searcher(self.parts, collection=collection)
            try:
                answers = searcher.search_batch(requests)
            except StoreError:
                # A migration's cleanup dropped the collection while this
                # search read it: its name now reaches the new one.
                if self.collections.resolve(collection or self.collection) == searcher.collection:
                    raise
                answers = Searcher(self.parts, collection=collection).search_batch(requests)
        except StoreDamagedError as exc:
            self._note_damage(exc)
            raise
        except sqlite3.Error as exc:  # the searcher reads the manifest directly
            raise state_error(self.db.path, exc) from None
        self.metrics.record_queries(len(requests), time.perf_counter() - started)
        return answers

    def status(self) -> StatusReport:
        self.problems = self.check()
        try:
            points = self.store.count(self.collection)
        except StoreDamagedError as exc:
            self._note_damage(exc)
            points = 0
        return status_report(
            self.parts,
            points=points,
            survey=self.indexer().survey(),
            problems=list(self.problems),
            pauses=[hold.view() for hold in self.holds.active()],
            migration=self.migrator.view(),
        )

    def disk_bytes(self) -> int:
        return disk_bytes(self.parts)

    def maybe_flush(self, writes: int) -> None:
        """Flush the store after many writes or a long while.

        Every update is already durable in the shard's write-ahead log; a
        flush persists segments so the log can be truncated. It costs a few
        hundred milliseconds of fsync, so doing it after every small sync
        would dominate a live owner's save-to-searchable latency.
        """
        self._unflushed += writes
        if self._unflushed and (
            self._unflushed >= FLUSH_AFTER_WRITES
            or time.monotonic() - self._flushed_at >= FLUSH_AFTER_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        with self.write_lock:
            self.store.flush()
            self._unflushed = 0
            self._flushed_at = time.monotonic()

    def close(self) -> None:
        self.holds.stop_waiting()
        self.dense.stop()
        self.migrator.stop_worker()
        if self.lease is not None:
            self.lease.release()
        with self.write_lock:
            self.sides.close()
            self.store.close()
            self.db.close()
