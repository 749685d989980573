"""Code-aware BM25 sparse vectors, computed by `qdrant_edge.Bm25`.

Identifiers are split at camelCase, snake_case and digit boundaries, and the
whole identifier is kept too, so `retryFailedUpload` is found by "retry
upload" and by its exact name. The split tokens are handed to Qdrant's BM25
(English stemming and stop words, whitespace tokenizer) so document and query
vectors agree with the engine's IDF over the collection.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from cidx.store.base import SparseVec

# Bump when tokenization changes: stored sparse vectors must be rebuilt.
SPARSE_VERSION = 1
# Qdrant's default (256) is for prose documents; code chunks here average far
# fewer tokens, and a wrong average over-penalises long chunks.
AVG_DOC_TOKENS = 120.0

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def identifier_parts(word: str) -> list[str]:
    """`parseHTTPResponse_v2` → ["parse", "http", "response", "v2"]-like parts, lowercased."""
    parts: list[str] = []
    for piece in word.split("_"):
        parts.extend(p.lower() for p in _PART.findall(piece))
    return parts


def code_tokens(text: str) -> list[str]:
    """Tokens of `text`: every identifier whole, plus its parts when it has several."""
    tokens: list[str] = []
    for match in _WORD.finditer(text):
        word = match.group()
        whole = word.strip("_").lower()
        if not whole:
            continue
        tokens.append(whole)
        parts = identifier_parts(word)
        if len(parts) > 1:
            tokens.extend(parts)
    return tokens


class SparseEncoder:
    """Document and query BM25 vectors with cidx's code-aware tokens."""

    @cached_property
    def _bm25(self) -> Any:
        import qdrant_edge as q

        return q.Bm25(
            q.Bm25Config(
                tokenizer=q.TokenizerType.Whitespace,
                language="english",
                avg_len=AVG_DOC_TOKENS,
                min_token_len=2,
                max_token_len=64,
            )
        )

    def document(self, text: str) -> SparseVec:
        vec = self._bm25.embed_document(" ".join(code_tokens(text)))
        return SparseVec(list(vec.indices), list(vec.values))

    def query(self, text: str) -> SparseVec:
        vec = self._bm25.embed_query(" ".join(code_tokens(text)))
        return SparseVec(list(vec.indices), list(vec.values))
