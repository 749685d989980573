"""Vector stores: the interface every backend fills (`cidx.storage` picks one)."""

from __future__ import annotations

from cidx.store.base import (
    DENSE,
    SPARSE,
    Claim,
    Claims,
    CollectionInfo,
    Fusion,
    Hit,
    NativeAliases,
    Nearest,
    PointData,
    PointFilter,
    PointRecord,
    SparseVec,
    StoreQuery,
    VectorStore,
)

__all__ = [
    "DENSE",
    "SPARSE",
    "Claim",
    "Claims",
    "CollectionInfo",
    "Fusion",
    "Hit",
    "NativeAliases",
    "Nearest",
    "PointData",
    "PointFilter",
    "PointRecord",
    "SparseVec",
    "StoreQuery",
    "VectorStore",
]
