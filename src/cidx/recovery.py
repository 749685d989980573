"""Rebuilding a damaged part of an index from the parts that survived.

An index is three things that can be damaged independently: `config.json`,
`state.db` (manifest and embedding cache) and the store's shard. Each can be
rebuilt from the others without embedding anything again:

- a config from the data around it: the collection folder under
  `qdrant-data/` names the project id and the model, the shard's own config
  gives the vector size (`recreate_config`);
- a state DB from the shard: every point's payload has its path, language,
  symbol, lines, chunk hash, file hash and text, and its dense vector, so
  the manifest and the embedding cache come back from a scroll
  (`rebuild_state`);
- a shard from the files and the embedding cache: that is an ordinary sync
  after the damaged shard is set aside (`cidx.indexer`).

Damaged files are renamed aside (`*.damaged-<time>`), never deleted before
their replacement exists; `leftovers` finds them for `cidx doctor --repair`.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cidx.chunking import CHUNKER_VERSION, Chunk
from cidx.config import (
    DEFAULT_MAX_FILE_SIZE,
    Config,
    EmbeddingSettings,
    IdentityRecord,
    save_config,
)
from cidx.embedding import embedding_settings
from cidx.errors import StoreDamagedError
from cidx.identity import collection_name, model_slug, project_identity
from cidx.indexer import META_DIRTY, META_STORE_DAMAGED
from cidx.project import ProjectPaths
from cidx.representation import dense_text, text_hash
from cidx.state import FileRecord, StateDB
from cidx.store import VectorStore

# What a damaged file is renamed to: "<name>.damaged-<unix ns>".
DAMAGED_SUFFIX = ".damaged-"
# A temporary file of `fsutil.write_atomic`: ".<name>.<pid>.tmp".
_TMP = re.compile(r"^\..+\.([0-9]+)\.tmp$")
# Payload fields a point must have to come back into the manifest.
_REQUIRED = ("path", "language", "kind", "symbol", "start_line", "end_line", "file_hash", "text")


@dataclass(frozen=True)
class RecreatedConfig:
    config: Config
    # The collection kept from before, or None when a new one was started.
    kept_collection: str | None


@dataclass(frozen=True)
class RebuiltState:
    files: int
    points: int  # points that came back into the manifest
    vectors: int  # cached vectors now (from the shard and what the old file yielded)
    set_aside: Path | None
    # The shard could not be read to the end: the manifest is left empty and
    # the store marked damaged, so the next sync rebuilds it from the files.
    store_damaged: bool = False


def set_aside(path: Path) -> Path | None:
    """Rename `path` (and a SQLite file's -wal/-shm) to `<name>.damaged-<time>`."""
    if not path.exists():
        return None
    aside = path.with_name(f"{path.name}{DAMAGED_SUFFIX}{time.time_ns()}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(aside.with_name(aside.name + suffix))
    return aside


# -- config ----------------------------------------------------------------


def recreate_config(paths: ProjectPaths, *, max_file_size: int | None = None) -> RecreatedConfig:
    """Write a valid config.json for the index folder's existing data.

    Whatever can still be read from the old file (its max file size, its
    project id) is kept unless given; the collection is the one under
    `qdrant-data/` made for the bundled model, so the store and the manifest
    stay in use. With no such collection, this is a new config.
    """
    old = _read_leniently(paths.config_file)
    embedding = embedding_settings()
    kept = _reusable_collection(paths, embedding, old.get("collection"))
    identity = _old_identity(old) or _derived_identity(paths, old.get("project_id"))
    if max_file_size is None:
        kept_size = old.get("max_file_size")
        if isinstance(kept_size, int) and kept_size > 0:
            max_file_size = kept_size
        else:
            max_file_size = DEFAULT_MAX_FILE_SIZE
    created_at = old.get("created_at")
    own_id = old.get("project_id") if isinstance(old.get("identity"), dict) else None
    config = Config(
        project_id=own_id if isinstance(own_id, str) and own_id else None,
        identity=identity,
        embedding=embedding,
        chunker_version=CHUNKER_VERSION,
        collection=kept or collection_name(identity.id, embedding.model_id),
        project_root=str(paths.root),
        max_file_size=max_file_size,
        created_at=(
            created_at
            if isinstance(created_at, str)
            else datetime.now(UTC).isoformat(timespec="seconds")
        ),
    )
    if paths.config_file.exists():
        set_aside(paths.config_file)
    save_config(paths, config)
    return RecreatedConfig(config, kept)


def _old_identity(old: dict[str, Any]) -> IdentityRecord | None:
    """The identity a damaged config still shows (a v1 config's random id is one)."""
    record = old.get("identity")
    if isinstance(record, dict):
        with contextlib.suppress(ValueError):
            return IdentityRecord.model_validate(record)
    legacy = old.get("project_id")
    if "identity" not in old and isinstance(legacy, str) and legacy:
        return IdentityRecord(id=legacy, source="legacy")
    return None


def _derived_identity(paths: ProjectPaths, own: object) -> IdentityRecord:
    who = project_identity(paths.root, own if isinstance(own, str) and own else None)
    return IdentityRecord(id=who.id, source=who.source)


def _read_leniently(path: Path) -> dict[str, Any]:
    """The fields of a damaged config that can still be read (none if it is not JSON)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _reusable_collection(
    paths: ProjectPaths, embedding: EmbeddingSettings, preferred: object
) -> str | None:
    """The collection under qdrant-data/ that the bundled model can keep using.

    Its name must be one cidx gives for this model, and its dense vectors
    (when the shard's config can still be read) the model's size. Among
    several, the old config's choice wins, then the most recently written.
    """
    if not paths.qdrant_dir.is_dir():
        return None
    candidates: list[tuple[float, str]] = []
    model_suffix = model_slug(embedding.model_id)
    for folder in paths.qdrant_dir.iterdir():
        name = folder.name
        if not folder.is_dir() or DAMAGED_SUFFIX in name or not name.startswith("cidx-"):
            continue
        # Names cidx gives (and gave) end with the model's slug.
        if not name.endswith(f"-{model_suffix}"):
            continue
        size = _dense_size(folder)
        if size is not None and size != embedding.dim:
            continue
        candidates.append((folder.stat().st_mtime, folder.name))
    names = [name for _, name in sorted(candidates, reverse=True)]
    if preferred in names:
        return str(preferred)
    return names[0] if names else None


def _dense_size(shard: Path) -> int | None:
    try:
        config = json.loads((shard / "edge_config.json").read_text(encoding="utf-8"))
        return int(config["vectors"]["dense"]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- state DB --------------------------------------------------------------


def rebuild_state(paths: ProjectPaths, config: Config, store: VectorStore | None) -> RebuiltState:
    """Set state.db aside and build a new one from the shard (None: the shard is
    unusable too, and only what the old file still yields is kept).

    The manifest gets each file's hash and chunk ids but no stat, so the next
    sync hashes every file once (no file is re-read twice). The index format
    is not recorded either: what built the shard is unknown, so the next sync
    re-chunks every file — with every vector found in the cache.
    """
    aside = set_aside(paths.state_db)
    db = StateDB(paths.state_db)
    manifest = db.manifest(config.collection)
    try:
        if aside is not None:
            _salvage_vectors(aside, db, config.embedding.dim)
        files: dict[str, list[tuple[int, int, str]]] = {}
        meta: dict[str, tuple[str, str]] = {}
        store_damaged = False
        if store is not None:
            try:
                _read_shard(store, config, db, files, meta)
            except StoreDamagedError:
                store_damaged = True
                files.clear()
        records = [
            FileRecord(
                path=path,
                size=-1,
                mtime_ns=0,
                hash=meta[path][0],
                status="indexed",
                language=meta[path][1],
                chunk_ids=tuple(pid for _, _, pid in sorted(chunks)),
                indexed_at=0.0,
            )
            for path, chunks in files.items()
        ]
        with db.transaction() as tx:
            manifest.put(tx, records)
            # The next sync checks manifest against store before trusting either.
            manifest.set_mark(META_DIRTY, str(time.time()), tx)
            if store_damaged:
                manifest.set_mark(
                    META_STORE_DAMAGED, "found while rebuilding the state database", tx
                )
        vectors = db.cache_size()
    finally:
        db.close()
    points = sum(len(chunks) for chunks in files.values())
    return RebuiltState(len(records), points, vectors, aside, store_damaged)


def _read_shard(
    store: VectorStore,
    config: Config,
    db: StateDB,
    files: dict[str, list[tuple[int, int, str]]],
    meta: dict[str, tuple[str, str]],
) -> int:
    """Fill `files` and `meta` from the shard's payloads, and the cache from its
    vectors; how many vectors were cached."""
    import numpy as np

    model = config.embedding.model_id
    batch: list[tuple[bytes, Any]] = []
    vectors = 0
    for record in store.points(config.collection):
        payload = record.payload
        if not all(key in payload for key in _REQUIRED):
            continue
        path = str(payload["path"])
        start, end = int(payload["start_line"]), int(payload["end_line"])
        files.setdefault(path, []).append((start, end, record.id))
        meta[path] = (str(payload["file_hash"]), str(payload["language"]))
        if record.dense is not None:
            chunk = Chunk(
                start, end, str(payload["kind"]), str(payload["symbol"]), str(payload["text"])
            )
            batch.append(
                (text_hash(dense_text(path, chunk)), np.asarray(record.dense, dtype=np.float32))
            )
        if len(batch) >= 1024:
            vectors += _put_vectors(db, model, batch)
            batch = []
    return vectors + _put_vectors(db, model, batch)


def _put_vectors(db: StateDB, model: str, batch: list[tuple[bytes, Any]]) -> int:
    if not batch:
        return 0
    with db.transaction() as tx:
        db.put_vectors(tx, model, batch)
    return len(batch)


def _salvage_vectors(old: Path, db: StateDB, dim: int) -> int:
    """Copy the cached vectors still readable in the damaged file `old` into `db`.

    Read in ranges of row ids, so that a damaged page loses the rows of its
    range and not the whole table.
    """
    copied = 0
    try:
        src = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
        top = src.execute("SELECT MAX(id) FROM embeddings").fetchone()[0] or 0
    except sqlite3.Error:
        return 0
    with contextlib.closing(src):
        step = 1000
        for low in range(0, int(top) + 1, step):
            try:
                rows = src.execute(
                    "SELECT model, text_hash, vector, used_at FROM embeddings "
                    "WHERE id >= ? AND id < ?",
                    (low, low + step),
                ).fetchall()
            except sqlite3.Error:
                continue
            rows = [r for r in rows if isinstance(r[2], bytes) and len(r[2]) == 4 * dim]
            with db.transaction() as tx:
                tx.executemany(
                    "INSERT INTO embeddings (model, text_hash, vector, used_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (model, text_hash) DO NOTHING",
                    rows,
                )
            copied += len(rows)
    return copied


# -- leftovers ---------------------------------------------------------------


def leftovers(paths: ProjectPaths, collection: str | None) -> list[Path]:
    """What the index folder holds that nothing uses: damaged files set aside,
    temporary files of atomic writes whose writer is gone, and — when the
    collection in use is known — everything else under qdrant-data/."""
    from cidx.owner.lock import pid_alive

    found: list[Path] = []
    if paths.index_dir.is_dir():
        for entry in paths.index_dir.iterdir():
            tmp = _TMP.match(entry.name)
            if DAMAGED_SUFFIX in entry.name or (tmp and not pid_alive(int(tmp.group(1)))):
                found.append(entry)
    if collection is not None and paths.qdrant_dir.is_dir():
        found.extend(p for p in paths.qdrant_dir.iterdir() if p.name != collection)
    return sorted(found)
