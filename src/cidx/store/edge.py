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
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as q

from cidx.errors import StoreError
from cidx.fsutil import disk_usage
from cidx.store.base import (
    DENSE,
    PAYLOAD_INDEXES,
    SPARSE,
    CollectionInfo,
    Hit,
    Nearest,
    PointData,
    PointFilter,
    SparseVec,
    StoreQuery,
)


class EdgeStore:
    """A folder of Qdrant Edge shards (one per collection)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._shards: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- collections -------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.data_dir / name

    def list_collections(self) -> list[str]:
        if not self.data_dir.is_dir():
            return []
        return sorted(p.name for p in self.data_dir.iterdir() if (p / "edge_config.json").exists())

    def collection_exists(self, name: str) -> bool:
        return (self._path(name) / "edge_config.json").exists()

    def create_collection(self, name: str, dim: int) -> None:
        path = self._path(name)
        config = q.EdgeConfig(
            vectors={DENSE: q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine)},
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
                raise StoreError(f"Cannot create the index shard at {path}: {exc}") from exc
            self._shards[name] = shard

    def drop_collection(self, name: str) -> None:
        with self._lock:
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
        path = self._path(name)
        if path.exists():
            shutil.rmtree(path)

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
                        f"The index shard {path} does not exist. Run `cidx index --clear` "
                        "to rebuild the index."
                    )
                try:
                    shard = q.EdgeShard.load(str(path))
                except Exception as exc:
                    if "WouldBlock" in str(exc):
                        raise StoreError(
                            f"The index shard {path} is open in another process. Stop the "
                            "other cidx process on this project, or wait for it to finish."
                        ) from exc
                    raise StoreError(
                        f"Cannot open the index shard {path}: {exc}. Run `cidx index --clear` "
                        "to rebuild the index."
                    ) from exc
                self._shards[name] = shard
            return shard

    # -- points ------------------------------------------------------------

    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        if not points:
            return
        shard = self._shard(name)
        batch = [
            q.Point(
                p.id,
                {
                    DENSE: p.dense,
                    SPARSE: q.SparseVector(p.sparse.indices, p.sparse.values),
                },
                p.payload,
            )
            for p in points
        ]
        self._update(name, shard, q.UpdateOperation.upsert_points(batch))

    def delete(self, name: str, ids: Sequence[str]) -> None:
        if ids:
            shard = self._shard(name)
            self._update(name, shard, q.UpdateOperation.delete_points(list(ids)))

    def delete_by_filter(self, name: str, flt: PointFilter) -> None:
        if flt.is_empty():
            raise ValueError("refusing to delete by an empty filter")
        shard = self._shard(name)
        self._update(name, shard, q.UpdateOperation.delete_points_by_filter(_filter(flt)))

    def _update(self, name: str, shard: Any, op: Any) -> None:
        try:
            shard.update(op)
        except Exception as exc:
            raise StoreError(
                f"The index shard {self._path(name)} refused an update: {exc}"
            ) from exc

    def scroll(
        self, name: str, *, payload_fields: Sequence[str] = (), batch: int = 2048
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        shard = self._shard(name)
        with_payload: Any = (
            q.PayloadSelector.Include(list(payload_fields)) if payload_fields else False
        )
        offset: Any = None
        while True:
            records, offset = shard.scroll(
                q.ScrollRequest(
                    offset=offset, limit=batch, with_payload=with_payload, with_vector=False
                )
            )
            for record in records:
                yield str(record.id), dict(record.payload or {})
            if offset is None:
                return

    def retrieve(self, name: str, ids: Sequence[str]) -> list[Hit]:
        shard = self._shard(name)
        records = shard.retrieve(list(ids), True, False)
        return [Hit(str(r.id), 0.0, dict(r.payload or {})) for r in records]

    def count(self, name: str, flt: PointFilter | None = None) -> int:
        shard = self._shard(name)
        request = q.CountRequest(
            exact=True, filter=_filter(flt) if flt and not flt.is_empty() else None
        )
        return int(shard.count(request))

    # -- search ------------------------------------------------------------

    def query(self, name: str, query: StoreQuery) -> list[Hit]:
        return self.query_batch(name, [query])[0]

    def query_batch(self, name: str, queries: Sequence[StoreQuery]) -> list[list[Hit]]:
        if not queries:
            return []
        shard = self._shard(name)
        requests = [_request(query) for query in queries]
        try:
            if len(requests) == 1:
                results = [shard.query(requests[0])]
            else:
                results = shard.query_batch(q.QueryBatchRequest(requests))
        except Exception as exc:
            raise StoreError(f"Search failed on the index shard {self._path(name)}: {exc}") from exc
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
        shard = self._shard(name)
        shard.optimize()

    def flush(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.flush()

    def close(self) -> None:
        with self._lock:
            shards, self._shards = self._shards, {}
            for shard in shards.values():
                try:
                    shard.flush()
                finally:
                    shard.close()


def _vector(search: Nearest) -> Any:
    if isinstance(search.vector, SparseVec):
        return q.Query.Nearest(
            q.SparseVector(search.vector.indices, search.vector.values), using=SPARSE
        )
    return q.Query.Nearest(search.vector, using=DENSE)


def _request(query: StoreQuery) -> Any:
    flt = _filter(query.filter) if query.filter and not query.filter.is_empty() else None
    if query.rescore is not None:
        if query.fusion is not None:
            raise ValueError("a query either fuses or re-scores its searches, not both")
        return q.QueryRequest(
            limit=query.limit,
            prefetches=[
                q.Prefetch(limit=s.limit, query=_vector(s), filter=flt) for s in query.searches
            ],
            query=_vector(query.rescore),
            filter=flt,
            with_payload=query.with_payload,
        )
    if query.fusion is None:
        if len(query.searches) != 1:
            raise ValueError("a query without fusion takes exactly one search")
        return q.QueryRequest(
            limit=query.limit,
            query=_vector(query.searches[0]),
            filter=flt,
            with_payload=query.with_payload,
        )
    prefetches = [q.Prefetch(limit=s.limit, query=_vector(s), filter=flt) for s in query.searches]
    fusion: Any
    if query.fusion.method == "rrf":
        # Measured with qdrant-edge-py 0.9.0: weighted RRF favours the source
        # the *other* weight belongs to (weights (4, 1) over dense, sparse
        # rank the sparse side higher). cidx's own ranking does not use
        # weights; a caller that does should check the order it gets.
        weights = list(query.fusion.weights) if query.fusion.weights else None
        fusion = q.Fusion.Rrf(k=query.fusion.rrf_k, weights=weights)
    else:
        fusion = q.Fusion.Dbsf()
    return q.QueryRequest(
        limit=query.limit,
        prefetches=prefetches,
        query=fusion,
        filter=flt,
        with_payload=query.with_payload,
    )


def _filter(flt: PointFilter | None) -> Any:
    if flt is None:
        return None
    must: list[Any] = []
    if flt.paths:
        must.append(q.FieldCondition("path", match=q.MatchAny(list(flt.paths))))
    if flt.path_prefixes:
        must.append(
            q.Filter(
                should=[q.FieldCondition("path", match=q.MatchPrefix(p)) for p in flt.path_prefixes]
            )
        )
    if flt.languages:
        must.append(q.FieldCondition("language", match=q.MatchAny(list(flt.languages))))
    if flt.kinds:
        must.append(q.FieldCondition("kind", match=q.MatchAny(list(flt.kinds))))
    return q.Filter(must=must)
