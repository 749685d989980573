"""An open project index: config, state DB, vector store and models together.

Exactly one process holds an `Engine` for a project at a time (it holds the
owner lock); every command on that project runs against it, in-process or
through the owner socket. Syncs are serialised by `write_lock`; searches run
concurrently with them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from cidx.chunking import CHUNKER_VERSION
from cidx.config import Config, collection_name, load_config, new_config, save_config
from cidx.embedding import embedding_settings, model_id
from cidx.errors import CidxError, ConfigError, StoreDamagedError, UsageError
from cidx.fsutil import disk_usage
from cidx.ignore import IgnoreRules
from cidx.messages import (
    FileIssue,
    IndexRequest,
    IndexSummary,
    QueryAnswer,
    QueryRequest,
    SearchOutcome,
    SearchRequest,
    SearchResult,
    StatusReport,
)
from cidx.metrics import Metrics
from cidx.owner.lock import read_owner
from cidx.project import ProjectPaths
from cidx.sparse import SparseEncoder
from cidx.state import StateDB
from cidx.store import VectorStore, open_store

if TYPE_CHECKING:
    from cidx.embedding import Embedder
    from cidx.indexer import ProgressFn


log = logging.getLogger(__name__)

# Writes (points upserted or deleted) or seconds after which the store is
# flushed; see `Engine.maybe_flush`.
FLUSH_AFTER_WRITES = 20_000
FLUSH_AFTER_SECONDS = 300.0


def initialize(
    paths: ProjectPaths, *, max_file_size: int | None = None, force: bool = False
) -> Config:
    """Create (or with `force`, replace) the project's config. Caller holds the lock.

    With `force`, a config that cannot be read is replaced too: the new index
    then owns nothing under qdrant-data/, so every collection there goes. The
    embedding cache stays, so rebuilding embeds nothing that was embedded.
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
            if max_file_size is not None and max_file_size != old.max_file_size:
                old = old.model_copy(update={"max_file_size": max_file_size})
                save_config(paths, old)
            return old
    if not force and old is None and paths.qdrant_dir.is_dir():
        # Data without a config (it was deleted): keep the data.
        from cidx.recovery import recreate_config

        return recreate_config(paths, max_file_size=max_file_size).config
    config = new_config(
        paths,
        embedding=embedding_settings(),
        chunker_version=CHUNKER_VERSION,
        **({"max_file_size": max_file_size} if max_file_size is not None else {}),
    )
    # New config first; the old collection is removed only once nothing
    # points at it any more.
    save_config(paths, config)
    if old is not None or unreadable:
        store = open_store(paths, config)
        try:
            for name in [old.collection] if old is not None else store.list_collections():
                if name != config.collection and store.collection_exists(name):
                    store.drop_collection(name)
        finally:
            store.close()
        db = StateDB(paths.state_db)
        try:
            with db.transaction() as tx:
                db.clear_files(tx)
        finally:
            db.close()
    return config


def _to_bundled_model(paths: ProjectPaths, config: Config) -> Config:
    """Move an index built with another embedding model to the bundled one.

    Vectors of two models cannot share a collection, so the index gets a new
    collection (named for the model) and an empty manifest, which makes the
    next sync a full rebuild; the old collection is dropped once the config
    no longer points at it. Vectors the cache holds for the old model are
    simply never asked for again and age out. Caller holds the owner lock.
    """
    wanted = model_id(config.embedding.max_length)
    if config.embedding.model_id == wanted:
        return config
    note = (
        f"The index in {paths.index_dir} was built with the embedding model "
        f"{config.embedding.model_id}; rebuilding it with the bundled model {wanted} "
        "(one full re-index)."
    )
    log.warning("%s", note)
    # One-shot commands log to the file only; this note is for the user too.
    if not any(type(h) is logging.StreamHandler for h in logging.getLogger("cidx").handlers):
        print(f"cidx: {note}", file=sys.stderr)
    moved = config.model_copy(
        update={
            "embedding": embedding_settings(config.embedding.max_length),
            "collection": collection_name(config.project_id, wanted),
        }
    )
    db = StateDB(paths.state_db)
    try:
        with db.transaction() as tx:
            db.clear_files(tx)
    finally:
        db.close()
    save_config(paths, moved)
    store = open_store(paths, config)
    try:
        if store.collection_exists(config.collection):
            store.drop_collection(config.collection)
    finally:
        store.close()
    return moved


class Engine:
    """One project's open index. Create with `Engine.open` while holding the owner lock."""

    def __init__(self, paths: ProjectPaths, config: Config) -> None:
        self.paths = paths
        self.config = config
        self.db = StateDB(paths.state_db)
        self.store: VectorStore = open_store(paths, config)
        self.write_lock = threading.RLock()
        # Nonzero while a sync runs: lets `--no-wait` callers see a busy owner.
        self.syncing = 0
        self._model_lock = threading.Lock()
        self._embedder: Embedder | None = None
        # Set by processes that keep the index open and answer many queries.
        self.long_lived = False
        # Used by syncs only (under write_lock): the class is not thread-safe.
        self.rules = IgnoreRules(paths.root)
        self.metrics = Metrics()
        # Sizes are read when scraped, not after every sync: most processes
        # never expose metrics.
        self.metrics.on_scrape = self._read_sizes
        self.metrics.points.read = lambda: float(self.store.count(self.config.collection))
        self._unflushed = 0
        self._flushed_at = time.monotonic()
        self.opened_at = time.time()
        # Damage or drift found when opening or by the last sync (sentences
        # naming the repair); shown by status and by searches that skip the sync.
        self.problems: list[str] = []

    @classmethod
    def open(cls, paths: ProjectPaths, *, max_file_size: int | None = None) -> tuple[Engine, bool]:
        """Open the project's index, creating it if needed: (engine, created).

        Callers that create an index for a user who did not ask for one
        check the tree first (`cidx.walk.refuse_large_first_index`).
        """
        created = not paths.exists()
        if created:
            config = initialize(paths, max_file_size=max_file_size)
        else:
            config = _to_bundled_model(paths, load_config(paths))
        engine = cls(paths, config)
        try:
            if not engine.store.collection_exists(config.collection):
                engine.store.create_collection(config.collection, config.embedding.dim)
            engine.problems = engine.check()
        except BaseException:
            engine.close()
            raise
        return engine, created

    def check(self) -> list[str]:
        """Cheap consistency checks (milliseconds): is the store readable, and
        does it hold as many points as the manifest lists chunks?"""
        from cidx.indexer import META_STORE_DAMAGED

        mark = self.db.get_meta(META_STORE_DAMAGED)
        if mark is not None:
            return [
                f"The index store is damaged ({mark}). Run `cidx index` to rebuild it, "
                "reusing cached embeddings."
            ]
        try:
            points = self.store.count(self.config.collection)
        except StoreDamagedError as exc:
            return [exc.message]
        _, chunks = self.db.counts()
        if points != chunks:
            return [
                f"The index store holds {points:,} points but the manifest lists {chunks:,} "
                "chunks: it was changed or lost outside cidx. Run `cidx index` to repair it."
            ]
        return []

    def _note_damage(self, exc: StoreDamagedError) -> None:
        """Remember a damaged store, so that the next sync rebuilds it."""
        from cidx.indexer import META_STORE_DAMAGED

        with contextlib.suppress(CidxError):
            self.db.set_meta(META_STORE_DAMAGED, exc.detail)
        self.problems = [exc.message]

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use: a no-op sync never pays for it."""
        if self._embedder is None:
            with self._model_lock:
                if self._embedder is None:
                    from cidx.embedding import Embedder

                    self._embedder = Embedder(
                        self.config.embedding.max_length, long_lived=self.long_lived
                    )
        return self._embedder

    @cached_property
    def sparse(self) -> SparseEncoder:
        return SparseEncoder()

    # -- operations --------------------------------------------------------

    def sync(
        self,
        *,
        clear: bool = False,
        paths: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
    ) -> IndexSummary:
        from cidx.indexer import Indexer

        with self.write_lock:
            self.syncing += 1
            try:
                try:
                    summary = Indexer(self).sync(clear=clear, paths=paths, progress=progress)
                except StoreDamagedError as exc:
                    # Found damaged while writing: marked, the same sync again
                    # sets the store aside and rebuilds it (once).
                    self._note_damage(exc)
                    summary = Indexer(self).sync(progress=progress)
            except Exception:
                self.metrics.errors.inc()
                raise
            finally:
                self.syncing -= 1
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
        if request.clear or not request.paths:
            return self.sync(clear=request.clear, progress=progress)
        with self.write_lock:
            absent = [p for p in request.paths if not os.path.lexists(self.paths.root / p)]
            known = self.db.files(absent) if absent else {}
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
        files, chunks = self.db.counts()  # one scan of the manifest for both
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
        from cidx.search import Searcher

        return Searcher(self).search(request)

    def search_outcome(
        self, request: SearchRequest, progress: ProgressFn | None = None, *, sync: bool = True
    ) -> SearchOutcome:
        """A sync (if asked and `sync`), then the searches, timed.

        A search that finds the store damaged leaves the mark that makes a
        sync rebuild it: when syncing is allowed, that happens here, and the
        searches run again on the rebuilt store.
        """
        syncing = request.sync and sync
        summary = self.sync(progress=progress) if syncing else None
        started = time.perf_counter()
        try:
            answers = self.search_batch(request.queries)
        except StoreDamagedError:
            if not syncing:
                raise
            summary = self.sync(progress=progress)
            started = time.perf_counter()
            answers = self.search_batch(request.queries)
        # After a sync its summary tells what was repaired; without one, the
        # caller learns here that the answers come from a damaged index.
        warnings = list(self.problems) if summary is None else []
        return SearchOutcome(answers, summary, time.perf_counter() - started, warnings)

    def search_batch(self, requests: list[QueryRequest]) -> list[QueryAnswer]:
        from cidx.search import Searcher
        from cidx.state.db import state_error

        started = time.perf_counter()
        try:
            answers = Searcher(self).search_batch(requests)
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
        from cidx.indexer import META_LAST_AT, META_LAST_SECONDS, Indexer

        files, chunks = self.db.counts()
        self.problems = self.check()
        try:
            points = self.store.count(self.config.collection)
        except StoreDamagedError as exc:
            self._note_damage(exc)
            points = 0
        last_at = self.db.get_meta(META_LAST_AT)
        last_seconds = self.db.get_meta(META_LAST_SECONDS)
        owner = read_owner(self.paths)
        survey = Indexer(self).survey()
        return StatusReport(
            root=str(self.paths.root),
            index_dir=str(self.paths.index_dir),
            storage_mode=self.config.storage_mode,
            storage_path=str(self.paths.collection_dir(self.config.collection)),
            collection=self.config.collection,
            model=self.config.embedding.model_id,
            files=files,
            chunks=chunks,
            points=points,
            disk_bytes=disk_usage(self.paths.index_dir),
            pending=survey.pending,
            last_index_at=(
                datetime.fromtimestamp(float(last_at), UTC).isoformat(timespec="seconds")
                if last_at
                else None
            ),
            last_index_seconds=float(last_seconds) if last_seconds else None,
            owner_pid=owner.pid if owner else None,
            owner_kind=owner.kind if owner else None,
            files_empty=survey.empty,
            files_skipped=survey.skipped,
            files_failed=survey.failed,
            problems=list(self.problems),
        )

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
        with self.write_lock:
            self.store.close()
            self.db.close()
