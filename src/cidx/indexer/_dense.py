"""The dense pass: dense vectors for points a staged sync stored without them.

A staged sync (`Indexer.sync(staged=True)`) writes each new chunk's point
with its BM25 vector and payload, plus its dense vector when the embedding
cache has one, and marks the file `dense_pending` in the manifest in the
same transaction that records its points. Keyword search works from then
on. The dense pass then embeds the rest, a batch of files at a time: source
files before tests, tests before documentation, and the most recently
changed first within each, since those are what people search for. Each
batch reads the points' texts back from the store (what was indexed, not
what the file holds now), embeds them through the cache, adds the vectors
to the points, and only then clears the files' marks: a crash or SIGKILL
anywhere leaves marks on points that may already have their vectors, and
doing a batch again is harmless (the cache answers it).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cidx.embedcache import embed_cached
from cidx.failpoints import failpoint
from cidx.representation import dense_text_of
from cidx.state import DenseShare, FileRecord

if TYPE_CHECKING:
    from cidx.parts import IndexParts

log = logging.getLogger("cidx.indexer")

# Chunks embedded per batch: a query or a sync waits for at most one batch
# (a few seconds on two cores), and the per-batch costs (a manifest read, a
# store read and write) stay a small share of the model's time.
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
    embedded: int  # of `chunks`, those the model embedded (the rest came from the cache)


class DensePass:
    """Fills in the dense vectors of one collection's pending points, a batch a call.

    Callers serialise it with syncs (the engine's write lock): a batch and a
    sync never interleave, so the records a batch read are the ones it marks done.
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
        """Embed the next batch of at least `chunks` chunks (whole files); None
        when nothing is pending."""
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
        # Points the store lacks are drift the next sync's reconcile repairs.
        hits = self.store.retrieve(self.collection, ids) if ids else []
        model = self.collections.model_of(self.collection) or self.config.embedding.model_id
        models = self.models.variant(model) or self.models
        done = embed_cached(
            self.db,
            model,
            self.dim,
            [dense_text_of(hit.payload) for hit in hits],
            lambda: models.embedder,
        )
        self.store.set_dense(
            self.collection, [hit.id for hit in hits], [v.tolist() for v in done.vectors]
        )
        failpoint("after_set_dense")
        with self.db.transaction() as tx:
            self.manifest.dense_done(tx, chosen)
        return DenseStep(len(chosen), len(hits), done.embedded)
