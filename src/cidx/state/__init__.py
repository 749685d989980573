"""The project's SQLite state: per-collection manifests, embedding cache, metadata."""

from cidx.state.aliases import Alias, AliasTable
from cidx.state.db import StateDB
from cidx.state.manifest import FileRecord, Manifest

__all__ = ["Alias", "AliasTable", "FileRecord", "Manifest", "StateDB"]
