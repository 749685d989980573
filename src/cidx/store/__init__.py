"""Vector stores: the interface, and the backend a project's config selects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cidx.store.base import (
    DENSE,
    SPARSE,
    CollectionInfo,
    Fusion,
    Hit,
    Nearest,
    PointData,
    PointFilter,
    PointRecord,
    SparseVec,
    StoreQuery,
    VectorStore,
)

if TYPE_CHECKING:
    from cidx.config import Config
    from cidx.project import ProjectPaths

__all__ = [
    "DENSE",
    "SPARSE",
    "CollectionInfo",
    "Fusion",
    "Hit",
    "Nearest",
    "PointData",
    "PointFilter",
    "PointRecord",
    "SparseVec",
    "StoreQuery",
    "VectorStore",
    "open_store",
]


def open_store(paths: ProjectPaths, config: Config) -> VectorStore:
    """The store the project's `storage_mode` names."""
    if config.storage_mode == "local":
        from cidx.store.edge import EdgeStore

        return EdgeStore(paths.qdrant_dir)
    raise AssertionError(f"unknown storage mode {config.storage_mode!r}")
