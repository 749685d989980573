"""The project's SQLite state: per-collection manifests, embedding cache, metadata."""

from cidx.state.aliases import Alias, AliasTable
from cidx.state.db import StateDB
from cidx.state.manifest import DenseShare, FileRecord, Manifest

__all__ = ["Alias", "AliasTable", "DenseShare", "FileRecord", "Manifest", "StateDB"]
