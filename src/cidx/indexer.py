"""The sync engine: make the store equal to what a clean rebuild would give.

Incremental by default: stat compare → hash only when the stat differs →
chunk → embed only texts the cache has never seen → upsert new points →
delete stale points → commit the manifest. The order is what makes a crash
at any point harmless: new data is written before old data is deleted, and
the manifest (what the next sync trusts) is committed last. A `dirty` mark
brackets store writes; finding it set on the next sync triggers `reconcile`,
which repairs any drift between manifest and store (so do counts that
disagree). A store that cannot be read back — it fails to open, or a search
found it damaged and left the `store_damaged` mark — is set aside and
rebuilt from the files, with vectors from the embedding cache; the damaged
copy is deleted only once a full sync has completed the new one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cidx.chunking import CHUNKER_VERSION, MINIFIED_LINE_CHARS, chunk_file, detect_language
from cidx.errors import StoreDamagedError
from cidx.failpoints import failpoint
from cidx.ignore import IgnoreRules
from cidx.messages import FileIssue, IndexSummary, PendingChanges, Progress
from cidx.representation import (
    REPRESENTATION_VERSION,
    chunk_hash,
    dense_text,
    payload,
    point_id,
    sparse_text,
    text_hash,
)
from cidx.sparse import SPARSE_VERSION
from cidx.state import FileRecord
from cidx.store import PointData
from cidx.walk import (
    SkippedFile,
    WalkedFile,
    WalkResult,
    special_file,
    stat_file,
    walk_project,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from cidx.engine import Engine

log = logging.getLogger(__name__)

ProgressFn = Callable[[Progress], None]

# Everything that changes what a file turns into. A different value in the
# state DB means every file must be re-chunked (cached vectors still apply).
INDEX_FORMAT = f"chunker={CHUNKER_VERSION};repr={REPRESENTATION_VERSION};sparse={SPARSE_VERSION}"
# A file modified this close to when it was hashed may change again within
# the same mtime tick; such entries are re-hashed on the next sync.
RACY_SECONDS = 2.0
# How many chunks to gather before embedding and writing them as one batch.
BATCH_CHUNKS = 256
BINARY_SNIFF_BYTES = 8192
# Points whose payloads a full sync reads back to catch a damaged store early.
PROBE_POINTS = 32
# Walk reports that mean "could not be read" (a failure, tried again on every
# sync) rather than "not indexed on purpose".
FAILED_REASONS = frozenset({"unreadable"})

META_DIRTY = "sync_dirty"
# Set (to the error's text) when reading the store failed: the next sync rebuilds it.
META_STORE_DAMAGED = "store_damaged"
META_FORMAT = "index_format"
META_LAST_AT = "last_index_at"
META_LAST_SECONDS = "last_index_seconds"


@dataclass
class _Prepared:
    """One changed file, read, hashed and chunked, waiting to be written."""

    record: FileRecord
    points: list[tuple[str, str, str, dict[str, object]]] = field(default_factory=list)
    # (point id, dense text, sparse text, payload) per chunk


@dataclass(frozen=True)
class Survey:
    """The next sync's changes and account, as far as metadata tells."""

    pending: PendingChanges
    empty: int
    skipped: int
    failed: int


def file_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def is_racy(record: FileRecord) -> bool:
    return record.indexed_at - record.mtime_ns / 1e9 < RACY_SECONDS


class Indexer:
    """Runs syncs for one open `Engine`. Callers serialise syncs (engine.write_lock)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.paths = engine.paths
        self.db = engine.db
        self.store = engine.store
        self.collection = engine.config.collection

    # -- change detection --------------------------------------------------

    def walk(self, rules: IgnoreRules | None = None) -> WalkResult:
        return walk_project(
            self.paths.root, max_file_size=self.engine.config.max_file_size, rules=rules
        )

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
        manifest = self.db.files()
        seen = {f.rel for f in walked.files}
        added = modified = failed = 0
        for f in walked.files:
            rec = manifest.get(f.rel)
            if rec is not None and (rec.size, rec.mtime_ns) == (f.size, f.mtime_ns):
                continue
            if not _may_read(self.paths.root / f.rel):
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
            + sum(n for status, n in statuses.items() if not _in_index(status)),
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
        rules = self.engine.rules
        if roots is None:
            # Nothing tells a full sync which ignore files changed since the
            # last one: read them all again.
            rules.invalidate("")
            walked = self.walk(rules)
            seen = {f.rel for f in walked.files}
            return walked.files, walked.skipped, _deleted(manifest, seen, walked.skipped)

        found: dict[str, WalkedFile] = {}
        skipped: list[SkippedFile] = []
        max_size = self.engine.config.max_file_size
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
            if not self.engine.rules.notify_changed(path):
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
    ) -> IndexSummary:
        """Bring the store up to date with the files (only `paths`, if given)."""
        started = time.perf_counter()
        summary = IndexSummary()
        emit = progress or (lambda _p: None)
        emit(Progress(phase="scan"))

        if clear:
            self._clear()
            summary.rebuilt = True
        elif not self.store.collection_exists(self.collection):
            # The store is gone (deleted by hand, or never created): nothing in
            # the manifest can be trusted.
            _, chunks = self.db.counts()
            with self.db.transaction() as tx:
                self.db.clear_files(tx)
            self.store.create_collection(self.collection, self.engine.config.embedding.dim)
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
        elif self.db.get_meta(META_DIRTY) is not None or self._counts_disagree():
            orphans, broken = self.reconcile()
            if broken:
                paths = None  # files anywhere may need re-indexing
            if orphans or broken:
                summary.repairs.append(
                    f"The index store and the manifest disagreed: {orphans:,} stray points "
                    f"deleted, {broken:,} files re-indexed."
                )

        forced = self.db.get_meta(META_FORMAT) != INDEX_FORMAT
        if forced:
            paths = None  # every file must be re-chunked
        if paths is not None:
            paths, summary.widened = self._widen(paths)
        summary.scoped = paths is not None
        roots = None if paths is None else _outermost(paths)
        # A scoped sync reads only its part of the manifest: a watcher's
        # one-file batch need not load every file's record.
        manifest = self.db.files(roots)
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
                _count_unchanged(rec, summary)

        self._mark_dirty()
        if deleted:
            self._delete_files(deleted, manifest, summary)

        bytes_total = sum(f.size for f in candidates)
        done_files = done_bytes = 0
        batch: list[_Prepared] = []
        batch_chunks = 0
        emit(Progress("index", 0, len(candidates), 0, bytes_total))
        for f in candidates:
            prepared = self._prepare(f, manifest.get(f.rel), forced, summary)
            done_files += 1
            done_bytes += f.size
            if prepared is not None:
                batch.append(prepared)
                batch_chunks += len(prepared.points)
            if batch_chunks >= BATCH_CHUNKS:
                self._write(batch, manifest, summary)
                batch, batch_chunks = [], 0
                emit(self._progress(done_files, len(candidates), done_bytes, bytes_total, summary))
        if batch:
            self._write(batch, manifest, summary)
        emit(self._progress(done_files, len(candidates), done_bytes, bytes_total, summary))

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
        self.engine.maybe_flush(summary.points_upserted + summary.points_deleted)
        summary.files_skipped = len(summary.skipped)
        summary.files_failed = len(summary.failed)
        summary.seconds = time.perf_counter() - started
        with self.db.transaction() as tx:
            self.db.set_meta(META_FORMAT, INDEX_FORMAT, tx)
            self.db.set_meta(META_LAST_AT, str(time.time()), tx)
            self.db.set_meta(META_LAST_SECONDS, f"{summary.seconds:.3f}", tx)
            self.db.set_meta(META_DIRTY, None, tx)
        if roots is None:
            # A full sync has completed whatever replaced a damaged store.
            self.store.drop_set_aside(self.collection)
        if summary.chunks_embedded:
            self._prune_cache()  # only new vectors can push the cache past its bound
        return summary

    def _progress(
        self, files: int, files_total: int, done: int, total: int, summary: IndexSummary
    ) -> Progress:
        return Progress(
            "index", files, files_total, done, total, summary.chunks_embedded, summary.chunks_reused
        )

    def _counts_disagree(self) -> bool:
        _, chunks = self.db.counts()
        return chunks != self.store.count(self.collection)

    def _store_damage(self, *, probe: bool) -> str | None:
        """Why the store cannot be trusted, or None: a search found it damaged,
        it cannot be opened now, or (`probe`) a few payloads cannot be read."""
        mark = self.db.get_meta(META_STORE_DAMAGED)
        if mark is not None:
            return mark
        try:
            self.store.count(self.collection)
            if probe:
                # A sample, not every payload: a few milliseconds per full
                # sync. `cidx doctor` reads them all.
                ids = self.db.sample_chunk_ids(PROBE_POINTS)
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
        self.store.set_aside(self.collection)
        with self.db.transaction() as tx:
            self.db.clear_files(tx)
            self.db.set_meta(META_DIRTY, str(time.time()), tx)
            self.db.set_meta(META_STORE_DAMAGED, None, tx)
        self.store.create_collection(self.collection, self.engine.config.embedding.dim)
        log.info("rebuilding the damaged index store %s", self.collection)

    def _mark_dirty(self) -> None:
        if self.db.get_meta(META_DIRTY) is None:
            self.db.set_meta(META_DIRTY, str(time.time()))

    def _clear(self) -> None:
        # The manifest goes first: if we die between the two steps, the next
        # sync finds no manifest and rebuilds everything.
        with self.db.transaction() as tx:
            self.db.clear_files(tx)
            self.db.set_meta(META_DIRTY, str(time.time()), tx)
        failpoint("after_clear_manifest")
        if self.store.collection_exists(self.collection):
            self.store.drop_collection(self.collection)
        self.store.create_collection(self.collection, self.engine.config.embedding.dim)
        failpoint("after_clear")

    def reconcile(self) -> tuple[int, int]:
        """Repair manifest/store drift: (orphan points deleted, files to re-index)."""
        manifest = self.db.files()
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
            self.store.delete(self.collection, orphans[start : start + 1024])
        if broken:
            # Their points are incomplete: forget them so the sync rebuilds them.
            with self.db.transaction() as tx:
                self.db.delete_files(tx, broken)
            self.store.delete(
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

    # -- per-file work -----------------------------------------------------

    def _prepare(
        self, f: WalkedFile, old: FileRecord | None, forced: bool, summary: IndexSummary
    ) -> _Prepared | None:
        abs_path = self.paths.root / f.rel
        try:
            data, st = _read_regular(abs_path)
        except (FileNotFoundError, NotADirectoryError, _NotRegular) as exc:
            if isinstance(exc, _NotRegular) and not stat.S_ISDIR(exc.mode):
                # Swapped for a FIFO or device since the walk: what the walk
                # would say now.
                issue = special_file(f.rel, exc.mode)
                summary.skipped.append(FileIssue(issue.rel, issue.reason, issue.detail))
            else:
                # Gone (or now a folder) since the walk: the next walk will
                # not see this file either, so it is not part of this sync.
                summary.files_scanned -= 1
            if old is not None:
                self._delete_files([f.rel], {f.rel: old}, summary)
            return None
        except OSError as exc:
            summary.failed.append(_unreadable_issue(f.rel, exc))
            return None
        size, mtime_ns = st.st_size, st.st_mtime_ns
        if len(data) != size:
            # Changed while we read it; record a stat that forces a re-hash next time.
            mtime_ns = 0
        digest = file_hash(data)
        now = time.time()
        language = detect_language(f.rel)

        if old is not None and old.hash == digest and not forced:
            # Touched, not changed: only the stat moves.
            record = FileRecord(
                f.rel, size, mtime_ns, digest, old.status, old.language, old.chunk_ids, now
            )
            _count_unchanged(old, summary)
            return _Prepared(record)

        if b"\0" in data[:BINARY_SNIFF_BYTES]:
            return self._not_indexed(f, "binary", size, mtime_ns, digest, language, old, summary)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = data.decode("utf-8", errors="replace")
            summary.warnings.append(
                FileIssue(
                    f.rel,
                    "invalid_utf8",
                    f"not valid UTF-8 (byte {exc.start}); indexed with undecodable bytes replaced",
                )
            )
        if text.startswith("\ufeff"):
            text = text[1:]
        chunked = chunk_file(f.rel, text)
        language = chunked.language
        if chunked.minified:
            return self._not_indexed(f, "minified", size, mtime_ns, digest, language, old, summary)

        if old is None or not _in_index(old.status):
            summary.files_added += 1
        else:
            summary.files_modified += 1
        if not chunked.chunks:
            summary.files_empty += 1
            return _Prepared(FileRecord(f.rel, size, mtime_ns, digest, "empty", language, (), now))
        summary.files_indexed += 1

        prepared = _Prepared(
            FileRecord(f.rel, size, mtime_ns, digest, "indexed", language, (), now)
        )
        occurrences: dict[str, int] = {}
        ids: list[str] = []
        for chunk in chunked.chunks:
            ch = chunk_hash(chunk)
            n = occurrences.get(ch, 0)
            occurrences[ch] = n + 1
            pid = point_id(f.rel, ch, n)
            ids.append(pid)
            prepared.points.append(
                (
                    pid,
                    dense_text(f.rel, chunk),
                    sparse_text(f.rel, chunk),
                    payload(f.rel, language, chunk, ch, digest),
                )
            )
        prepared.record = FileRecord(
            f.rel, size, mtime_ns, digest, "indexed", language, tuple(ids), now
        )
        return prepared

    def _not_indexed(
        self,
        f: WalkedFile,
        status: str,
        size: int,
        mtime_ns: int,
        digest: str,
        language: str,
        old: FileRecord | None,
        summary: IndexSummary,
    ) -> _Prepared:
        """A file read and found not worth indexing (binary, minified): it is
        remembered with its hash, so it is not read again until it changes,
        and its old points, if any, go with the next write."""
        summary.skipped.append(_skipped_issue(f.rel, status))
        if old is not None and _in_index(old.status):
            summary.files_deleted += 1  # it leaves the index
        return _Prepared(
            FileRecord(f.rel, size, mtime_ns, digest, status, language, (), time.time())
        )

    def _write(
        self, batch: list[_Prepared], manifest: dict[str, FileRecord], summary: IndexSummary
    ) -> None:
        model = self.engine.config.embedding.model_id
        texts = [p[1] for item in batch for p in item.points]
        vectors = self._vectors(model, texts, summary)
        sparse = self.engine.sparse
        points: list[PointData] = []
        i = 0
        for item in batch:
            for pid, _dense, sparse_src, data in item.points:
                points.append(
                    PointData(pid, vectors[i].tolist(), sparse.document(sparse_src), dict(data))
                )
                i += 1
        # New points first, then the old ones they replace, then the manifest.
        for start in range(0, len(points), 512):
            self.store.upsert(self.collection, points[start : start + 512])
            failpoint("after_upsert")
        summary.points_upserted += len(points)
        stale: list[str] = []
        for item in batch:
            old = manifest.get(item.record.path)
            if old is not None:
                keep = set(item.record.chunk_ids)
                stale.extend(pid for pid in old.chunk_ids if pid not in keep)
        if stale:
            self.store.delete(self.collection, stale)
            summary.points_deleted += len(stale)
            failpoint("after_delete")
        with self.db.transaction() as tx:
            self.db.put_files(tx, [item.record for item in batch])
        failpoint("after_manifest")
        for item in batch:
            manifest[item.record.path] = item.record

    def _vectors(
        self, model: str, texts: list[str], summary: IndexSummary
    ) -> npt.NDArray[np.float32]:
        import numpy as np  # here: a sync with nothing to embed never needs it

        out = np.zeros((len(texts), self.engine.config.embedding.dim), dtype=np.float32)
        if not texts:
            return out
        hashes = [text_hash(t) for t in texts]
        cached = self.db.cached_vectors(model, sorted(set(hashes)))
        missing: dict[bytes, int] = {}
        for i, h in enumerate(hashes):
            vec = cached.get(h)
            if vec is not None:
                out[i] = vec
                summary.chunks_reused += 1
            elif h not in missing:
                missing[h] = i
        if missing:
            order = list(missing.items())
            fresh = self.engine.embedder.embed([texts[i] for _, i in order])
            new = {h: fresh[k] for k, (h, _) in enumerate(order)}
            for i, h in enumerate(hashes):
                if h in new:
                    out[i] = new[h]
            summary.chunks_embedded += len(order)
            summary.chunks_reused += sum(1 for h in hashes if h in new) - len(order)
            with self.db.transaction() as tx:
                self.db.put_vectors(tx, model, new.items())
            failpoint("after_embed")
        if cached:
            with self.db.transaction() as tx:
                self.db.touch_vectors(tx, model, cached.keys())
        return out

    def _delete_files(
        self, paths: Iterable[str], manifest: dict[str, FileRecord], summary: IndexSummary
    ) -> None:
        paths = list(paths)
        ids = [pid for p in paths if (rec := manifest.get(p)) is not None for pid in rec.chunk_ids]
        for start in range(0, len(ids), 1024):
            self.store.delete(self.collection, ids[start : start + 1024])
        failpoint("after_delete_files")
        with self.db.transaction() as tx:
            self.db.delete_files(tx, paths)
        summary.files_deleted += sum(
            1 for p in paths if (rec := manifest.get(p)) is not None and _in_index(rec.status)
        )
        for p in paths:
            manifest.pop(p, None)
        summary.points_deleted += len(ids)

    def _prune_cache(self) -> None:
        _, chunks = self.db.counts()
        # Room for history (branch switches, reverts) without growing forever.
        self.db.prune_cache(max(50_000, 3 * chunks))


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


def _in_index(status: str) -> bool:
    """Whether a manifest record of this status is a file in the index."""
    return status in ("indexed", "empty")


def _count_unchanged(rec: FileRecord, summary: IndexSummary) -> None:
    """Account for a file whose content is what the manifest says."""
    if rec.status == "indexed":
        summary.files_indexed += 1
        summary.files_unchanged += 1
    elif rec.status == "empty":
        summary.files_empty += 1
        summary.files_unchanged += 1
    else:
        summary.skipped.append(_skipped_issue(rec.path, rec.status))


def _skipped_issue(rel: str, status: str) -> FileIssue:
    if status == "minified":
        return FileIssue(
            rel,
            "minified",
            f"most of its text is in lines over {MINIFIED_LINE_CHARS:,} characters: minified or "
            "generated code or data, which would only add noise to search",
        )
    return FileIssue(rel, "binary", "binary content (a NUL byte in the first 8 KiB)")


def _unreadable_issue(rel: str, exc: OSError) -> FileIssue:
    return FileIssue(
        rel,
        "unreadable",
        f"cannot read: {exc.strerror or exc}; check its permissions "
        "(it is tried again on every sync)",
    )


def _may_read(path: Path) -> bool:
    """Whether this process may open `path` for reading (by permissions)."""
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.R_OK, effective_ids=effective)


class _NotRegular(Exception):
    """The path is no longer a regular file (`mode` says what it is)."""

    def __init__(self, mode: int) -> None:
        super().__init__(mode)
        self.mode = mode


# O_NONBLOCK: a path swapped for a FIFO after the stat below must not block
# the open. O_NOCTTY: a terminal device must never become ours. No
# O_NOFOLLOW: a symbolic link to a regular file is indexed, as the walk says.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _read_regular(path: Path) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file at `path`, and its stat after reading.

    The walk saw a regular file, but the path may have been replaced since.
    It is checked before opening (so a device is never opened: opening some
    has effects, a tape rewinding or a watchdog starting) and through the
    open descriptor after (the path may change between the two). Raises
    `_NotRegular` for anything else, and OSError as `open` does. The stat
    is the descriptor's, so it belongs to the bytes read even if the path is
    replaced meanwhile.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _NotRegular(mode)
    fd = os.open(path, _OPEN_FLAGS)
    with open(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegular(mode)
        data = fh.read()
        return data, os.fstat(fd)
