"""Checking an index after its config changed: `cidx fix-config`'s verification.

`verify` reads the manifest of the collection a config names and checks the
store agrees with it: the shard is in place, it holds as many points as the
manifest lists chunks, and a keyword query made from an indexed chunk finds
that chunk. `cidx.relocate` runs it after every fix that changed something.
"""

from __future__ import annotations

import re
from contextlib import closing

from cidx.collections import Collections
from cidx.config import Config
from cidx.errors import CidxError
from cidx.messages import QueryRequest, Verification
from cidx.parts import IndexParts, Models
from cidx.project import ProjectPaths
from cidx.state import StateDB
from cidx.storage import StorageLocation, open_store, storage_location

__all__ = ["verify"]

# Indexed chunks tried as the sample query (the first with words to search for).
_SAMPLES = 5
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def verify(paths: ProjectPaths, config: Config, *, quick: bool = False) -> Verification:
    """Check the index `config` names: its manifest and store agree, and a
    sample query finds its chunk. `quick` reads the manifest and checks the
    shard is in place, without opening it."""
    location = storage_location(paths, config)
    with closing(StateDB(paths.state_db, collection=config.collection)) as db:
        manifest = db.manifest(config.collection)
        files, chunks = manifest.counts()
        problems: list[str] = []
        shard = location.collection_dir(config.collection)
        if quick or location.mode != "local":
            if chunks and location.mode == "local" and not (shard / "edge_config.json").is_file():
                problems.append(
                    f"The manifest lists {chunks:,} chunks but the shard {shard} is missing. "
                    "Run `cidx index` to rebuild it."
                )
            if quick:
                return Verification(files, chunks, problems=problems)
        return _verify_store(paths, config, location, db, files, chunks, problems)


def _verify_store(
    paths: ProjectPaths,
    config: Config,
    location: StorageLocation,
    db: StateDB,
    files: int,
    chunks: int,
    problems: list[str],
) -> Verification:
    store = open_store(location)
    try:
        collections = Collections(store, db, config.embedding.dim, config.collection)
        try:
            points = store.count(config.collection) if collections.exists(config.collection) else 0
        except CidxError as exc:
            problems.append(exc.message)
            return Verification(files, chunks, None, problems=problems)
        if points != chunks:
            problems.append(
                f"The store holds {points:,} points but the manifest lists {chunks:,} chunks. "
                "Run `cidx index` to repair the index."
            )
        parts = IndexParts(
            paths, config, location, db, store, collections, Models(config.embedding.max_length)
        )
        query, found = _sample_query(parts)
        if query is not None and not found:
            problems.append(
                f"The sample query {query!r} did not find its own chunk. Run `cidx doctor` to "
                "check the index."
            )
        return Verification(files, chunks, points, query, found, problems)
    finally:
        store.close()


def _sample_query(parts: IndexParts) -> tuple[str | None, bool | None]:
    """A keyword query made from an indexed chunk, and whether it finds that
    chunk's text (any copy of it: identical chunks are equally good answers)."""
    from cidx.search import Searcher  # the chunking languages: only when verifying

    collection = parts.config.collection
    ids = parts.db.manifest(collection).sample_chunk_ids(_SAMPLES)
    if not ids:
        return None, None
    for hit in parts.store.retrieve(collection, ids):
        symbol = str(hit.payload.get("symbol") or "")
        text = str(hit.payload.get("text") or "")
        words = _WORD.findall(symbol) or _WORD.findall(text)
        if not words:
            continue
        query = " ".join(words[:8])
        results = Searcher(parts).search(QueryRequest(query, limit=10, mode="keyword"))
        return query, any(r.text == text for r in results)
    return None, None
