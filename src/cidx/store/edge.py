"""The embedded backend: one Qdrant Edge shard directory per collection.

Shards live under `.code-indexer/qdrant-data/<collection>/`, each with its
write-ahead log (never disabled: a point is durable once `update` returns,
which is what makes a SIGKILL mid-index recoverable). A shard can be open in
one process only; the owner lock above this layer guarantees that, and the
shard's own WAL lock is the last line of defence.

HNSW is never built (`indexing_threshold=0`): measured here, an exact
top-10 search over 100k points takes ~9 ms (cidx's hybrid pair of queries
~23 ms) while building the graph takes 40 s on two cores and its answers
are approximate (benchmarks/RESULTS.md, "Store scale").

The engine writes through memory-mapped, sparsely preallocated files (32 MiB
WAL segments, vector and payload pages): on a full disk a write to one of
them kills the process with SIGBUS instead of failing. So every write first
checks that the filesystem has room for it (`_room_for`), and a refusal is a
`DiskFullError` naming the folder and the bytes needed. A shard that cannot
be read back raises `StoreDamagedError`; `set_aside` moves such a shard out
of the way so a new one can be built before the old one is deleted.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as q

from cidx.errors import CidxError, StoreDamagedError, StoreError
from cidx.fsutil import disk_full, disk_usage, ensure_free, free_bytes, private_dir
from cidx.store.base import (
    DENSE,
    DROPPED,
    PAYLOAD_INDEXES,
    SET_ASIDE,
    SPARSE,
    CollectionInfo,
    Hit,
    PointData,
    PointFilter,
    PointRecord,
    SkipFn,
    SparseVec,
    StoreQuery,
)
from cidx.store.edge_wire import filter_for, point_vectors, request_for

log = logging.getLogger(__name__)

# Free space a write needs, from measurements with qdrant-edge-py 0.9.0: an
# upsert allocates about 2.1 times the points' raw size (WAL record plus
# storage), and its first touch of a page allocates a whole block in each
# of a segment's ~20 files (45 KiB for the first point of a new shard).
# Checked with a factor of 3 and a fixed allowance on top, so that a
# refusal comes well before the engine could hit a full disk.
WRITE_FACTOR = 3
WRITE_ALLOWANCE = 4 * 1024 * 1024
# A new shard allocates ~100 KiB (config, empty segment, WAL header).
CREATE_BYTES = WRITE_ALLOWANCE
# Bytes a point adds beyond its vectors and payload text (ids, versions,
# payload keys and index entries).
POINT_OVERHEAD = 512


# Dense vectors are read through the page cache as searches touch them ("cold"),
# not loaded whole into the process when the shard opens (the engine's default,
# "cached"): its first storage chunk is 32 MiB, all of it resident from the
# start even for a few hundred points, which made every open project cost
# ~34 MB (a daemon holding five, 1.85 x one `cidx watch`; benchmarks/RESULTS.md).
# An exact search scans every vector, so what a search uses is resident after
# the first one either way. Fixed in a segment when it is created: shards
# created before keep loading as they are.
DENSE_MEMORY = q.Memory.Cold


def shard_exists(path: Path) -> bool:
    """Whether `path` is a complete shard (its config is written last on creation)."""
    return (path / "edge_config.json").exists()


class EdgeStore:
    """A folder of Qdrant Edge shards (one per collection)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._shards: dict[str, Any] = {}
        self._lock = threading.Lock()
        # The last batch upserted, as given and as engine points (see `upsert`).
        self._last_batch: tuple[Sequence[PointData], list[Any]] | None = None

    # -- collections -------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.data_dir / name

    def list_collections(self) -> list[str]:
        if not self.data_dir.is_dir():
            return []
        return sorted(p.name for p in self.data_dir.iterdir() if shard_exists(p))

    def collection_exists(self, name: str) -> bool:
        return shard_exists(self._path(name))

    def create_collection(self, name: str, dim: int) -> None:
        path = self._path(name)
        private_dir(self.data_dir)
        ensure_free(self.data_dir, CREATE_BYTES)
        if path.exists() and not self.collection_exists(name):
            # A fragment of a creation killed before the shard's config was
            # written: the engine refuses to create over its segments.
            path.rename(self._aside(name, SET_ASIDE))
        config = q.EdgeConfig(
            vectors={
                DENSE: q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine, memory=DENSE_MEMORY)
            },
            sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
            optimizers=q.EdgeOptimizersConfig(indexing_threshold=0),
        )
        with self._lock:
            try:
                shard = q.EdgeShard.create(str(path), config)
                shard.update(
                    q.UpdateOperation.create_field_index("path", q.KeywordIndexParams(prefix=True))
                )
                for field_name in PAYLOAD_INDEXES:
                    if field_name != "path":
                        shard.update(
                            q.UpdateOperation.create_field_index(
                                field_name, q.PayloadSchemaType.Keyword
                            )
                        )
                shard.flush()
            except Exception as exc:
                raise _failure(f"Cannot create the index shard at {path}", path, exc) from exc
            self._shards[name] = shard

    def drop_collection(self, name: str) -> None:
        with self._lock:
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
        path = self._path(name)
        if path.exists():
            # Renamed first: a process killed while deleting leaves a folder
            # under another name, never a fragment that looks like the shard.
            gone = self._aside(name, DROPPED)
            path.rename(gone)
            shutil.rmtree(gone)

    def rename_collection(self, old: str, new: str) -> None:
        """Give the collection `old` the name `new` (atomic: one rename of its folder)."""
        with self._lock:
            shard = self._shards.pop(old, None)
            if shard is not None:
                shard.close()
        target = self._path(new)
        if target.exists():
            raise StoreError(f"Cannot rename the index shard to {target}: it exists already.")
        try:
            self._path(old).rename(target)
        except OSError as exc:
            raise StoreError(
                f"Cannot rename the index shard {self._path(old)} to {target}: "
                f"{exc.strerror or exc}."
            ) from None

    def _aside(self, name: str, suffix: str) -> Path:
        return self.data_dir / f"{name}{suffix}{time.time_ns()}"

    def set_aside(self, name: str) -> Path | None:
        """Move the collection's files out of its place (closing it): a new one can
        then be created under the same name while the old files still exist."""
        with self._lock:
            shard = self._shards.pop(name, None)
            if shard is not None:
                try:
                    shard.close()
                except BaseException as exc:  # a damaged shard may fail to close
                    if not _engine_failed(exc):
                        raise
        path = self._path(name)
        if not path.exists():
            return None
        aside = self._aside(name, SET_ASIDE)
        path.rename(aside)
        return aside

    def drop_set_aside(self, name: str) -> list[Path]:
        """Delete what `set_aside` (or an interrupted drop) left of this collection;
        the paths deleted."""
        if not self.data_dir.is_dir():
            return []
        prefixes = (name + SET_ASIDE, name + DROPPED)
        gone = sorted(p for p in self.data_dir.iterdir() if p.name.startswith(prefixes))
        for path in gone:
            shutil.rmtree(path, ignore_errors=True)
        return gone

    def _shard(self, name: str) -> Any:
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        with self._lock:
            shard = self._shards.get(name)
            if shard is None:
                path = self._path(name)
                if not self.collection_exists(name):
                    raise StoreError(
                        f"The index shard {path} does not exist. Run `cidx index` to rebuild it."
                    )
                try:
                    shard = q.EdgeShard.load(str(path))
                except BaseException as exc:
                    if not _engine_failed(exc):
                        raise
                    if "WouldBlock" in str(exc):
                        raise StoreError(
                            f"The index shard {path} is open in another process. Stop the "
                            "other cidx process on this project, or wait for it to finish."
                        ) from exc
                    raise _failure(f"Cannot open the index shard {path}", path, exc) from exc
                self._shards[name] = shard
            return shard

    # -- points ------------------------------------------------------------

    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        if not points:
            return
        shard = self._shard(name)
        self._room_for(name, sum(_point_bytes(p) for p in points))
        # The same batch (the same, unchanged sequence) written to a second
        # collection, as a migration's dual write does, reuses its engine
        # points: building them is most of an upsert.
        last = self._last_batch
        if last is not None and last[0] is points:
            batch = last[1]
        else:
            batch = [q.Point(p.id, point_vectors(p), p.payload) for p in points]
            self._last_batch = (points, batch)
        self._update(name, shard, q.UpdateOperation.upsert_points(batch))

    def set_dense(self, name: str, ids: Sequence[str], vectors: Sequence[list[float]]) -> None:
        """Add dense vectors to points stored without them (measured with
        qdrant-edge-py 0.9.0: a point may hold only its sparse vector, dense
        searches skip it, and updating its vectors keeps the sparse one)."""
        if not ids:
            return
        shard = self._shard(name)
        self._room_for(name, sum(4 * len(v) + 64 for v in vectors))
        op = q.UpdateOperation.update_vectors(
            [q.PointVectors(i, {DENSE: v}) for i, v in zip(ids, vectors, strict=True)]
        )
        self._update(name, shard, op)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Delete points, leaving the BM25 statistics as if they had never been there.

        The engine keeps a deleted point's sparse vector in its in-memory
        inverted index, counted in every IDF, until the shard is loaded
        again: a long-lived process would rank keyword results differently
        from a fresh one. Emptying the sparse vectors first takes them out
        of those statistics at once (measured with qdrant-edge-py 0.9.0;
        tests/test_store_edge.py checks it). Only points that exist can be
        updated, hence the lookup.
        """
        if not ids:
            return
        shard = self._shard(name)
        self._room_for(name, 64 * len(ids))
        try:
            present = [r.id for r in shard.retrieve(list(ids), False, False)]
        except BaseException as exc:
            if not _engine_failed(exc):
                raise
            raise _failure(
                f"Cannot read the index shard {self._path(name)}", self._path(name), exc
            ) from exc
        if present:
            empty = q.SparseVector([], [])
            self._update(
                name,
                shard,
                q.UpdateOperation.update_vectors(
                    [q.PointVectors(i, {SPARSE: empty}) for i in present]
                ),
            )
        self._update(name, shard, q.UpdateOperation.delete_points(list(ids)))

    def delete_by_filter(self, name: str, flt: PointFilter) -> None:
        if flt.is_empty():
            raise ValueError("refusing to delete by an empty filter")
        # Through `delete`, for its BM25 statistics.
        ids = [pid for pid, _ in self.scroll(name, flt=flt)]
        for start in range(0, len(ids), 1024):
            self.delete(name, ids[start : start + 1024])

    def _room_for(self, name: str, data_bytes: int) -> None:
        ensure_free(self._path(name), WRITE_FACTOR * data_bytes + WRITE_ALLOWANCE)

    def _update(self, name: str, shard: Any, op: Any) -> None:
        try:
            shard.update(op)
        except BaseException as exc:
            if not _engine_failed(exc):
                raise
            raise _failure(
                f"The index shard {self._path(name)} refused an update", self._path(name), exc
            ) from exc

    def scroll(
        self,
        name: str,
        *,
        payload_fields: Sequence[str] = (),
        batch: int = 2048,
        flt: PointFilter | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        with_payload: Any = (
            q.PayloadSelector.Include(list(payload_fields)) if payload_fields else False
        )
        for record in self._scroll(name, with_payload, False, batch, flt):
            yield str(record.id), dict(record.payload or {})

    def points(self, name: str, *, batch: int = 512) -> Iterator[PointRecord]:
        for record in self._scroll(name, True, [DENSE], batch, None):
            vectors = record.vector or {}
            dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
            yield PointRecord(
                str(record.id), dict(record.payload or {}), list(dense) if dense else None
            )

    def page(
        self, name: str, *, offset: str | None = None, limit: int = 256
    ) -> tuple[list[PointData], str | None]:
        """Up to `limit` whole points (both vectors and the payload) in id order,
        from the id `offset` on, and the id the next page starts at (None at
        the end): a copy can stop after any page and resume from there."""
        records, following = self._page(name, offset, limit)
        points = []
        for record in records:
            vectors = record.vector if isinstance(record.vector, dict) else {}
            sparse = vectors.get(SPARSE)
            points.append(
                PointData(
                    str(record.id),
                    list(vectors.get(DENSE) or []),
                    SparseVec(list(sparse.indices), list(sparse.values))
                    if sparse is not None
                    else SparseVec([], []),
                    dict(record.payload or {}),
                )
            )
        return points, following

    def copy_page(
        self,
        source: str,
        target: str,
        *,
        offset: str | None = None,
        limit: int = 256,
        skip: SkipFn | None = None,
    ) -> tuple[int, str | None]:
        """A page of `source` into `target`, the engine's records going back in as
        they came out: no `PointData` is made and no vector copied through
        Python lists, which was half of a copy's time (benchmarks/RESULTS.md,
        "Collection migration")."""
        records, following = self._page(source, offset, limit)
        if skip is not None and records:
            ids = [str(r.id) for r in records]
            left_out = skip(ids)
            if left_out:
                records = [r for r, pid in zip(records, ids, strict=True) if pid not in left_out]
        if not records:
            return 0, following
        shard = self._shard(target)
        batch = []
        size = 0
        for record in records:
            vectors = record.vector if isinstance(record.vector, dict) else {}
            payload = record.payload or {}
            sparse = vectors.get(SPARSE)
            size += _record_bytes(
                len(vectors.get(DENSE) or ()), len(sparse.indices) if sparse else 0, payload
            )
            batch.append(q.Point(record.id, vectors, payload))
        self._room_for(target, size)
        self._update(target, shard, q.UpdateOperation.upsert_points(batch))
        return len(batch), following

    def _page(self, name: str, offset: str | None, limit: int) -> tuple[list[Any], str | None]:
        shard = self._shard(name)
        try:
            records, following = shard.scroll(
                q.ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=True)
            )
        except BaseException as exc:
            if not _engine_failed(exc):
                raise
            path = self._path(name)
            raise _failure(f"Cannot read the index shard {path}", path, exc) from exc
        return list(records), None if following is None else str(following)

    def _scroll(
        self, name: str, with_payload: Any, with_vector: Any, batch: int, flt: PointFilter | None
    ) -> Iterator[Any]:
        shard = self._shard(name)
        condition = filter_for(flt)
        offset: Any = None
        while True:
            try:
                records, offset = shard.scroll(
                    q.ScrollRequest(
                        offset=offset,
                        limit=batch,
                        filter=condition,
                        with_payload=with_payload,
                        with_vector=with_vector,
                    )
                )
            except BaseException as exc:
                if not _engine_failed(exc):
                    raise
                path = self._path(name)
                raise _failure(f"Cannot read the index shard {path}", path, exc) from exc
            yield from records
            if offset is None:
                return

    def retrieve(self, name: str, ids: Sequence[str]) -> list[Hit]:
        shard = self._shard(name)
        try:
            records = shard.retrieve(list(ids), True, False)
        except BaseException as exc:
            if not _engine_failed(exc):
                raise
            path = self._path(name)
            raise _failure(f"Cannot read the index shard {path}", path, exc) from exc
        return [Hit(str(r.id), 0.0, dict(r.payload or {})) for r in records]

    def count(self, name: str, flt: PointFilter | None = None) -> int:
        shard = self._shard(name)
        request = q.CountRequest(exact=True, filter=filter_for(flt))
        try:
            return int(shard.count(request))
        except BaseException as exc:
            if not _engine_failed(exc):
                raise
            path = self._path(name)
            raise _failure(f"Cannot read the index shard {path}", path, exc) from exc

    # -- search ------------------------------------------------------------

    def query(self, name: str, query: StoreQuery) -> list[Hit]:
        return self.query_batch(name, [query])[0]

    def query_batch(self, name: str, queries: Sequence[StoreQuery]) -> list[list[Hit]]:
        if not queries:
            return []
        shard = self._shard(name)
        requests = [request_for(query) for query in queries]
        try:
            if len(requests) == 1:
                results = [shard.query(requests[0])]
            else:
                results = shard.query_batch(q.QueryBatchRequest(requests))
        except BaseException as exc:
            if not _engine_failed(exc):
                raise
            path = self._path(name)
            raise _failure(f"Search failed on the index shard {path}", path, exc) from exc
        return [[Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in r] for r in results]

    # -- maintenance -------------------------------------------------------

    def info(self, name: str) -> CollectionInfo:
        shard = self._shard(name)
        return CollectionInfo(
            name=name,
            points=int(shard.info().points_count),
            disk_bytes=disk_usage(self._path(name)),
        )

    def optimize(self, name: str) -> None:
        """Let the engine merge and vacuum segments, if the disk has room for it.

        A vacuum rewrites a segment next to the old one, so it may need as
        much again as the shard takes. It is housekeeping (search results do
        not depend on it), so on a nearly full disk it is skipped, not refused.
        """
        shard = self._shard(name)
        path = self._path(name)
        needed = disk_usage(path) + WRITE_ALLOWANCE
        if free_bytes(path) < needed:
            log.info("skipped optimizing %s: less than %d bytes free", path, needed)
            return
        try:
            shard.optimize()
        except BaseException as exc:
            if not _engine_failed(exc):
                raise
            raise _failure(f"Cannot optimize the index shard {path}", path, exc) from exc

    def flush(self, name: str | None = None) -> None:
        """Persist segments and checkpoint the write-ahead log: of the shards
        open in this process, or of `name` (opened if it is not)."""
        if name is not None:
            shard = self._shard(name)
            with self._lock:
                self._flush(name, shard)
            return
        with self._lock:
            for open_name, shard in self._shards.items():
                self._flush(open_name, shard)

    def _flush(self, name: str, shard: Any) -> None:
        try:
            shard.flush()
        except BaseException as exc:
            if not _engine_failed(exc):
                raise
            path = self._path(name)
            raise _failure(f"Cannot save the index shard {path}", path, exc) from exc

    def close(self) -> None:
        with self._lock:
            shards, self._shards = self._shards, {}
            for name, shard in shards.items():
                try:
                    self._flush(name, shard)
                finally:
                    shard.close()

    def writer_claims(self) -> None:
        """One machine opens an embedded store: its owner lock is the only claim."""
        return None


def _engine_failed(exc: BaseException) -> bool:
    """Whether `exc` is the engine reporting a failure, rather than an interrupt.

    The engine raises `Exception`s, and `pyo3_runtime.PanicException` (a
    `BaseException`) when it panics, as it does on some damaged files.
    """
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _failure(what: str, path: Path, exc: BaseException) -> CidxError:
    """The error for an engine failure: a full disk, or damaged files."""
    text = str(exc)
    if "No space left" in text or "os error 28" in text or "Disk quota" in text:
        return disk_full(path)
    detail = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if len(detail) > 300:
        detail = detail[:300] + "…"
    return StoreDamagedError(
        f"{what}: its files are damaged ({detail}). Run `cidx index` to rebuild it: the "
        "damaged files are moved aside and replaced, reusing cached embeddings.",
        detail,
    )


def _point_bytes(point: PointData) -> int:
    return _record_bytes(len(point.dense), len(point.sparse.indices), point.payload)


def _record_bytes(dense: int, sparse: int, payload: dict[str, Any]) -> int:
    text = sum(len(v) if isinstance(v, str) else 16 for v in payload.values())
    return 4 * dense + 8 * sparse + text + POINT_OVERHEAD
