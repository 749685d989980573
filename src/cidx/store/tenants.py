"""Many projects in one server collection: payload-based multitenancy.

A team with many small projects can keep them all in one collection of its
Qdrant server (`"shared_collection"` in the config's "server" block)
instead of one collection each. `TenantStore` gives every cidx collection
(a project's, an old name's, a migration's) the same interface as a real
collection, as a tenant of the shared one:

- each point carries its tenant in `_tenant` (a keyword index with
  `is_tenant`, so the server keeps each tenant's points together and
  filters by it first) and its cidx id in `_id`; its id in the shared
  collection is derived from both, so two projects with the same chunk
  never overwrite each other's point;
- every read, count, search and delete is filtered by the tenant, and ids
  and payloads come back as cidx wrote them;
- the tenants that exist are recorded as vector-less points of the shared
  collection (tenant `cidx:collections`, which no collection name can be),
  so an empty tenant exists, and listing them is one filtered scroll.

What differs from a collection of its own: the BM25 statistics (the IDF of
each term) are those of the whole shared collection, so keyword scores
move a little as other projects change; and renaming a tenant copies its
points to their new ids before removing the old ones.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from qdrant_client import models as m

from cidx.errors import StoreError
from cidx.store.base import (
    DENSE,
    Claims,
    CollectionInfo,
    Hit,
    PointData,
    PointFilter,
    PointRecord,
    SkipFn,
    StoreQuery,
    copy_page_by_points,
)
from cidx.store.server import ServerStore
from cidx.store.server_wire import TENANT_FIELD

__all__ = ["TenantStore"]

ID_FIELD = "_id"
DIRECTORY = "cidx:collections"
_NAMESPACE = uuid.UUID("6c3f2a3e-4d8b-4c1e-9f0a-2b7d5e1c8a44")


class TenantStore:
    """cidx's collections as tenants of one shared collection on a server."""

    def __init__(self, inner: ServerStore, shared: str) -> None:
        self.inner = inner
        self.shared = shared
        self._ready = False
        # Tenants seen to exist: checked once, not before every request.
        self._known_names: set[str] = set()

    # -- collections -------------------------------------------------------

    def list_collections(self) -> list[str]:
        if not self._shared_exists():
            return []
        return sorted(self._directory())

    def collection_exists(self, name: str) -> bool:
        if not self._shared_exists():
            return False
        return bool(self.inner.retrieve(self.shared, [_entry_id(name)]))

    def create_collection(self, name: str, dim: int) -> None:
        if not self._shared_exists():
            self.inner.create_collection(self.shared, dim)
            self._call(
                "index the tenants",
                lambda: self.inner.client.create_payload_index(
                    self.shared,
                    field_name=TENANT_FIELD,
                    field_schema=m.KeywordIndexParams(
                        type=m.KeywordIndexType.KEYWORD, is_tenant=True
                    ),
                    wait=True,
                ),
            )
            self._ready = True
        else:
            have = self._dim()
            if have is not None and have != dim:
                raise StoreError(
                    f"The shared collection {self.shared} on {self.inner.url} holds "
                    f"{have}-dimensional vectors; this project's model makes {dim}. Keep this "
                    "project in a collection of its own (`cidx init --force --storage server "
                    f"--qdrant-url {self.inner.url}`) or in another shared collection "
                    "(`--qdrant-shared-collection NAME`)."
                )
        if self.collection_exists(name):
            return
        self._call(
            "record a collection",
            lambda: self.inner.client.upsert(
                self.shared,
                points=[
                    m.PointStruct(
                        id=_entry_id(name),
                        vector={},
                        payload={TENANT_FIELD: DIRECTORY, "name": name, "dim": dim},
                    )
                ],
                wait=True,
            ),
        )

    def drop_collection(self, name: str) -> None:
        self._known_names.discard(name)
        if not self._shared_exists():
            return
        self.inner.delete_by_filter(self.shared, PointFilter(tenant=name))
        self.inner.delete(self.shared, [_entry_id(name)])

    def rename_collection(self, old: str, new: str) -> None:
        """New points first, then the old ones go: a crash leaves both names
        whole, never neither."""
        self._known(old)
        if self.collection_exists(new):
            raise StoreError(
                f"Cannot rename {old} to {new} in the shared collection {self.shared}: "
                f"{new} exists already."
            )
        self.create_collection(new, self._dim() or 0)
        offset: str | None = None
        while True:
            points, offset = self.page(old, offset=offset, limit=256)
            self.upsert(new, points)
            if offset is None:
                break
        self.drop_collection(old)

    def set_aside(self, name: str) -> Path | None:
        """As on a server: nothing to keep on this machine; the tenant goes
        and a rebuild refills it."""
        self.drop_collection(name)
        return None

    def drop_set_aside(self, name: str) -> list[Path]:
        return []

    # -- points ------------------------------------------------------------

    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        self._known(name)
        self.inner.upsert(
            self.shared,
            [
                PointData(
                    _point_id(name, p.id),
                    p.dense,
                    p.sparse,
                    {**p.payload, TENANT_FIELD: name, ID_FIELD: p.id},
                )
                for p in points
            ],
        )

    def set_dense(self, name: str, ids: Sequence[str], vectors: Sequence[list[float]]) -> None:
        self._known(name)
        self.inner.set_dense(self.shared, [_point_id(name, i) for i in ids], vectors)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        self._known(name)
        self.inner.delete(self.shared, [_point_id(name, i) for i in ids])

    def delete_by_filter(self, name: str, flt: PointFilter) -> None:
        if flt.is_empty():
            raise ValueError(
                "delete_by_filter needs a non-empty filter (an empty filter deletes all)"
            )
        self._known(name)
        self.inner.delete_by_filter(self.shared, _within(name, flt))

    def scroll(
        self,
        name: str,
        *,
        payload_fields: Sequence[str] = (),
        batch: int = 2048,
        flt: PointFilter | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        self._known(name)
        fields = [*payload_fields, ID_FIELD]
        for _pid, payload in self.inner.scroll(
            self.shared, payload_fields=fields, batch=batch, flt=_within(name, flt)
        ):
            yield str(payload[ID_FIELD]), {k: payload[k] for k in payload_fields if k in payload}

    def points(self, name: str, *, batch: int = 512) -> Iterator[PointRecord]:
        self._known(name)
        for record in self.inner.points(self.shared, batch=batch, flt=_within(name, None)):
            yield PointRecord(_own_id(record.payload), _own(record.payload), record.dense)

    def page(
        self, name: str, *, offset: str | None = None, limit: int = 256
    ) -> tuple[list[PointData], str | None]:
        self._known(name)
        points, following = self.inner.page(
            self.shared, offset=offset, limit=limit, flt=_within(name, None)
        )
        return [
            PointData(_own_id(p.payload), p.dense, p.sparse, _own(p.payload)) for p in points
        ], following

    def copy_page(
        self,
        source: str,
        target: str,
        *,
        offset: str | None = None,
        limit: int = 256,
        skip: SkipFn | None = None,
    ) -> tuple[int, str | None]:
        return copy_page_by_points(self, source, target, offset=offset, limit=limit, skip=skip)

    def retrieve(self, name: str, ids: Sequence[str]) -> list[Hit]:
        self._known(name)
        hits = self.inner.retrieve(self.shared, [_point_id(name, i) for i in ids])
        return [_hit(h) for h in hits if h.payload.get(TENANT_FIELD) == name]

    def count(self, name: str, flt: PointFilter | None = None) -> int:
        self._known(name)
        return self.inner.count(self.shared, _within(name, flt))

    def query(self, name: str, query: StoreQuery) -> list[Hit]:
        return self.query_batch(name, [query])[0]

    def query_batch(self, name: str, queries: Sequence[StoreQuery]) -> list[list[Hit]]:
        self._known(name)
        # The payload carries each hit's own id, so it is always asked for.
        scoped = [
            dataclasses.replace(q, filter=_within(name, q.filter), with_payload=True)
            for q in queries
        ]
        answers = self.inner.query_batch(self.shared, scoped)
        return [
            [_hit(h, keep_payload=q.with_payload) for h in hits]
            for q, hits in zip(queries, answers, strict=True)
        ]

    # -- the rest ------------------------------------------------------------

    def info(self, name: str) -> CollectionInfo:
        return CollectionInfo(name=name, points=self.count(name), disk_bytes=None)

    def optimize(self, name: str) -> None:
        """The server optimizes the shared collection on its own schedule."""

    def flush(self, name: str | None = None) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def writer_claims(self) -> Claims:
        return self.inner.writer_claims()

    # -- helpers -------------------------------------------------------------

    def _call(self, what: str, fn: Any) -> Any:
        return self.inner._call(what, fn, self.shared)

    def _shared_exists(self) -> bool:
        if not self._ready:
            self._ready = self.inner.collection_exists(self.shared)
        return self._ready

    def _directory(self) -> dict[str, int]:
        """Every tenant recorded in the shared collection, with its dimension."""
        found: dict[str, int] = {}
        flt = m.Filter(
            must=[m.FieldCondition(key=TENANT_FIELD, match=m.MatchValue(value=DIRECTORY))]
        )
        offset: Any = None
        while True:
            records, offset = self._call(
                "list the collections",
                lambda offset=offset: self.inner.client.scroll(
                    self.shared, scroll_filter=flt, limit=1000, offset=offset, with_payload=True
                ),
            )
            for record in records:
                payload = record.payload or {}
                found[str(payload.get("name"))] = int(payload.get("dim", 0) or 0)
            if offset is None:
                return found

    def _dim(self) -> int | None:
        found = self._call(
            "read a collection", lambda: self.inner.client.get_collection(self.shared)
        )
        vectors = found.config.params.vectors
        params = vectors.get(DENSE) if isinstance(vectors, dict) else vectors
        return int(params.size) if params is not None else None

    def _known(self, name: str) -> None:
        if name in self._known_names:
            return
        if self.collection_exists(name):
            self._known_names.add(name)
        else:
            raise StoreError(
                f"The collection {name} does not exist in the shared collection {self.shared} "
                f"on {self.inner.url}. Run `cidx index` to rebuild it."
            )


def _within(name: str, flt: PointFilter | None) -> PointFilter:
    return dataclasses.replace(flt or PointFilter(), tenant=name)


def _point_id(tenant: str, point: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{tenant}\0{point}"))


def _entry_id(name: str) -> str:
    return _point_id(DIRECTORY, name)


def _own_id(payload: dict[str, Any]) -> str:
    return str(payload[ID_FIELD])


def _own(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in (TENANT_FIELD, ID_FIELD)}


def _hit(hit: Hit, *, keep_payload: bool = True) -> Hit:
    return Hit(_own_id(hit.payload), hit.score, _own(hit.payload) if keep_payload else {})
