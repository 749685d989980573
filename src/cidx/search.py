"""Answering queries: dense, BM25, or both fused, with path and language filters.

Path globs use gitignore semantics (`*.py` matches at any depth, `src/`
everything below src, `src/**/test_*.py` anchored) and are resolved against
the manifest's file list, so the store filters by exact paths and a limit of
N always returns N results when N exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cidx.chunking import detect_language
from cidx.errors import UsageError
from cidx.messages import QUERY_MODES, QueryAnswer, QueryRequest, SearchResult
from cidx.store import Fusion, Hit, Nearest, PointFilter, StoreQuery

if TYPE_CHECKING:
    from cidx.engine import Engine

# Candidates each retriever contributes to a fused ranking.
PREFETCH_FACTOR = 5
MIN_PREFETCH = 50
RRF_K = 60
MAX_LIMIT = 1000


@dataclass(frozen=True)
class _Scope:
    flt: PointFilter | None
    empty: bool  # the filters match no indexed file


class Searcher:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.collection = engine.config.collection

    def search(self, request: QueryRequest) -> list[SearchResult]:
        return self.search_batch([request])[0].results

    def search_batch(self, requests: list[QueryRequest]) -> list[QueryAnswer]:
        for request in requests:
            _validate(request)
        scopes = [self._scope(r) for r in requests]
        need_dense = [i for i, r in enumerate(requests) if r.mode != "keyword" and not scopes[i].empty]
        dense: dict[int, list[float]] = {}
        if need_dense:
            vectors = self.engine.embedder.embed([requests[i].text for i in need_dense])
            dense = {i: vectors[k].tolist() for k, i in enumerate(need_dense)}
        queries: list[StoreQuery] = []
        slots: list[int] = []
        for i, request in enumerate(requests):
            if scopes[i].empty:
                continue
            queries.append(self._store_query(request, dense.get(i), scopes[i].flt))
            slots.append(i)
        hits: list[list[Hit]] = [[] for _ in requests]
        for i, found in zip(slots, self.engine.store.query_batch(self.collection, queries), strict=True):
            hits[i] = found
        return [
            QueryAnswer(query=r.text, results=_results(h, r.min_score))
            for r, h in zip(requests, hits, strict=True)
        ]

    def _store_query(
        self, request: QueryRequest, dense: list[float] | None, flt: PointFilter | None
    ) -> StoreQuery:
        sparse = self.engine.sparse.query(request.text)
        if request.mode == "semantic":
            assert dense is not None
            return StoreQuery((Nearest("dense", dense, request.limit),), request.limit, filter=flt)
        if request.mode == "keyword" or dense is None:
            return StoreQuery((Nearest("sparse", sparse, request.limit),), request.limit, filter=flt)
        depth = max(MIN_PREFETCH, PREFETCH_FACTOR * request.limit)
        return StoreQuery(
            (Nearest("dense", dense, depth), Nearest("sparse", sparse, depth)),
            request.limit,
            fusion=Fusion("rrf", rrf_k=RRF_K),
            filter=flt,
        )

    def _scope(self, request: QueryRequest) -> _Scope:
        paths: tuple[str, ...] | None = None
        languages: tuple[str, ...] | None = None
        if request.paths:
            import pathspec

            spec = pathspec.GitIgnoreSpec.from_lines(request.paths)
            matched = tuple(p for p in self.engine.db.file_paths() if spec.match_file(p))
            if not matched:
                return _Scope(None, True)
            paths = matched
        if request.languages:
            languages = tuple(self._language(name) for name in request.languages)
        if paths is None and languages is None:
            return _Scope(None, False)
        return _Scope(PointFilter(paths=paths, languages=languages), False)

    def _language(self, name: str) -> str:
        wanted = name.strip().lower()
        indexed = self._indexed_languages()
        if wanted in indexed:
            return wanted
        by_extension = detect_language(f"file.{wanted}")
        if by_extension in indexed:
            return by_extension
        listing = ", ".join(sorted(indexed)) or "none yet"
        raise UsageError(
            f"No indexed file is in language {name!r}. Languages in this index: {listing}."
        )

    def _indexed_languages(self) -> set[str]:
        rows = self.engine.db.conn.execute(
            "SELECT DISTINCT language FROM files WHERE status = 'indexed'"
        ).fetchall()
        return {str(r[0]) for r in rows}


def _validate(request: QueryRequest) -> None:
    if not request.text.strip():
        raise UsageError("The query is empty. Pass the text to search for, e.g. `cidx query \"retry upload\"`.")
    if request.mode not in QUERY_MODES:
        raise UsageError(f"Unknown mode {request.mode!r}. Use one of: {', '.join(QUERY_MODES)}.")
    if not 1 <= request.limit <= MAX_LIMIT:
        raise UsageError(f"--limit must be between 1 and {MAX_LIMIT}, not {request.limit}.")


def _results(hits: list[Hit], min_score: float | None) -> list[SearchResult]:
    results = []
    for hit in hits:
        if min_score is not None and hit.score < min_score:
            continue
        p: dict[str, Any] = hit.payload
        results.append(
            SearchResult(
                path=str(p.get("path", "")),
                start_line=int(p.get("start_line", 0)),
                end_line=int(p.get("end_line", 0)),
                score=round(hit.score, 6),
                language=str(p.get("language", "")),
                symbol=str(p.get("symbol", "")),
                kind=str(p.get("kind", "")),
                text=str(p.get("text", "")),
            )
        )
    return results
