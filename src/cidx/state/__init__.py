"""The project's SQLite state: manifest, embedding cache, metadata."""

from cidx.state.db import FileRecord, StateDB

__all__ = ["FileRecord", "StateDB"]
