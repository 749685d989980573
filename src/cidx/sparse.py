"""Code-aware BM25 sparse vectors, computed by `qdrant_edge.Bm25`.

Identifiers are split at camelCase, snake_case and digit boundaries, and the
whole identifier is kept too, so `retryFailedUpload` is found by "retry
upload" and by its exact name. The split tokens are handed to Qdrant's BM25
(English stemming and stop words, whitespace tokenizer) so document and query
vectors agree with the engine's IDF over the collection.
"""

from __future__ import annotations

import re
from functools import cached_property, lru_cache
from typing import Any

from cidx.store.base import SparseVec

# Bump when tokenization or any BM25 setting changes: stored sparse vectors
# must be rebuilt.
SPARSE_VERSION = 2
# Qdrant's default (256) is for prose documents. Chunks of the benchmark
# corpora average 60-75 tokens; with the true average, BM25 alone ranked
# clearly better than with 120 or 256 (benchmarks/RESULTS.md).
AVG_DOC_TOKENS = 64.0
BM25_K = 1.2
BM25_B = 0.75
# Words removed from documents and queries on top of English stop words.
CODE_STOPWORDS: frozenset[str] = frozenset()

# Names whose terms are kept between queries (a few per definition).
_NAME_CACHE = 100_000

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
    for word in _WORD.findall(text):
        tokens.extend(_word_tokens(word))
    return tokens


@lru_cache(maxsize=1 << 16)
def _word_tokens(word: str) -> tuple[str, ...]:
    # Cached: a corpus repeats its identifiers, and splitting them was most
    # of the time BM25 took when indexing (the first answers wait for it).
    whole = word.strip("_").lower()
    if not whole:
        return ()
    parts = identifier_parts(word)
    return (whole, *parts) if len(parts) > 1 else (whole,)


class SparseEncoder:
    """Document and query BM25 vectors with cidx's code-aware tokens.

    The keyword arguments exist for benchmarks/quality.py; the index always
    uses the defaults (changing one means bumping `SPARSE_VERSION`).
    """

    def __init__(
        self,
        *,
        k: float = BM25_K,
        b: float = BM25_B,
        avg_len: float = AVG_DOC_TOKENS,
        stopwords: frozenset[str] = CODE_STOPWORDS,
        stem: bool = True,
    ) -> None:
        self.k, self.b, self.avg_len = k, b, avg_len
        self.stopwords = stopwords
        self.stem = stem
        self._names: dict[str, frozenset[int]] = {}

    @cached_property
    def _bm25(self) -> Any:
        import qdrant_edge as q

        return q.Bm25(
            q.Bm25Config(
                k=self.k,
                b=self.b,
                avg_len=self.avg_len,
                tokenizer=q.TokenizerType.Whitespace,
                language="english",
                stopwords=q.StopwordsSet(
                    languages={q.Language.English}, custom=set(self.stopwords)
                ),
                stemmer=None if self.stem else q.DisabledStemmer(),
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

    def name_terms(self, name: str) -> frozenset[int]:
        """The query terms of a defined name, as `query` makes them (cached)."""
        terms = self._names.get(name)
        if terms is None:
            if len(self._names) >= _NAME_CACHE:
                self._names.clear()
            terms = frozenset(self.query(name).indices) if name else frozenset()
            self._names[name] = terms
        return terms
