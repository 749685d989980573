"""The dense pass: dense vectors for points a staged sync stored without them.

A staged sync (`Indexer.sync(staged=True)`) writes each new chunk's point
with its BM25 vector and payload, plus its dense vector when the embedding
cache has one, and marks the file `dense_pending` in the manifest in the
same transaction that records its points. Keyword search works from then
on. The dense pass then embeds the rest, a batch of files at a time: source
files before tests, tests before documentation, and the most recently
changed first within each, since those are what people search for. Each
batch reads the points' texts back from the store (what was indexed, not
what the file holds now), embeds them through the cache (without holding
the owner's write lock: a sync goes between), adds the vectors to the
points of the files still as they were, and only then clears their marks: a crash or SIGKILL
anywhere leaves marks on points that may already have their vectors, and
doing a batch again is harmless (the cache answers it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cidx.embedcache import cached_only
from cidx.failpoints import failpoint
from cidx.messages import IndexSummary, Progress
from cidx.representation import dense_text_of
from cidx.state import DenseShare, FileRecord

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from cidx.parts import IndexParts


# Chunks embedded per batch: the per-batch costs (a manifest read, a store
# read and write, under the write lock) stay a small share of the model's
# time, and an owner that stops waits for one batch (a few seconds) at most.
DENSE_BATCH_CHUNKS = 256

# Prose, read by people more than searched by meaning: embedded last.
_DOC_LANGUAGES = frozenset({"markdown", "rst", "asciidoc", "text", "org", "latex"})
_TEST_DIR = re.compile(r"(^|/)(tests?|testing|spec|specs|__tests__|e2e)/")
_TEST_FILE = re.compile(r"(^|/)(test_[^/]*|[^/]*_test\.\w+|[^/]*\.(test|spec)\.\w+|conftest\.py)$")


def dense_order(record: FileRecord) -> tuple[int, int, str]:
    """Sort key of the dense pass: source, then tests, then docs; newest first."""
    if record.language in _DOC_LANGUAGES:
        kind = 2
    elif _TEST_DIR.search(record.path) or _TEST_FILE.search(record.path):
        kind = 1
    else:
        kind = 0
    return kind, -record.mtime_ns, record.path


@dataclass(frozen=True)
class DenseStep:
    """What one batch of the dense pass did."""

    files: int
    chunks: int
    embedded: int  # texts the model embedded for the batch (the rest came from the cache)

    @property
    def reused(self) -> int:
        """Chunks written from the cache. `embedded` counts the whole batch's new
        texts, also of files rewritten since it was planned and so not written."""
        return max(0, self.chunks - self.embedded)


@dataclass
class DenseBatch:
    """One batch, planned: the files, their points' ids and texts, and the
    vectors (from the cache, and then from the model for `missing`)."""

    model: str
    files: list[FileRecord]
    ids: list[str]
    texts: list[str]
    vectors: npt.NDArray[np.float32]
    # The first index of each text the cache lacks, by the text's hash.
    missing: dict[bytes, int]
    hashes: list[bytes]
    fresh: dict[bytes, npt.NDArray[np.float32]] = field(default_factory=dict)


class DensePass:
    """Fills in the dense vectors of one collection's pending points, a batch at a time.

    A batch is planned (`plan`) and written (`apply`) under the caller's
    write lock, and embedded (`embed`) without it, so that a sync never waits
    for the model: `apply` writes only the files whose records are still
    the ones planned (a file written again since keeps its own mark).
    `step` does all three, for callers that hold the lock throughout.
    """

    def __init__(self, parts: IndexParts, collection: str, dim: int) -> None:
        self.db = parts.db
        self.store = parts.store
        self.models = parts.models
        self.collections = parts.collections
        self.config = parts.config
        self.collection = collection
        self.manifest = parts.db.manifest(collection)
        self.dim = dim

    def share(self) -> DenseShare | None:
        """How far the pass is; None when nothing is pending."""
        return self.manifest.dense_share()

    def step(self, chunks: int = DENSE_BATCH_CHUNKS) -> DenseStep | None:
        """Embed and write the next batch of at least `chunks` chunks (whole
        files); None when nothing is pending."""
        batch = self.plan(chunks)
        if batch is None:
            return None
        self.embed(batch)
        return self.apply(batch)

    def plan(self, chunks: int = DENSE_BATCH_CHUNKS) -> DenseBatch | None:
        """The next batch (files in `dense_order`), with what the cache holds
        of it; None when nothing is pending."""
        if self.collections.migration() is not None:
            # A migration copies whole points between collections: the pass
            # waits for it to end (staged syncs do not start meanwhile).
            return None
        pending = sorted(self.manifest.dense_pending(), key=dense_order)
        if not pending:
            return None
        chosen: list[FileRecord] = []
        ids: list[str] = []
        for record in pending:
            chosen.append(record)
            ids.extend(record.chunk_ids)
            if len(ids) >= chunks:
                break
        # The texts that were indexed, not what the files hold now. Points the
        # store lacks are drift the next sync's reconcile repairs.
        hits = self.store.retrieve(self.collection, ids) if ids else []
        texts = [dense_text_of(hit.payload) for hit in hits]
        model = self.collections.model_of(self.collection) or self.config.embedding.model_id
        known = cached_only(self.db, model, self.dim, texts)
        missing: dict[bytes, int] = {}
        for i, h in enumerate(known.hashes):
            if not known.found[i] and h not in missing:
                missing[h] = i
        return DenseBatch(
            model, chosen, [hit.id for hit in hits], texts, known.vectors, missing, known.hashes
        )

    def embed(self, batch: DenseBatch) -> None:
        """Run the model on what the cache lacked (no lock needed: nothing is written)."""
        if not batch.missing:
            return
        models = self.models.variant(batch.model) or self.models
        order = list(batch.missing.items())
        vectors = models.embedder.embed([batch.texts[i] for _, i in order])
        batch.fresh = {h: vectors[k] for k, (h, _) in enumerate(order)}

    def apply(self, batch: DenseBatch) -> DenseStep:
        """Store the vectors of the files still as planned, cache the new ones,
        and clear those files' marks."""
        if batch.fresh:
            with self.db.transaction() as tx:
                self.db.put_vectors(tx, batch.model, batch.fresh.items())
            failpoint("after_embed")
        now = self.manifest.files([r.path for r in batch.files])
        kept = [
            r
            for r in batch.files
            if (n := now.get(r.path)) is not None and n.dense_pending and n.chunk_ids == r.chunk_ids
        ]
        wanted = {pid for r in kept for pid in r.chunk_ids}
        ids: list[str] = []
        vectors: list[list[float]] = []
        for i, pid in enumerate(batch.ids):
            if pid in wanted:
                vec = batch.fresh.get(batch.hashes[i])
                ids.append(pid)
                vectors.append((vec if vec is not None else batch.vectors[i]).tolist())
        self.store.set_dense(self.collection, ids, vectors)
        failpoint("after_set_dense")
        with self.db.transaction() as tx:
            self.manifest.dense_done(tx, kept)
        return DenseStep(len(kept), len(ids), len(batch.fresh))


def complete_dense(
    dense: DensePass,
    summary: IndexSummary,
    emit: Callable[[Progress], None],
    on_writes: Callable[[int], None],
) -> None:
    """Run the pass to its end within a sync (a one-shot command's), counting
    what it embeds in `summary`; its files and chunks drive the progress bar."""
    share = dense.share()
    if share is None:
        return
    files = len(dense.manifest.dense_pending())
    done_files = done_chunks = 0
    emit(Progress("index", 0, files, 0, share.pending))
    while (step := dense.step()) is not None:
        done_files += step.files
        done_chunks += step.chunks
        summary.chunks_embedded += step.embedded
        summary.chunks_reused += step.reused
        on_writes(step.chunks)
        emit(
            Progress(
                "index",
                done_files,
                files,
                done_chunks,
                share.pending,
                summary.chunks_embedded,
                summary.chunks_reused,
            )
        )
