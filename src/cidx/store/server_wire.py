"""Translation between cidx's store queries and Qdrant's request models.

The server backend sends exactly the shape the embedded store sends: a
dense or sparse search, a fusion of several (weighted RRF or DBSF), or
prefetches re-scored by one vector, each under the same payload filter
(`path`, `path` prefix, `language`, `kind`). Kept apart from the client
code so the mapping can be read, and checked against store/edge.py, alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qdrant_client import models as m

from cidx.store.base import Nearest, PointFilter, SparseVec, StoreQuery

__all__ = ["TENANT_FIELD", "Snapshot", "filter_for", "request_for", "snapshot_of"]

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
        # larger weight makes a source's ranks count *less* (see store/edge.py);
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
