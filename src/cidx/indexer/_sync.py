"""Syncs: make a collection equal to what a clean rebuild of the files would give.

See the package docstring (`cidx.indexer`) for the order of writes that
makes any crash harmless. `Indexer` takes the parts of an open index, not
the engine that holds them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cidx.chunking import CHUNKER_VERSION
from cidx.dualwrite import PointWriter
from cidx.embedcache import cached_only, embed_cached
from cidx.errors import StoreDamagedError
from cidx.failpoints import failpoint
from cidx.ignore import IgnoreRules
from cidx.indexer._dense import DensePass, complete_dense
from cidx.indexer._files import (
    Gone,
    Prepared,
    count_unchanged,
    in_index,
    is_racy,
    may_read,
    prepare_file,
)
from cidx.messages import FileIssue, IndexSummary, PendingChanges, Progress
from cidx.representation import REPRESENTATION_VERSION
from cidx.sparse import SPARSE_VERSION
from cidx.state import FileRecord
from cidx.store import PointData
from cidx.walk import SkippedFile, WalkedFile, WalkResult, stat_file, walk_project

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from cidx.parts import IndexParts

log = logging.getLogger("cidx.indexer")

ProgressFn = Callable[[Progress], None]

# Everything that changes what a file turns into. A different value in the
# manifest's marks means every file must be re-chunked (cached vectors still apply).
INDEX_FORMAT = f"chunker={CHUNKER_VERSION};repr={REPRESENTATION_VERSION};sparse={SPARSE_VERSION}"
# How many chunks to gather before embedding and writing them as one batch.
BATCH_CHUNKS = 256
# A staged sync (`Indexer.sync(staged=True)`) stores BM25 first and leaves the
# dense vectors to the dense pass when its changed files hold at least this
# many bytes (about 500 chunks, several seconds of the model on two cores);
# smaller syncs embed before they return, as every sync of a one-shot
# command does. STAGE_ENV overrides it.
STAGE_MIN_BYTES = 512 * 1024
STAGE_ENV = "CIDX_STAGE_MIN_BYTES"
# Points whose payloads a full sync reads back to catch a damaged store early.
PROBE_POINTS = 32
# Walk reports that mean "could not be read" (a failure, tried again on every
# sync) rather than "not indexed on purpose".
FAILED_REASONS = frozenset({"unreadable"})

# The marks a collection's manifest keeps (`Manifest.get_mark`).
META_DIRTY = "sync_dirty"
# Set (to the error's text) when reading the store failed: the next sync rebuilds it.
META_STORE_DAMAGED = "store_damaged"
META_FORMAT = "index_format"
META_LAST_AT = "last_index_at"
META_LAST_SECONDS = "last_index_seconds"


@dataclass(frozen=True)
class Survey:
    """The next sync's changes and account, as far as metadata tells."""

    pending: PendingChanges
    empty: int
    skipped: int
    failed: int


def _no_flush(_writes: int) -> None:
    pass


class Indexer:
    """Runs syncs of one collection (the project's own, unless told).

    Callers serialise syncs. `rules` is the project's long-lived ignore
    rules (a watcher's caches survive between syncs); `on_writes(n)` is told
    how many points each sync wrote or deleted, so its owner can decide when
    to flush the store.
    """

    def __init__(
        self,
        parts: IndexParts,
        rules: IgnoreRules,
        *,
        collection: str | None = None,
        on_writes: Callable[[int], None] = _no_flush,
    ) -> None:
        self.parts = parts
        self.paths = parts.paths
        self.config = parts.config
        self.db = parts.db
        self.store = parts.store
        self.models = parts.models
        self.collections = parts.collections
        self.collection = parts.collections.resolve(collection or parts.collections.primary)
        self.manifest = parts.db.manifest(self.collection)
        # Every point written or deleted goes through here (both sides while a
        # collection migration runs).
        self.writer = PointWriter(parts.collections, parts.models)
        move = parts.collections.migration()
        self.dim = (
            move.target_dim
            if move is not None and self.collection == move.target
            else parts.config.embedding.dim
        )
        self.rules = rules
        self.on_writes = on_writes

    # -- change detection --------------------------------------------------

    def walk(self, rules: IgnoreRules | None = None) -> WalkResult:
        return walk_project(self.paths.root, max_file_size=self.config.max_file_size, rules=rules)

    def pending_changes(self) -> PendingChanges:
        """Files that differ from the manifest by stat (no hashing; may over-count touches)."""
        return self.survey().pending

    def survey(self) -> Survey:
        """What the next full sync would change and report, from one walk and
        the manifest, without reading a file: for `cidx status`.

        A new or changed file the process may not read is counted as failed,
        not pending: a sync would fail on it too, every time, until its
        permissions change.
        """
        walked = self.walk()
        manifest = self.manifest.files()
        seen = {f.rel for f in walked.files}
        added = modified = failed = 0
        for f in walked.files:
            rec = manifest.get(f.rel)
            if rec is not None and (rec.size, rec.mtime_ns) == (f.size, f.mtime_ns):
                continue
            if not may_read(self.paths.root / f.rel):
                failed += 1
            elif rec is None:
                added += 1
            else:
                modified += 1
        deleted = len(_deleted(manifest, seen, walked.skipped))
        walk_failed = sum(1 for s in walked.skipped if s.reason in FAILED_REASONS)
        # Binary and minified files are known from the manifest, unread.
        statuses = Counter(rec.status for path, rec in manifest.items() if path in seen)
        return Survey(
            pending=PendingChanges(added=added, modified=modified, deleted=deleted),
            empty=statuses["empty"],
            skipped=len(walked.skipped)
            - walk_failed
            + sum(n for status, n in statuses.items() if not in_index(status)),
            failed=failed + walk_failed,
        )

    def _scan(
        self, manifest: dict[str, FileRecord], roots: list[str] | None
    ) -> tuple[list[WalkedFile], list[SkippedFile], list[str]]:
        """(files on disk, files skipped, manifest paths gone) within `roots`.

        `roots` None means the whole project. Otherwise they are paths that
        may have changed — files or folders, present or gone — as a watcher
        reports them, and only those are looked at; `manifest` then holds
        just the entries at or below them.
        """
        rules = self.rules
        if roots is None:
            # Nothing tells a full sync which ignore files changed since the
            # last one: read them all again.
            rules.invalidate("")
            walked = self.walk(rules)
            seen = {f.rel for f in walked.files}
            return walked.files, walked.skipped, _deleted(manifest, seen, walked.skipped)

        found: dict[str, WalkedFile] = {}
        skipped: list[SkippedFile] = []
        max_size = self.config.max_file_size
        for rel in roots:
            abs_path = self.paths.root / rel
            if abs_path.is_dir() and not abs_path.is_symlink():
                walked = walk_project(
                    self.paths.root, max_file_size=max_size, rules=rules, start=rel
                )
                found.update((f.rel, f) for f in walked.files)
                skipped.extend(walked.skipped)
                continue
            one = stat_file(self.paths.root, rel, max_file_size=max_size, rules=rules)
            if isinstance(one, WalkedFile):
                found[rel] = one
            elif isinstance(one, SkippedFile):
                skipped.append(one)
        files = sorted(found.values(), key=lambda f: f.rel)
        return files, skipped, _deleted(manifest, set(found), skipped)

    def _widen(self, paths: Sequence[str]) -> tuple[list[str] | None, bool]:
        """`paths` plus what a changed ignore file among them can affect.

        The one scope rule of every scoped sync (a watcher's batch, `cidx
        index PATH`): an ignore file (or a virtualenv marker) can change what
        is indexed anywhere in its folder, so that folder is synced too; one at
        the root, or git's own exclude file, affects everything (None). The
        second value says whether anything was widened.
        """
        scope = set(paths)
        widened = False
        for path in paths:
            if not self.rules.notify_changed(path):
                continue
            widened = True
            folder = path.strip("/").rpartition("/")[0]
            if not folder or folder == ".git" or folder.startswith(".git/"):
                return None, True
            scope.add(folder)
        return sorted(scope), widened

    # -- sync --------------------------------------------------------------

    def sync(
        self,
        *,
        clear: bool = False,
        paths: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
        staged: bool = False,
    ) -> IndexSummary:
        """Bring the store up to date with the files (only `paths`, if given).

        `staged` (an owner that keeps running: it runs the dense pass in the
        background, `cidx.indexer._dense`): a sync with much to embed stores
        the BM25 vectors now and leaves the dense ones pending. Otherwise the
        sync also completes any dense pass left pending, so that it returns
        a whole index.
        """
        started = time.perf_counter()
        summary = IndexSummary()
        emit = progress or (lambda _p: None)
        emit(Progress(phase="scan"))

        if clear:
            self._clear()
            summary.rebuilt = True
        elif not self.collections.exists(self.collection):
            # The store is gone (deleted by hand, or never created): nothing in
            # the manifest can be trusted.
            _, chunks = self.manifest.counts()
            with self.db.transaction() as tx:
                self.manifest.clear(tx)
            self.collections.ensure(self.collection)
            if chunks:
                summary.repairs.append(
                    "The index store was missing; it was rebuilt from the files, "
                    "reusing cached embeddings."
                )
            paths = None
        elif (damage := self._store_damage(probe=paths is None)) is not None:
            self._rebuild_store()
            summary.repairs.append(
                f"The index store was damaged ({damage}); it was set aside and rebuilt from "
                "the files, reusing cached embeddings."
            )
            paths = None
        elif self.manifest.get_mark(META_DIRTY) is not None or self._counts_disagree():
            orphans, broken = self.reconcile()
            if broken:
                paths = None  # files anywhere may need re-indexing
            if orphans or broken:
                summary.repairs.append(
                    f"The index store and the manifest disagreed: {orphans:,} stray points "
                    f"deleted, {broken:,} files re-indexed."
                )

        forced = self.manifest.get_mark(META_FORMAT) != INDEX_FORMAT
        if forced:
            paths = None  # every file must be re-chunked
        if paths is not None:
            paths, summary.widened = self._widen(paths)
        summary.scoped = paths is not None
        roots = None if paths is None else _outermost(paths)
        # A scoped sync reads only its part of the manifest: a watcher's
        # one-file batch need not load every file's record.
        manifest = self.manifest.files(roots)
        files, skipped, deleted = self._scan(manifest, roots)
        summary.files_scanned = len(files) + len(skipped)
        for s in skipped:
            issues = summary.failed if s.reason in FAILED_REASONS else summary.skipped
            issues.append(FileIssue(s.rel, s.reason, s.detail))

        candidates: list[WalkedFile] = []
        for f in files:
            rec = manifest.get(f.rel)
            if (
                rec is None
                or forced
                or (rec.size, rec.mtime_ns) != (f.size, f.mtime_ns)
                or is_racy(rec)
            ):
                candidates.append(f)
            else:
                count_unchanged(rec, summary)

        self._mark_dirty()
        if deleted:
            self._delete_files(deleted, manifest, summary)

        bytes_total = sum(f.size for f in candidates)
        stage = staged and bytes_total >= stage_min_bytes() and self.collections.migration() is None
        done_files = done_bytes = 0
        batch: list[Prepared] = []
        batch_chunks = 0
        emit(Progress("index", 0, len(candidates), 0, bytes_total))
        for f in candidates:
            old = manifest.get(f.rel)
            prepared = prepare_file(self.paths.root, f, old, forced, summary)
            done_files += 1
            done_bytes += f.size
            if isinstance(prepared, Gone):
                self._delete_files([prepared.path], manifest, summary)
            elif prepared is not None:
                batch.append(prepared)
                batch_chunks += len(prepared.points)
            if batch_chunks >= BATCH_CHUNKS:
                self._write(batch, manifest, summary, stage=stage)
                batch, batch_chunks = [], 0
                emit(self._progress(done_files, len(candidates), done_bytes, bytes_total, summary))
        if batch:
            self._write(batch, manifest, summary, stage=stage)
        emit(self._progress(done_files, len(candidates), done_bytes, bytes_total, summary))
        if not staged:
            # What a staged sync left pending (its owner stopped before the
            # dense pass ended): this sync returns a whole index.
            complete_dense(self.dense_pass(), summary, emit, self.on_writes)

        emit(
            Progress(
                "finish",
                done_files,
                len(candidates),
                done_bytes,
                bytes_total,
                summary.chunks_embedded,
                summary.chunks_reused,
            )
        )
        if summary.points_deleted:
            self.store.optimize(self.collection)
        self.on_writes(summary.points_upserted + summary.points_deleted)
        summary.files_skipped = len(summary.skipped)
        summary.files_failed = len(summary.failed)
        summary.seconds = time.perf_counter() - started
        with self.db.transaction() as tx:
            self.manifest.set_mark(META_FORMAT, INDEX_FORMAT, tx)
            self.manifest.set_mark(META_LAST_AT, str(time.time()), tx)
            self.manifest.set_mark(META_LAST_SECONDS, f"{summary.seconds:.3f}", tx)
            self.manifest.set_mark(META_DIRTY, None, tx)
        if roots is None:
            # A full sync has completed whatever replaced a damaged store.
            self.collections.drop_set_aside(self.collection)
        if summary.chunks_embedded:
            self._prune_cache()  # only new vectors can push the cache past its bound
        share = self.dense_pass().share()
        summary.chunks_pending = share.pending if share is not None else 0
        return summary

    def dense_pass(self) -> DensePass:
        return DensePass(self.parts, self.collection, self.dim)

    def _progress(
        self, files: int, files_total: int, done: int, total: int, summary: IndexSummary
    ) -> Progress:
        return Progress(
            "index", files, files_total, done, total, summary.chunks_embedded, summary.chunks_reused
        )

    def _counts_disagree(self) -> bool:
        _, chunks = self.manifest.counts()
        return chunks != self.store.count(self.collection)

    def _store_damage(self, *, probe: bool) -> str | None:
        """Why the store cannot be trusted, or None: a search found it damaged,
        it cannot be opened now, or (`probe`) a few payloads cannot be read."""
        mark = self.manifest.get_mark(META_STORE_DAMAGED)
        if mark is not None:
            return mark
        try:
            self.store.count(self.collection)
            if probe:
                # A sample, not every payload: a few milliseconds per full
                # sync. `cidx doctor` reads them all.
                ids = self.manifest.sample_chunk_ids(PROBE_POINTS)
                if ids:
                    self.store.retrieve(self.collection, ids)
        except StoreDamagedError as exc:
            return exc.detail
        return None

    def _rebuild_store(self) -> None:
        """Replace a damaged store with an empty one; the sync then refills it.

        The damaged shard is renamed, not deleted, until a full sync has
        completed its replacement. The manifest is cleared in the same
        transaction that clears the damage mark, so a crash in between
        repeats the rebuild rather than trusting a half-filled store.
        """
        self.collections.set_aside(self.collection)
        with self.db.transaction() as tx:
            self.manifest.clear(tx)
            self.manifest.set_mark(META_DIRTY, str(time.time()), tx)
            self.manifest.set_mark(META_STORE_DAMAGED, None, tx)
        self.collections.ensure(self.collection)
        log.info("rebuilding the damaged index store %s", self.collection)

    def _mark_dirty(self) -> None:
        if self.manifest.get_mark(META_DIRTY) is None:
            self.manifest.set_mark(META_DIRTY, str(time.time()))

    def _clear(self) -> None:
        # The manifest goes first: if we die between the two steps, the next
        # sync finds no manifest and rebuilds everything.
        with self.db.transaction() as tx:
            self.manifest.clear(tx)
            self.manifest.set_mark(META_DIRTY, str(time.time()), tx)
        failpoint("after_clear_manifest")
        self.writer.recreate(self.collection)
        failpoint("after_clear")

    def reconcile(self) -> tuple[int, int]:
        """Repair manifest/store drift: (orphan points deleted, files to re-index)."""
        manifest = self.manifest.files()
        wanted: dict[str, str] = {}
        for rec in manifest.values():
            for pid in rec.chunk_ids:
                wanted[pid] = rec.path
        present: set[str] = set()
        orphans: list[str] = []
        for pid, _ in self.store.scroll(self.collection):
            if pid in wanted:
                present.add(pid)
            else:
                orphans.append(pid)
        broken = sorted({path for pid, path in wanted.items() if pid not in present})
        for start in range(0, len(orphans), 1024):
            self.writer.delete(self.collection, orphans[start : start + 1024])
        if broken:
            # Their points are incomplete: forget them so the sync rebuilds them.
            with self.db.transaction() as tx:
                self.manifest.delete(tx, broken)
            self.writer.delete(
                self.collection,
                [pid for path in broken for pid in manifest[path].chunk_ids if pid in present],
            )
        if orphans or broken:
            log.info(
                "reconciled index: %d orphan points, %d files to re-index",
                len(orphans),
                len(broken),
            )
        return len(orphans), len(broken)

    def _write(
        self,
        batch: list[Prepared],
        manifest: dict[str, FileRecord],
        summary: IndexSummary,
        *,
        stage: bool = False,
    ) -> None:
        model = self.collections.model_of(self.collection) or self.config.embedding.model_id
        move = self.collections.migration()
        if self.models.variant(model) is None and move is not None:
            # This cidx cannot run the model the collection was built with (it
            # is migrating to one it can): new points get the new model's
            # vectors, and the collection is searched by keywords until cutover.
            model = move.target_model
        texts = [p[1] for item in batch for p in item.points]
        if stage:
            # Vectors the cache holds go in now; the rest wait for the dense pass.
            known = cached_only(self.db, model, self.dim, texts)
            vectors, found = known.vectors, known.found
            summary.chunks_reused += sum(found)
        else:
            vectors, found = self._vectors(model, texts, summary), [True] * len(texts)
        sparse = self.models.sparse
        points: list[PointData] = []
        i = 0
        for item in batch:
            pending = False
            for pid, _dense, sparse_src, data in item.points:
                dense = vectors[i].tolist() if found[i] else []
                pending = pending or not found[i]
                points.append(PointData(pid, dense, sparse.document(sparse_src), dict(data)))
                i += 1
            if pending:
                item.record = dataclasses.replace(item.record, dense_pending=True)
        # New points first, then the old ones they replace, then the manifest.
        for start in range(0, len(points), 512):
            self.writer.upsert(self.collection, points[start : start + 512])
            failpoint("after_upsert")
        summary.points_upserted += len(points)
        stale: list[str] = []
        for item in batch:
            old = manifest.get(item.record.path)
            if old is not None:
                keep = set(item.record.chunk_ids)
                stale.extend(pid for pid in old.chunk_ids if pid not in keep)
        if stale:
            self.writer.delete(self.collection, stale)
            summary.points_deleted += len(stale)
            failpoint("after_delete")
        with self.db.transaction() as tx:
            self.manifest.put(tx, [item.record for item in batch])
        failpoint("after_manifest")
        for item in batch:
            manifest[item.record.path] = item.record

    def _vectors(
        self, model: str, texts: list[str], summary: IndexSummary
    ) -> npt.NDArray[np.float32]:
        models = self.models.variant(model) or self.models
        done = embed_cached(self.db, model, self.dim, texts, lambda: models.embedder)
        summary.chunks_embedded += done.embedded
        summary.chunks_reused += done.reused
        return done.vectors

    def _delete_files(
        self, paths: Iterable[str], manifest: dict[str, FileRecord], summary: IndexSummary
    ) -> None:
        paths = list(paths)
        ids = [pid for p in paths if (rec := manifest.get(p)) is not None for pid in rec.chunk_ids]
        for start in range(0, len(ids), 1024):
            self.writer.delete(self.collection, ids[start : start + 1024])
        failpoint("after_delete_files")
        with self.db.transaction() as tx:
            self.manifest.delete(tx, paths)
        summary.files_deleted += sum(
            1 for p in paths if (rec := manifest.get(p)) is not None and in_index(rec.status)
        )
        for p in paths:
            manifest.pop(p, None)
        summary.points_deleted += len(ids)

    def _prune_cache(self) -> None:
        _, chunks = self.manifest.counts()
        # Room for history (branch switches, reverts) without growing forever.
        self.db.prune_cache(max(50_000, 3 * chunks))


def stage_min_bytes() -> int:
    """Bytes of changed files from which a staged sync leaves dense vectors pending."""
    try:
        return max(0, int(os.environ.get(STAGE_ENV) or STAGE_MIN_BYTES))
    except ValueError:
        return STAGE_MIN_BYTES


def _outermost(paths: Iterable[str]) -> list[str]:
    """Normalised paths with those inside another listed folder dropped."""
    cleaned = sorted({p.strip("/") for p in paths if p.strip("/")})
    kept: list[str] = []
    for p in cleaned:
        if not any(p.startswith(k + "/") for k in kept[-1:]):
            kept.append(p)
    return kept


def _deleted(
    manifest: dict[str, FileRecord], seen: set[str], skipped: Sequence[SkippedFile]
) -> list[str]:
    """Manifest paths the walk no longer sees.

    What sits in (or is) an unreadable file or folder is unknown rather than
    gone, so its index entries are kept until it can be read again.
    """
    unknown = [s.rel for s in skipped if s.reason == "unreadable"]

    def unreadable(path: str) -> bool:
        return any(path == u or path.startswith(u + "/") for u in unknown)

    return sorted(p for p in manifest if p not in seen and not unreadable(p))
