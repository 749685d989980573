"""Translation between cidx's store types and Qdrant Edge's request types.

The embedded backend sends the shape the server backend sends
(`cidx.store.server_wire`): a dense or sparse search, a fusion of several
(weighted RRF or DBSF), or prefetches re-scored by one vector, each under
the same payload filter (`path`, `path` prefix, `language`, `kind`); and
points with the same named vectors. Kept apart from the shard code so the
two mappings can be read, and compared, alone.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as q

from cidx.store.base import DENSE, SPARSE, Nearest, PointData, PointFilter, SparseVec, StoreQuery

__all__ = ["filter_for", "point_vectors", "request_for"]


def point_vectors(point: PointData) -> dict[str, Any]:
    """A point's named vectors; one stored before its dense vector has only BM25's."""
    sparse = q.SparseVector(point.sparse.indices, point.sparse.values)
    return {DENSE: point.dense, SPARSE: sparse} if point.dense else {SPARSE: sparse}


def _vector(search: Nearest) -> Any:
    if isinstance(search.vector, SparseVec):
        return q.Query.Nearest(
            q.SparseVector(search.vector.indices, search.vector.values), using=SPARSE
        )
    return q.Query.Nearest(search.vector, using=DENSE)


def request_for(query: StoreQuery) -> Any:
    """The engine's request for `query`: the same shape the server store sends."""
    flt = filter_for(query.filter)
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
        # Weighted RRF adds 1 / (rank / weight + k - 1) per source (as in
        # qdrant-client and the server): at the default k = 60 a larger
        # weight compresses its source's rank differences, so its order
        # counts *less* — weights (4, 1) over dense, sparse let the sparse
        # order decide. Only at a small k does a weight favour its source.
        # cidx's own ranking uses no weights; test_store_contract checks the
        # server store behaves the same.
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


def filter_for(flt: PointFilter | None) -> Any:
    """The engine's filter for `flt` (None for none, or an empty one); an embedded
    store has no tenants."""
    if flt is None or flt.is_empty():
        return None
    if flt.tenant is not None:
        raise ValueError("an embedded store holds one project per collection: no tenants")
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
