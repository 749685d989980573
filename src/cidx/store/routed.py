"""One store made of several: each collection in the store that holds it.

A project's collections live in one store, except while its index moves to
another (`cidx storage migrate`): then the collection being moved lives in
one store and its copy in the other, and both are written at once. The
rest of cidx keeps addressing collections by name; `RoutedStore` sends each
call to the store a name is attached to, and every other name to the
default store (the one the project's config named when the index opened).

Which store a name belongs to is decided above (`cidx.dualwrite`); this
module only routes. Stores attached more than once (two names in one
store) are closed once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cidx.store.base import (
    Claims,
    CollectionInfo,
    Hit,
    PointData,
    PointFilter,
    PointRecord,
    SkipFn,
    StoreQuery,
    VectorStore,
    copy_page_by_points,
)

__all__ = ["RoutedStore"]


class RoutedStore:
    """A `VectorStore` that sends each collection's calls to the store it lives in."""

    def __init__(self, default: VectorStore) -> None:
        self.default = default
        self._by_name: dict[str, VectorStore] = {}
        self._lock = threading.Lock()

    # -- routing -------------------------------------------------------------

    def attach(self, name: str, store: VectorStore) -> None:
        """`name` lives in `store` from now on."""
        with self._lock:
            self._by_name = {**self._by_name, name: store}

    def store_of(self, name: str) -> VectorStore:
        """The store that holds (or would hold) the collection `name`."""
        return self._by_name.get(name, self.default)

    def stores(self) -> list[VectorStore]:
        """Every store, the default first, each once."""
        found: dict[int, VectorStore] = {id(self.default): self.default}
        for store in self._by_name.values():
            found.setdefault(id(store), store)
        return list(found.values())

    # -- the store interface ---------------------------------------------------

    def list_collections(self) -> list[str]:
        names = set(self.default.list_collections())
        for name, store in self._by_name.items():
            if store is not self.default and store.collection_exists(name):
                names.add(name)
            elif store is not self.default:
                names.discard(name)
        return sorted(names)

    def collection_exists(self, name: str) -> bool:
        return self.store_of(name).collection_exists(name)

    def create_collection(self, name: str, dim: int) -> None:
        self.store_of(name).create_collection(name, dim)

    def drop_collection(self, name: str) -> None:
        self.store_of(name).drop_collection(name)

    def rename_collection(self, old: str, new: str) -> None:
        store = self.store_of(old)
        if store is not self.store_of(new):
            raise ValueError(f"{old} and {new} live in different stores: a rename cannot move")
        store.rename_collection(old, new)

    def set_aside(self, name: str) -> Path | None:
        return self.store_of(name).set_aside(name)

    def drop_set_aside(self, name: str) -> list[Path]:
        return self.store_of(name).drop_set_aside(name)

    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        self.store_of(name).upsert(name, points)

    def set_dense(self, name: str, ids: Sequence[str], vectors: Sequence[list[float]]) -> None:
        self.store_of(name).set_dense(name, ids, vectors)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        self.store_of(name).delete(name, ids)

    def delete_by_filter(self, name: str, flt: PointFilter) -> None:
        self.store_of(name).delete_by_filter(name, flt)

    def scroll(
        self,
        name: str,
        *,
        payload_fields: Sequence[str] = (),
        batch: int = 2048,
        flt: PointFilter | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        return self.store_of(name).scroll(name, payload_fields=payload_fields, batch=batch, flt=flt)

    def points(self, name: str, *, batch: int = 512) -> Iterator[PointRecord]:
        return self.store_of(name).points(name, batch=batch)

    def page(
        self, name: str, *, offset: str | None = None, limit: int = 256
    ) -> tuple[list[PointData], str | None]:
        return self.store_of(name).page(name, offset=offset, limit=limit)

    def copy_page(
        self,
        source: str,
        target: str,
        *,
        offset: str | None = None,
        limit: int = 256,
        skip: SkipFn | None = None,
    ) -> tuple[int, str | None]:
        store = self.store_of(source)
        if store is self.store_of(target):
            return store.copy_page(source, target, offset=offset, limit=limit, skip=skip)
        # Between stores: read from the one, write to the other.
        return copy_page_by_points(self, source, target, offset=offset, limit=limit, skip=skip)

    def retrieve(self, name: str, ids: Sequence[str]) -> list[Hit]:
        return self.store_of(name).retrieve(name, ids)

    def count(self, name: str, flt: PointFilter | None = None) -> int:
        return self.store_of(name).count(name, flt)

    def query(self, name: str, query: StoreQuery) -> list[Hit]:
        return self.store_of(name).query(name, query)

    def query_batch(self, name: str, queries: Sequence[StoreQuery]) -> list[list[Hit]]:
        return self.store_of(name).query_batch(name, queries)

    def info(self, name: str) -> CollectionInfo:
        return self.store_of(name).info(name)

    def optimize(self, name: str) -> None:
        self.store_of(name).optimize(name)

    def flush(self, name: str | None = None) -> None:
        if name is not None:
            self.store_of(name).flush(name)
            return
        for store in self.stores():
            store.flush()

    def close(self) -> None:
        for store in self.stores():
            store.close()

    def writer_claims(self) -> Claims | None:
        return self.default.writer_claims()
