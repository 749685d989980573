"""The project's SQLite state: per-collection manifests, embedding cache, metadata."""

from cidx.state.db import StateDB
from cidx.state.manifest import FileRecord, Manifest

__all__ = ["FileRecord", "Manifest", "StateDB"]
