"""The vector store interface every backend fills, and its engine-neutral types.

A store holds named collections; each point has a dense vector ("dense",
cosine), a sparse BM25 vector ("sparse") and a JSON payload. The embedded
Qdrant Edge backend (`cidx.store.edge`) implements it today; a Qdrant server
backend implements the same methods, so nothing above this layer knows which
one it talks to.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

DENSE = "dense"
SPARSE = "sparse"

# A damaged collection is renamed to "<collection><SET_ASIDE><unix ns>" until
# its replacement is complete; a dropped one to "<collection><DROPPED><unix ns>"
# while it is deleted.
SET_ASIDE = ".damaged-"
DROPPED = ".dropped-"

# Payload fields with an index (filters on them are cheap).
PAYLOAD_INDEXES = ("path", "language", "kind")


@dataclass(frozen=True)
class SparseVec:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class PointData:
    id: str  # a UUID string
    # Empty: the point is stored without its dense vector for now (a staged
    # sync writes BM25 first; `set_dense` adds it). Dense searches skip it.
    dense: list[float]
    sparse: SparseVec
    payload: dict[str, Any]


@dataclass(frozen=True)
class PointRecord:
    """A stored point as read back: its payload and dense vector (None if absent)."""

    id: str
    payload: dict[str, Any]
    dense: list[float] | None


@dataclass(frozen=True)
class PointFilter:
    """Conditions that must all hold; each tuple matches any of its values."""

    paths: tuple[str, ...] | None = None
    path_prefixes: tuple[str, ...] | None = None
    languages: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    # One project's points in a collection many share (`cidx.store.tenants`):
    # set by that store only, never by the layers above it.
    tenant: str | None = None

    def is_empty(self) -> bool:
        return not (self.paths or self.path_prefixes or self.languages or self.kinds or self.tenant)


@dataclass(frozen=True)
class Nearest:
    """One nearest-neighbour search over one named vector."""

    using: Literal["dense", "sparse"]
    vector: list[float] | SparseVec
    limit: int


@dataclass(frozen=True)
class Fusion:
    method: Literal["rrf", "dbsf"] = "rrf"
    rrf_k: int = 60
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class StoreQuery:
    """A single search (`searches` of one), several fused into one ranking, or
    several whose candidates are re-scored by one more search (`rescore`).

    Re-scoring gives every candidate of any search its exact score under
    `rescore`, even where `rescore` alone would not have ranked it: how hybrid
    search learns both scores of each candidate.
    """

    searches: tuple[Nearest, ...]
    limit: int
    fusion: Fusion | None = None
    filter: PointFilter | None = None
    with_payload: bool = True
    rescore: Nearest | None = None


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """One process's claim to write a collection of a shared store (see `cidx.lease`)."""

    key: str  # the collection
    holder: str  # unique to one process
    host: str
    pid: int
    state: Literal["candidate", "held"]
    expires: float  # seconds since the epoch, by the claimant's clock


class Claims(Protocol):
    """Writer claims kept in a store that several machines share."""

    def put(self, claim: Claim) -> None: ...

    def of(self, key: str) -> list[Claim]: ...

    def drop(self, key: str, holder: str) -> None: ...


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    points: int
    disk_bytes: int | None


# Given a page's ids, those a copy leaves out.
SkipFn = Callable[[Sequence[str]], Collection[str]]


class VectorStore(Protocol):
    """Collections of points: what the indexer and the searcher need."""

    def list_collections(self) -> list[str]: ...

    def collection_exists(self, name: str) -> bool: ...

    def create_collection(self, name: str, dim: int) -> None: ...

    def drop_collection(self, name: str) -> None: ...

    def rename_collection(self, old: str, new: str) -> None: ...

    def set_aside(self, name: str) -> Path | None: ...

    def drop_set_aside(self, name: str) -> list[Path]: ...

    def upsert(self, name: str, points: Sequence[PointData]) -> None: ...

    def set_dense(self, name: str, ids: Sequence[str], vectors: Sequence[list[float]]) -> None:
        """Give existing points their dense vectors, leaving the rest of each as it is."""
        ...

    def delete(self, name: str, ids: Sequence[str]) -> None: ...

    def delete_by_filter(self, name: str, flt: PointFilter) -> None: ...

    def scroll(
        self,
        name: str,
        *,
        payload_fields: Sequence[str] = (),
        batch: int = 2048,
        flt: PointFilter | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...

    def points(self, name: str, *, batch: int = 512) -> Iterator[PointRecord]: ...

    def page(
        self, name: str, *, offset: str | None = None, limit: int = 256
    ) -> tuple[list[PointData], str | None]: ...

    def copy_page(
        self,
        source: str,
        target: str,
        *,
        offset: str | None = None,
        limit: int = 256,
        skip: SkipFn | None = None,
    ) -> tuple[int, str | None]:
        """Copy the page `page(source, offset=offset, limit=limit)` would read into
        `target` (same store), leaving out the ids `skip` names among the page's:
        (points written, the id the next page starts at, None at the end)."""
        ...

    def retrieve(self, name: str, ids: Sequence[str]) -> list[Hit]: ...

    def count(self, name: str, flt: PointFilter | None = None) -> int: ...

    def query(self, name: str, query: StoreQuery) -> list[Hit]: ...

    def query_batch(self, name: str, queries: Sequence[StoreQuery]) -> list[list[Hit]]: ...

    def info(self, name: str) -> CollectionInfo: ...

    def optimize(self, name: str) -> None: ...

    def flush(self, name: str | None = None) -> None: ...

    def close(self) -> None: ...

    def writer_claims(self) -> Claims | None:
        """Where writers of a store shared between machines claim their
        collections; None for a store only this machine opens (its owner
        lock is enough)."""
        ...


@runtime_checkable
class NativeAliases(Protocol):
    """A store that keeps aliases itself (a Qdrant server), so every reader of
    it — not only this project's cidx — reaches a collection by an alias."""

    def aliases(self) -> dict[str, str]:
        """Every alias in the store: alias -> collection."""
        ...

    def set_aliases(self, point: Mapping[str, str], remove: Sequence[str] = ()) -> None:
        """Point each alias in `point` at its collection and remove those in
        `remove`, in one atomic change."""
        ...


def copy_page_by_points(
    store: VectorStore,
    source: str,
    target: str,
    *,
    offset: str | None,
    limit: int,
    skip: SkipFn | None,
) -> tuple[int, str | None]:
    """`VectorStore.copy_page` through `page` and `upsert`, for backends with no
    cheaper way to move a point between two of their collections."""
    points, following = store.page(source, offset=offset, limit=limit)
    left_out = skip([p.id for p in points]) if skip is not None and points else ()
    if left_out:
        points = [p for p in points if p.id not in left_out]
    store.upsert(target, points)
    return len(points), following
