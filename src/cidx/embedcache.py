"""Embedding texts through the project's embedding cache.

A text is embedded only when the cache holds no vector for it under the
model's id; what is embedded is stored, what is reused is marked used. The
indexer embeds new chunks this way, and a collection migration re-embeds
points for another model this way, so content embedded once for a model is
never embedded again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cidx.failpoints import failpoint
from cidx.representation import text_hash
from cidx.state import StateDB

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from cidx.embedding import Embedder

__all__ = ["Cached", "Embedded", "cached_only", "embed_cached"]


@dataclass(frozen=True)
class Embedded:
    vectors: npt.NDArray[np.float32]  # one row per text, in order
    embedded: int  # distinct texts the model embedded now
    reused: int  # texts whose vector came from the cache (or a repeat in the batch)


@dataclass(frozen=True)
class Cached:
    """What the cache holds of some texts, nothing embedded."""

    vectors: npt.NDArray[np.float32]  # one row per text; zeros where `found` is False
    found: list[bool]
    hashes: list[bytes]


def cached_only(db: StateDB, model: str, dim: int, texts: list[str]) -> Cached:
    """The vectors the cache already holds for `texts` under `model` (marked
    used); a staged sync stores these at once and leaves the rest for later."""
    import numpy as np

    out = np.zeros((len(texts), dim), dtype=np.float32)
    hashes = [text_hash(t) for t in texts]
    hits = db.cached_vectors(model, sorted(set(hashes))) if texts else {}
    found = []
    for i, h in enumerate(hashes):
        vec = hits.get(h)
        found.append(vec is not None)
        if vec is not None:
            out[i] = vec
    if hits:
        with db.transaction() as tx:
            db.touch_vectors(tx, model, hits.keys())
    return Cached(out, found, hashes)


def embed_cached(
    db: StateDB, model: str, dim: int, texts: list[str], embedder: Callable[[], Embedder]
) -> Embedded:
    """Vectors of `texts` under `model`; `embedder` is asked for only when a
    text is missing from the cache."""
    import numpy as np  # here: callers with nothing to embed never need it

    if not texts:
        return Embedded(np.zeros((0, dim), dtype=np.float32), 0, 0)
    known = cached_only(db, model, dim, texts)
    out = known.vectors
    missing: dict[bytes, int] = {}
    for i, h in enumerate(known.hashes):
        if not known.found[i] and h not in missing:
            missing[h] = i
    reused = sum(known.found)
    if missing:
        order = list(missing.items())
        fresh = embedder().embed([texts[i] for _, i in order])
        new = {h: fresh[k] for k, (h, _) in enumerate(order)}
        for i, h in enumerate(known.hashes):
            if h in new:
                out[i] = new[h]
        reused += sum(1 for h in known.hashes if h in new) - len(order)
        with db.transaction() as tx:
            db.put_vectors(tx, model, new.items())
        failpoint("after_embed")
    return Embedded(out, len(missing), reused)
