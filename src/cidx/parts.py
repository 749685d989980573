"""The parts of an open index that the indexer and the searcher work with.

`IndexParts` is a plain bundle — where the project is, its config, its state
DB, its store, its collections and its models — built once by the engine
and handed to each `Indexer` and `Searcher`. Neither of them knows the
engine: locks, metrics and ownership stay there.

`Models` loads the embedding model on first use (a no-op sync never pays
for it) and can be shared by every index a process has open.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from cidx.collections import Collections
from cidx.config import Config
from cidx.cpucap import CpuCap
from cidx.embedding import max_length_of
from cidx.project import ProjectPaths
from cidx.sparse import SparseEncoder
from cidx.state import StateDB
from cidx.storage import StorageLocation
from cidx.store import VectorStore

if TYPE_CHECKING:
    from cidx.embedding import Embedder
    from cidx.embedding._model import ModelFile

__all__ = ["IndexParts", "Models"]


class Models:
    """The embedding model (loaded on first use) and the BM25 encoder."""

    def __init__(
        self,
        max_length: int,
        *,
        long_lived: bool = False,
        model: ModelFile | None = None,
        threads: int | None = None,
        cap: CpuCap | None = None,
    ) -> None:
        self.max_length = max_length
        self.cap = cap  # paces the model's bulk work (the daemon's CPU cap)
        self.model = model  # None: the bundled model
        # The model's threads (None: one per core); fewer for background work.
        self.threads = threads
        # Processes that answer many queries load the model with graph
        # optimisations: slower to load, faster per query.
        self.long_lived = long_lived
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._variants: dict[int, Models] = {}

    @property
    def loaded(self) -> bool:
        return self._embedder is not None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    from cidx.embedding import Embedder

                    self._embedder = Embedder(
                        self.max_length,
                        long_lived=self.long_lived,
                        model=self.model,
                        threads=self.threads,
                        cap=self.cap,
                    )
        return self._embedder

    def variant(self, model: str) -> Models | None:
        """The models that make vectors of the model id `model` (these, or the
        same model with another max length: its vectors differ), or None when
        this cidx cannot make them. A migration to another model uses both."""
        # Each model file makes its own vectors only (benchmarks load others).
        length = max_length_of(model, self.model.name) if self.model else max_length_of(model)
        if length is None:
            return None
        if length == self.max_length:
            return self
        with self._lock:
            found = self._variants.get(length)
            if found is None:
                found = Models(
                    length,
                    long_lived=self.long_lived,
                    model=self.model,
                    threads=self.threads,
                    cap=self.cap,
                )
                self._variants[length] = found
        return found

    @cached_property
    def sparse(self) -> SparseEncoder:
        return SparseEncoder()


@dataclass(frozen=True)
class IndexParts:
    """What an open index is made of."""

    paths: ProjectPaths
    config: Config
    location: StorageLocation
    db: StateDB
    store: VectorStore
    collections: Collections
    models: Models
