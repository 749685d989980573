"""Translation between cidx's store types and Qdrant's request models.

The server backend sends exactly the shape the embedded store sends: a
dense or sparse search, a fusion of several (weighted RRF or DBSF), or
prefetches re-scored by one vector, each under the same payload filter
(`path`, `path` prefix, `language`, `kind`); a collection with the same
named vectors ("dense", cosine; "sparse", with the IDF modifier); points
with the same vectors and payload. Kept apart from the client code so the
mapping can be read, and checked against store/edge_wire.py, alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qdrant_client import models as m

from cidx.store.base import (
    DENSE,
    SPARSE,
    Nearest,
    PointData,
    PointFilter,
    PointRecord,
    SparseVec,
    StoreQuery,
)
from cidx.store.server_settings import ServerSettings

__all__ = [
    "TENANT_FIELD",
    "Snapshot",
    "collection_config",
    "delete_ops",
    "filter_for",
    "point_data",
    "point_record",
    "point_struct",
    "request_for",
    "search_params",
    "snapshot_of",
]

# The payload field naming a point's project in a collection many share.
TENANT_FIELD = "_tenant"


@dataclass(frozen=True)
class Snapshot:
    """A snapshot of one collection, kept on the server."""

    name: str
    size: int
    created: str | None
    checksum: str | None  # sha256, hex


def snapshot_of(s: m.SnapshotDescription) -> Snapshot:
    return Snapshot(
        name=s.name,
        size=int(s.size),
        created=s.creation_time,
        checksum=s.checksum,
    )


def _vector(search: Nearest) -> m.SparseVector | list[float]:
    if isinstance(search.vector, SparseVec):
        return m.SparseVector(indices=search.vector.indices, values=search.vector.values)
    return list(search.vector)


def _prefetch(search: Nearest, flt: m.Filter | None, params: m.SearchParams | None) -> m.Prefetch:
    return m.Prefetch(
        query=_vector(search), using=search.using, limit=search.limit, filter=flt, params=params
    )


def request_for(query: StoreQuery, params: m.SearchParams | None) -> m.QueryRequest:
    """The server request for `query`: the same shape the embedded store sends."""
    flt = filter_for(query.filter)
    if query.rescore is not None:
        if query.fusion is not None:
            raise ValueError("a query either fuses or re-scores its searches, not both")
        return m.QueryRequest(
            prefetch=[_prefetch(s, flt, params) for s in query.searches],
            query=_vector(query.rescore),
            using=query.rescore.using,
            filter=flt,
            limit=query.limit,
            with_payload=query.with_payload,
            params=params,
        )
    if query.fusion is None:
        if len(query.searches) != 1:
            raise ValueError("a query without fusion takes exactly one search")
        search = query.searches[0]
        return m.QueryRequest(
            query=_vector(search),
            using=search.using,
            filter=flt,
            limit=query.limit,
            with_payload=query.with_payload,
            params=params,
        )
    fused: m.FusionQuery | m.RrfQuery
    if query.fusion.method == "rrf":
        # Qdrant's weighted RRF adds 1 / (rank / weight + k - 1) per source:
        # a weight stretches its source's ranks, so at the default k = 60 a
        # larger weight makes a source's ranks count *less* (see store/edge_wire.py);
        # the embedded engine and the server share the formula.
        fused = m.RrfQuery(
            rrf=m.Rrf(
                k=query.fusion.rrf_k,
                weights=list(query.fusion.weights) if query.fusion.weights else None,
            )
        )
    else:
        fused = m.FusionQuery(fusion=m.Fusion.DBSF)
    return m.QueryRequest(
        prefetch=[_prefetch(s, flt, params) for s in query.searches],
        query=fused,
        filter=flt,
        limit=query.limit,
        with_payload=query.with_payload,
        params=params,
    )


def filter_for(flt: PointFilter | None) -> m.Filter | None:
    if flt is None or flt.is_empty():
        return None
    must: list[Any] = []
    if flt.paths:
        must.append(m.FieldCondition(key="path", match=m.MatchAny(any=list(flt.paths))))
    if flt.path_prefixes:
        must.append(
            m.Filter(
                should=[
                    m.FieldCondition(key="path", match=m.MatchPrefix(prefix=p))
                    for p in flt.path_prefixes
                ]
            )
        )
    if flt.languages:
        must.append(m.FieldCondition(key="language", match=m.MatchAny(any=list(flt.languages))))
    if flt.kinds:
        must.append(m.FieldCondition(key="kind", match=m.MatchAny(any=list(flt.kinds))))
    if flt.tenant is not None:
        must.append(m.FieldCondition(key=TENANT_FIELD, match=m.MatchValue(value=flt.tenant)))
    return m.Filter(must=must)


def collection_config(settings: ServerSettings, dim: int) -> dict[str, Any]:
    """The arguments of `create_collection` for a collection of `dim`-sized
    dense vectors, laid out as `settings` ask."""
    s = settings
    quantization: m.ScalarQuantization | m.BinaryQuantization | None = None
    if s.quantization == "scalar":
        quantization = m.ScalarQuantization(
            scalar=m.ScalarQuantizationConfig(
                type=m.ScalarType.INT8, quantile=0.99, always_ram=True
            )
        )
    elif s.quantization == "binary":
        quantization = m.BinaryQuantization(binary=m.BinaryQuantizationConfig(always_ram=True))
    return {
        "vectors_config": {
            DENSE: m.VectorParams(size=dim, distance=m.Distance.COSINE, on_disk=s.on_disk or None)
        },
        "sparse_vectors_config": {
            SPARSE: m.SparseVectorParams(
                modifier=m.Modifier.IDF,
                index=m.SparseIndexParams(on_disk=s.on_disk or None),
            )
        },
        "hnsw_config": m.HnswConfigDiff(
            m=s.hnsw_m,
            ef_construct=s.hnsw_ef_construct,
            full_scan_threshold=s.full_scan_threshold_kb,
        ),
        "optimizers_config": (
            m.OptimizersConfigDiff(indexing_threshold=s.indexing_threshold_kb)
            if s.indexing_threshold_kb is not None
            else None
        ),
        "quantization_config": quantization,
        "shard_number": s.shard_number,
        "replication_factor": s.replication_factor,
        "write_consistency_factor": s.write_consistency_factor,
    }


def search_params(settings: ServerSettings) -> m.SearchParams:
    """How the server searches, as `settings` ask (rescoring quantized vectors)."""
    return m.SearchParams(
        hnsw_ef=settings.hnsw_ef,
        exact=settings.exact,
        quantization=(
            m.QuantizationSearchParams(rescore=True, oversampling=2.0)
            if settings.quantization != "none"
            else None
        ),
    )


def point_struct(point: PointData) -> m.PointStruct:
    """A point as the server stores it; one stored before its dense vector
    has only BM25's."""
    sparse = m.SparseVector(indices=point.sparse.indices, values=point.sparse.values)
    vectors: dict[str, Any] = (
        {DENSE: point.dense, SPARSE: sparse} if point.dense else {SPARSE: sparse}
    )
    return m.PointStruct(id=point.id, vector=vectors, payload=point.payload)


def point_data(record: m.Record) -> PointData:
    """A whole point (both vectors and the payload) as the server returned it."""
    vectors: Any = record.vector if isinstance(record.vector, dict) else {}
    dense = vectors.get(DENSE) or []
    sparse = vectors.get(SPARSE)
    return PointData(
        str(record.id),
        [float(x) for x in dense],
        SparseVec(list(sparse.indices), list(sparse.values))
        if sparse is not None
        else SparseVec([], []),
        dict(record.payload or {}),
    )


def point_record(record: m.Record) -> PointRecord:
    """A point's payload and dense vector (None when it has none yet)."""
    vectors = record.vector
    dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
    return PointRecord(
        str(record.id),
        dict(record.payload or {}),
        [float(x) for x in dense] if isinstance(dense, list) else None,  # type: ignore[arg-type]
    )


def delete_ops(present: list[str], ids: list[str]) -> list[Any]:
    """One request deleting `ids`, emptying the sparse vectors of those
    `present` first (see `ServerStore.delete`)."""
    ops: list[Any] = []
    if present:
        empty = m.SparseVector(indices=[], values=[])
        ops.append(
            m.UpdateVectorsOperation(
                update_vectors=m.UpdateVectors(
                    points=[m.PointVectors(id=i, vector={SPARSE: empty}) for i in present]
                )
            )
        )
    ops.append(m.DeleteOperation(delete=m.PointIdsList(points=list(ids))))
    return ops
