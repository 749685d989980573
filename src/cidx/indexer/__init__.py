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

A staged sync stores BM25 vectors first and leaves the dense ones to the
dense pass (`_dense`), which the manifest's `dense_pending` marks keep
resumable across crashes.

`_files` turns one changed file into points; `_sync` runs the syncs;
`_dense` fills in the dense vectors a staged sync left out.
"""

from cidx.indexer._dense import DensePass, DenseStep
from cidx.indexer._files import RACY_SECONDS, file_hash, is_racy
from cidx.indexer._sync import (
    BATCH_CHUNKS,
    INDEX_FORMAT,
    META_DIRTY,
    META_FORMAT,
    META_LAST_AT,
    META_LAST_SECONDS,
    META_STORE_DAMAGED,
    STAGE_ENV,
    Indexer,
    ProgressFn,
    Survey,
)

__all__ = [
    "BATCH_CHUNKS",
    "INDEX_FORMAT",
    "META_DIRTY",
    "META_FORMAT",
    "META_LAST_AT",
    "META_LAST_SECONDS",
    "META_STORE_DAMAGED",
    "RACY_SECONDS",
    "STAGE_ENV",
    "DensePass",
    "DenseStep",
    "Indexer",
    "ProgressFn",
    "Survey",
    "file_hash",
    "is_racy",
]
