"""An open project index: the wiring of its parts, its locks and its metrics.

Exactly one process holds an `Engine` for a project at a time (it holds the
owner lock); every command on that project runs against it, in-process or
through the owner socket. The engine opens the parts (`cidx.parts`) and
hands them to an `Indexer` for each sync and a `Searcher` for each search;
it serialises syncs (`write_lock`; searches run concurrently with them),
holds them while the index is paused (`holds`), decides when the store is
flushed, counts what happens for /metrics, and keeps the problems found on
the way for `cidx status`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from cidx.chunking import CHUNKER_VERSION
from cidx.collections import Collections, sync_native_aliases
from cidx.config import (
    DEFAULT_MAX_FILE_SIZE,
    Config,
    collection_name_for,
    load_config,
    new_config,
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
    wanted_change,
)
from cidx.embedding import embedding_settings, model_id
from cidx.errors import (
    CidxError,
    ConfigError,
    LockBusyError,
    ServerError,
    StoreDamagedError,
    StoreError,
    UsageError,
)
from cidx.flush import flush_index
from cidx.formatting import partial_note
from cidx.fsutil import disk_usage
from cidx.holds import Hold, Holds
from cidx.identity import project_identity
from cidx.ignore import IgnoreRules
from cidx.indexer import (
    META_LAST_AT,
    META_LAST_SECONDS,
    META_STORE_DAMAGED,
    DenseStep,
    Indexer,
    ProgressFn,
)
from cidx.lease import LeaseHeldError, WriterLease, held_error, query_note
from cidx.messages import (
    ConfigSetRequest,
    FileIssue,
    FlushReport,
    IndexRequest,
    IndexSummary,
    MigrationReport,
    Progress,
    QueryAnswer,
    QueryRequest,
    SearchOutcome,
    SearchRequest,
    SearchResult,
    StatusReport,
)
from cidx.metrics import Metrics
from cidx.migration import MigrationFn, run_pending
from cidx.owner.lock import read_owner
from cidx.parts import IndexParts, Models
from cidx.project import ProjectPaths
from cidx.projectdata import Placed, project_collections, remove_collections
from cidx.recovery import has_orphaned_data, recreate_config
from cidx.registry import Registry, claim, mirror_aliases
from cidx.search import Searcher
from cidx.state import Manifest, StateDB
from cidx.state.db import state_error
from cidx.state.moves import CollectionMigration
from cidx.storage import StorageMode, open_store, place_key, place_location, storage_location
from cidx.store import NativeAliases, VectorStore
from cidx.store.routed import RoutedStore
from cidx.store.server_settings import ServerSettings

log = logging.getLogger(__name__)

# Writes (points upserted or deleted) or seconds after which the store is
# flushed; see `Engine.maybe_flush`.
FLUSH_AFTER_WRITES = 20_000
FLUSH_AFTER_SECONDS = 300.0


def initialize(
    paths: ProjectPaths,
    *,
    max_file_size: int | None = None,
    force: bool = False,
    storage_mode: StorageMode | None = None,
    server: ServerSettings | None = None,
) -> Config:
    """Create (or with `force`, replace) the project's config. Caller holds the lock.

    A `storage_mode` other than an existing index's is written to its config:
    the index moves there when it next opens (`cidx.migration`). With `force`,
    a config that cannot be read is replaced too: the new index then owns
    none of the project's collections, so every one of them goes. The
    embedding cache stays, so rebuilding embeds nothing that was embedded.
    `storage` (with `server` for "server") chooses where a new index lives;
    moving an existing one elsewhere is a migration, not an init.
    """
    old: Config | None = None
    unreadable = False
    if paths.exists():
        try:
            old = load_config(paths)
        except ConfigError:
            if not force:
                raise
            unreadable = True
        if old is not None and not force:
            _refuse_server_move(paths, old, storage_mode, server)
            changes: dict[str, object] = {}
            if max_file_size is not None and max_file_size != old.max_file_size:
                changes["max_file_size"] = max_file_size
            if storage_mode is not None and storage_mode != old.storage_mode:
                changes["storage_mode"] = storage_mode
            if changes:
                old = old.model_copy(update=changes)
                save_config(paths, old)
            return old
    if not force and old is None and storage_mode != "server" and has_orphaned_data(paths):
        # Data without a config (it was deleted): keep the data.
        config = recreate_config(paths, max_file_size=max_file_size).config
        if storage_mode is not None and storage_mode != config.storage_mode:
            config = config.model_copy(update={"storage_mode": storage_mode})
            save_config(paths, config)
        return config
    config = new_config(
        paths,
        embedding=embedding_settings(),
        chunker_version=CHUNKER_VERSION,
        max_file_size=max_file_size if max_file_size is not None else DEFAULT_MAX_FILE_SIZE,
        project_id=old.project_id if old is not None else None,
        storage_mode=storage_mode or (old.storage_mode if old is not None else "local"),
        server=server if storage_mode == "server" else None,
    )
    if config.server is not None:
        _claim_server_collection(paths, config, old, force)
    # New config first; the old collections are removed only once nothing
    # points at them any more.
    save_config(paths, config)
    if old is not None or unreadable:
        _drop_replaced(paths, config, old)
    return config


def _refuse_server_move(
    paths: ProjectPaths, old: Config, storage: StorageMode | None, server: ServerSettings | None
) -> None:
    """UsageError when an init asks to move an index to or from a Qdrant server
    (that is `cidx storage migrate`; moves between the embedded stores are
    migrations too, `cidx.migration`)."""
    if storage is None or "server" not in (storage, old.storage_mode):
        return
    url = server.url if server is not None else None
    old_url = old.server.url if old.server is not None else None
    if storage == old.storage_mode and url == old_url:
        return
    here = f"on {old_url}" if old_url else f"in {old.storage_mode} storage"
    to = f"--to {storage}" + (f" --qdrant-url {url}" if url else "")
    there = f"--storage {storage}" + (f" --qdrant-url {url}" if url else "")
    raise UsageError(
        f"The index of {paths.root} is {here}; `cidx init` does not move an index to or from "
        f"a Qdrant server. Move it without downtime with `cidx storage migrate {to}`, or "
        f"start a new, empty index there (cached embeddings are kept) with `cidx init "
        f"--force {there}`."
    )


def _claim_server_collection(
    paths: ProjectPaths, config: Config, old: Config | None, force: bool
) -> None:
    """Refuse (or with `force`, empty) a server collection that a new index's
    name points at but no config of this project did.

    Names come from the project's identity, so every clone of one repository
    names the same collection on a server. Two clones writing it would each
    trust their own manifest of what it holds; one writer per project across
    machines needs a lease held in the server, which is not built yet, so a
    new index never joins a collection it finds filled.
    """
    if old is not None and old.server == config.server and old.collection == config.collection:
        return  # this project's own collection: `_drop_replaced` empties it
    assert config.server is not None
    store = open_store(storage_location(paths, config))
    try:
        if not store.collection_exists(config.collection):
            return
        if force:
            store.drop_collection(config.collection)
            return
    finally:
        store.close()
    raise UsageError(
        f"The collection {config.collection} exists on {config.server.url} already: the index "
        f"of another clone of {config.identity.id} (on this or another machine), or this "
        "project's own from before its .code-indexer/ was removed. cidx does not let two "
        "clones write one server collection yet (that needs a lease held in the server), so "
        "it will not use it. If it is this project's old index, replace it: `cidx init "
        f"--force --storage server --qdrant-url {config.server.url}`; otherwise keep this "
        "clone's index local (`cidx init --storage local`)."
    )


def _drop_from_server(paths: ProjectPaths, old: Config) -> None:
    """Empty the replaced index's collection on its server: manifest first, then
    the data, so a crash in between never leaves a manifest that lies."""
    db = StateDB(paths.state_db, collection=old.collection)
    try:
        store = open_store(storage_location(paths, old))
        try:
            collections = Collections(store, db, old.embedding.dim, old.collection)
            with db.transaction() as tx:
                db.manifest(old.collection).clear(tx)
            try:
                collections.drop(old.collection)
            except ServerError as exc:
                # The new index does not need the server the old one was on.
                log.warning(
                    "left the replaced collection %s in place: %s", old.collection, exc.message
                )
        finally:
            store.close()
    finally:
        db.close()


def _drop_replaced(paths: ProjectPaths, config: Config, old: Config | None) -> None:
    """Remove what the index `config` replaced: the old collection (where the
    old config kept it), or (the old config unreadable) every collection of
    the project, in its own store and in the global store. The new index may
    have the old one's name (the same project, the same model): its data
    goes too, and opening creates it empty."""
    if old is not None and old.storage_mode == "server":
        _drop_from_server(paths, old)
        return
    if old is not None:
        gone = [Placed(storage_location(paths, old), old.collection)]
    else:
        gone = project_collections(paths, None)
    db = StateDB(paths.state_db, collection=old.collection if old is not None else None)
    try:
        remove_collections(paths, gone, db)
    finally:
        db.close()


def _note(note: str) -> None:
    log.warning("%s", note)
    # One-shot commands log to the file only; this note is for the user too.
    if not any(type(h) is logging.StreamHandler for h in logging.getLogger("cidx").handlers):
        print(f"cidx: {note}", file=sys.stderr)


def _to_bundled_model(paths: ProjectPaths, config: Config) -> Config:
    """Move a read-only snapshot's private index built with another embedding
    model to the bundled one (an index this process owns migrates instead,
    see `Engine._follow_model`).

    Vectors of two models cannot share a collection, so the index gets a new
    collection (named for the model), whose manifest starts empty: the next
    sync is a full rebuild. The old collection goes once the config no
    longer points at it. Vectors the cache holds for the old model are
    simply never asked for again and age out. Caller holds the owner lock.
    """
    wanted = model_id(config.embedding.max_length)
    if config.embedding.model_id == wanted:
        return config
    _note(
        f"The index in {paths.index_dir} was built with the embedding model "
        f"{config.embedding.model_id}; rebuilding it with the bundled model {wanted} "
        "(one full re-index)."
    )
    moved = config.model_copy(
        update={
            "embedding": embedding_settings(config.embedding.max_length),
            "collection": collection_name_for(
                config.storage_mode, config.identity.id, wanted, paths.root, config.naming_scheme
            ),
        }
    )
    save_config(paths, moved)
    db = StateDB(paths.state_db)
    try:
        with db.transaction() as tx:  # old names keep reaching the project's data
            db.aliases.retarget(tx, config.collection, moved.collection)
        if moved.storage_mode == "global":
            mirror_aliases(paths.root, db.aliases.all().values())
    finally:
        db.close()
    _drop_replaced(paths, moved, config)
    return moved


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
        if created:
            config = initialize(paths, max_file_size=max_file_size)
        elif paths.index_location is None:
            # A change of the embedding model is a collection migration, run by
            # the engine once open (`_follow_model`).
            config = run_pending(paths, on_migration)
        else:
            # A read-only snapshot: never moved between stores. Its own copy
            # of a local store follows the model like any index.
            config = load_config(paths)
            if config.storage_mode == "local":
                config = _to_bundled_model(paths, config)
        if config.storage_mode == "global" and paths.index_location is None:
            with Registry() as registry:
                claim(
                    registry,
                    config.collection,
                    root=paths.root,
                    project_id=config.identity.id,
                    model=config.embedding.model_id,
                )
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
        change = wanted_change(self.paths, self.config)
        if change is not None and self.migrator.active() is None:
            _note(change.note)
            self.migrator.start(
                self.collection,
                change.target,
                reembed=change.reembed,
                started_by=change.started_by,
            )
        if self.migrator.active() is not None:
            self.migrator.start_worker()

    def set_setting(self, request: ConfigSetRequest, progress: ProgressFn) -> MigrationReport:
        """`cidx config set`: the config with the setting, saved; and when the
        setting changes the collection's name, its migration, copied and cut
        over here (the owner's worker finishes it if this stops)."""
        with self.writing():
            changed = with_setting(self.config, request.key, request.value)
            if changed != self.config:
                self._use_config(changed)
        self._follow_model()
        move = self.migrator.active()
        if move is None:
            done = f"{request.key} is {request.value}; the collection is {self.collection}."
            return MigrationReport(str(self.paths.root), done, None)

        def told(m: CollectionMigration) -> None:
            total = m.total or 0
            progress(Progress("migrate", m.copied, total, min(m.copied, total), total))

        self.migrator.run(on_progress=told)
        view = self.migrator.view(self.migrator.table.get(move.id) or move)
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
        """A migration dropped SOURCE and made its name an alias of TARGET: a
        SOURCE left in the global store leaves its registry, and the registry
        and a server keep the project's aliases too (as `cidx.renaming` does)."""
        left = move.source_store if move.moves_store else None
        if left is not None and place_location(self.paths, left).mode == "global":
            with Registry() as registry:
                registry.forget(move.source)
        if self.config.storage_mode == "global":
            mirror_aliases(self.paths.root, self.collections.aliases())
        store = self.parts.store
        home = store.store_of(self.collection) if isinstance(store, RoutedStore) else store
        if isinstance(home, NativeAliases):
            sync_native_aliases(home, self.collections, self.config.collection)

    def _use_config(self, moved: Config) -> None:
        """Save `moved` and work by it from now on (its collection, model and place)."""
        save_config(self.paths, moved)
        if moved.storage_mode == "global":
            with Registry() as registry:
                claim(
                    registry,
                    moved.collection,
                    root=self.paths.root,
                    project_id=moved.identity.id,
                    model=moved.embedding.model_id,
                )
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
        self.metrics.reused.inc(step.chunks - step.embedded)
        self.maybe_flush(step.chunks)

    def check(self) -> list[str]:
        """Cheap consistency checks (milliseconds): is the store readable, and
        does it hold as many points as the manifest lists chunks?"""
        mark = self.manifest.get_mark(META_STORE_DAMAGED)
        if mark is not None:
            return [
                f"The index store is damaged ({mark}). Run `cidx index` to rebuild it, "
                "reusing cached embeddings."
            ]
        try:
            points = self.store.count(self.collection)
        except StoreDamagedError as exc:
            return [exc.message]
        _, chunks = self.manifest.counts()
        if points != chunks:
            return [
                f"The index store holds {points:,} points but the manifest lists {chunks:,} "
                "chunks: it was changed or lost outside cidx. Run `cidx index` to repair it."
            ]
        return []

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
        self._take_lease()
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

    def _take_lease(self) -> None:
        """LeaseHeldError when another machine (or process) writes this
        collection of a shared server."""
        if self.lease is None or self.lease.held:
            return
        holder = self.lease.acquire()
        if holder is not None:
            raise held_error(self.paths.root, self.collection, holder)

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
            self._record_sync(summary)
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

    def _record_sync(self, summary: IndexSummary) -> None:
        m = self.metrics
        m.syncs.inc()
        m.embedded.inc(summary.chunks_embedded)
        m.reused.inc(summary.chunks_reused)
        m.files_changed.inc(summary.files_changed + summary.files_deleted)
        m.sync_seconds.observe(summary.seconds)
        m.last_sync.set(time.time())

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
        if syncing and self.lease is not None:
            # Any number of machines query; the one writing keeps it current.
            # Its claim is trusted until it expires: no request per query.
            holder = self.lease.refused()
            if holder is None:
                try:
                    self._take_lease()
                except LeaseHeldError as exc:
                    holder = exc.holder
            if holder is not None:
                syncing, notes = False, [query_note(holder)]
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
        if requests:
            each = (time.perf_counter() - started) / len(requests)
            for _ in requests:
                self.metrics.query_seconds.observe(each)
            self.metrics.queries.inc(len(requests))
        return answers

    def status(self) -> StatusReport:
        files, chunks = self.manifest.counts()
        self.problems = self.check()
        try:
            points = self.store.count(self.collection)
        except StoreDamagedError as exc:
            self._note_damage(exc)
            points = 0
        last_at = self.manifest.get_mark(META_LAST_AT)
        last_seconds = self.manifest.get_mark(META_LAST_SECONDS)
        owner = read_owner(self.paths)
        survey = self.indexer().survey()
        return StatusReport(
            root=str(self.paths.root),
            index_dir=str(self.paths.index_dir),
            storage_mode=self.config.storage_mode,
            storage_path=self.parts.location.where(self.collection),
            collection=self.collection,
            model=self.config.embedding.model_id,
            files=files,
            chunks=chunks,
            points=points,
            disk_bytes=self.disk_bytes(),
            pending=survey.pending,
            last_index_at=(
                datetime.fromtimestamp(float(last_at), UTC).isoformat(timespec="seconds")
                if last_at
                else None
            ),
            last_index_seconds=float(last_seconds) if last_seconds else None,
            owner_pid=owner.pid if owner else None,
            owner_kind=owner.kind if owner else None,
            project_id=self.config.identity.id,
            project_id_now=self._identity_now(),
            files_empty=survey.empty,
            files_skipped=survey.skipped,
            files_failed=survey.failed,
            problems=list(self.problems),
            pauses=[hold.view() for hold in self.holds.active()],
            migration=self.migrator.view(),
            chunks_pending=share.pending if (share := self.manifest.dense_share()) else 0,
        )

    def _identity_now(self) -> str | None:
        """The id the git remote gives the project now, when it is not the one its
        collections are named after (a remote was added or changed)."""
        now = project_identity(self.paths.root, self.config.project_id)
        if now.source == "git-remote" and now.id != self.config.identity.id:
            return now.id
        return None

    def disk_bytes(self) -> int:
        """What this index takes on disk: its folder, and its collections where
        they live elsewhere (a shared store)."""
        used = disk_usage(self.paths.index_dir)
        if self.parts.location.mode != "local":
            used += self.parts.location.usage([self.collection])
        return used

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
