"""Answering queries: dense, BM25, or both fused, with path and language filters.

Path globs use gitignore semantics (`*.py` matches at any depth, `src/`
everything below src, `src/**/test_*.py` anchored) and are resolved against
the manifest's file list, so the store filters by exact paths and a limit of
N always returns N results when N exist.

Hybrid ranking (the default mode) is done here, not by the engine's rank
fusion: a chunk's score is a weighted sum of three signals, each in 0..1 —
its cosine similarity to the query, its BM25 score divided by the best BM25
score among the candidates, and how well the name it defines matches the
query's words. So the score means the same thing from query to query and
`--min-score` is usable. Candidates are the top of each retriever, and the
store re-scores all of them under both, so a chunk only one side found is
not ranked as if the other side gave it nothing. In every mode a definition
counts once: a long one cut into windows is shown by its best window.
What was measured to choose all this: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cidx.chunking import languages_named
from cidx.errors import UsageError
from cidx.messages import QueryAnswer, QueryRequest, SearchResult
from cidx.query import validate_query
from cidx.store import Hit, Nearest, PointFilter, StoreQuery

if TYPE_CHECKING:
    from cidx.parts import IndexParts
    from cidx.sparse import SparseEncoder
    from cidx.store.base import SparseVec

# Candidates each retriever contributes to a hybrid ranking. With every
# candidate's both scores known, going deeper did not change a ranking on
# the benchmark; it only costs time.
PREFETCH_FACTOR = 5
MIN_PREFETCH = 50
# Extra results fetched in single-retriever modes, so that folding windows
# of one definition together still leaves `limit` results (when it does
# not, the search is repeated deeper, up to MAX_FETCH).
SPARE_RESULTS = 10
MAX_FETCH = 10_000

# The separators of qualified names: "Session.request", "Install > Linux".
_QUALIFIER = re.compile(r"\.|::|\s>\s")


@dataclass(frozen=True)
class Ranking:
    """How hybrid scores are made: weights of the three signals (they sum to 1)."""

    # Dense 4:1 over BM25, and the name match a quarter of those two: the
    # middle of a broad plateau (dense shares 0.7-0.9 and name weights
    # 0.1-0.4 all score within 0.016 MRR of it), so no corpus decides it.
    dense: float = 0.64
    keyword: float = 0.16
    name: float = 0.20
    collapse: bool = True


DEFAULT_RANKING = Ranking()


@dataclass(frozen=True)
class _Scope:
    flt: PointFilter | None
    empty: bool  # the filters match no indexed file


@dataclass
class _Scored:
    hit: Hit
    score: float


class Searcher:
    """Answers queries from one collection (the project's own, unless told)."""

    def __init__(
        self,
        parts: IndexParts,
        ranking: Ranking = DEFAULT_RANKING,
        *,
        collection: str | None = None,
    ) -> None:
        self.store = parts.store
        self.models = parts.models
        self.collection = parts.collections.resolve(collection or parts.collections.primary)
        self.manifest = parts.db.manifest(self.collection)
        self.ranking = ranking

    def search(self, request: QueryRequest) -> list[SearchResult]:
        return self.search_batch([request])[0].results

    def search_batch(self, requests: list[QueryRequest]) -> list[QueryAnswer]:
        for request in requests:
            validate_query(request)
        scopes = [self._scope(r) for r in requests]
        need_dense = [
            i for i, r in enumerate(requests) if r.mode != "keyword" and not scopes[i].empty
        ]
        dense: dict[int, list[float]] = {}
        if need_dense:
            vectors = self.models.embedder.embed([requests[i].text for i in need_dense])
            dense = {i: vectors[k].tolist() for k, i in enumerate(need_dense)}
        sparse = {i: self.models.sparse.query(r.text) for i, r in enumerate(requests)}
        # Every store query of every request goes in one batch: (request, queries).
        queries: list[StoreQuery] = []
        slots: list[tuple[int, int]] = []
        for i, request in enumerate(requests):
            if scopes[i].empty:
                continue
            mine = self._store_queries(request, dense.get(i), sparse[i], scopes[i].flt)
            slots.append((i, len(mine)))
            queries.extend(mine)
        found = self.store.query_batch(self.collection, queries)
        ranked: list[list[_Scored]] = [[] for _ in requests]
        at = 0
        for i, count in slots:
            request, hits = requests[i], found[at : at + count]
            at += count
            ranked[i] = self._rank(request, hits, sparse[i])
            # Folding windows together can leave fewer than `limit` results
            # while more exist; rare enough to fetch deeper one by one.
            deeper = 1
            while len(ranked[i]) < request.limit and self._maybe_more(request, hits, deeper):
                deeper *= 4
                hits = self.store.query_batch(
                    self.collection,
                    self._store_queries(request, dense.get(i), sparse[i], scopes[i].flt, deeper),
                )
                ranked[i] = self._rank(request, hits, sparse[i])
        return [
            QueryAnswer(query=r.text, results=_results(scored, r))
            for r, scored in zip(requests, ranked, strict=True)
        ]

    def _fetch_sizes(self, request: QueryRequest, deeper: int) -> tuple[int, int]:
        """(results fetched in a single-retriever mode, prefetch depth in hybrid)."""
        spare = request.limit + (SPARE_RESULTS if self.ranking.collapse else 0)
        depth = max(MIN_PREFETCH, PREFETCH_FACTOR * request.limit)
        return min(spare * deeper, MAX_FETCH), min(depth * deeper, MAX_FETCH)

    def _maybe_more(self, request: QueryRequest, hits: list[list[Hit]], deeper: int) -> bool:
        if not self.ranking.collapse:
            return False
        spare, depth = self._fetch_sizes(request, deeper)
        if len(hits) == 1:
            return len(hits[0]) == spare < MAX_FETCH
        # The dense side alone returns `depth` candidates when that many exist.
        return len(hits[0]) >= depth and depth < MAX_FETCH

    def _store_queries(
        self,
        request: QueryRequest,
        dense: list[float] | None,
        sparse: SparseVec,
        flt: PointFilter | None,
        deeper: int = 1,
    ) -> list[StoreQuery]:
        spare, depth = self._fetch_sizes(request, deeper)
        if request.mode == "semantic":
            assert dense is not None
            return [StoreQuery((Nearest("dense", dense, spare),), spare, filter=flt)]
        if request.mode == "keyword" or dense is None:
            return [StoreQuery((Nearest("sparse", sparse, spare),), spare, filter=flt)]
        searches = (Nearest("dense", dense, depth), Nearest("sparse", sparse, depth))
        # Both re-score the union of both candidate lists; payloads come once.
        return [
            StoreQuery(searches, 2 * depth, filter=flt, rescore=Nearest("dense", dense, 2 * depth)),
            StoreQuery(
                searches,
                2 * depth,
                filter=flt,
                with_payload=False,
                rescore=Nearest("sparse", sparse, 2 * depth),
            ),
        ]

    def _rank(
        self, request: QueryRequest, hits: list[list[Hit]], sparse: SparseVec
    ) -> list[_Scored]:
        if len(hits) == 1:
            scored = [_Scored(h, h.score) for h in hits[0]]
        else:
            scored = fuse(hits[0], hits[1], sparse, self.models.sparse, self.ranking)
        if self.ranking.collapse:
            scored = collapse_windows(scored)
        return scored[: request.limit]

    def _scope(self, request: QueryRequest) -> _Scope:
        paths: tuple[str, ...] | None = None
        languages: tuple[str, ...] | None = None
        if request.paths:
            import pathspec

            # Each glob was checked by validate_query.
            spec = pathspec.GitIgnoreSpec.from_lines(request.paths)
            matched = tuple(p for p in self.manifest.indexed_paths() if spec.match_file(p))
            if not matched:
                return _Scope(None, True)
            paths = matched
        if request.languages:
            languages = self._languages(request.languages)
        if paths is None and languages is None:
            return _Scope(None, False)
        return _Scope(PointFilter(paths=paths, languages=languages), False)

    def _languages(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The stored languages `names` stand for; UsageError for a name that is
        no language at all."""
        wanted: list[str] = []
        for name in names:
            stored = languages_named(name)
            if stored is None:
                indexed = self.manifest.languages()
                listing = ", ".join(sorted(indexed)) or "none yet"
                raise UsageError(
                    f"Unknown language {name!r}. Languages in this index: {listing} "
                    "(names and file extensions both work, e.g. python or py, ts, rs)."
                )
            wanted.extend(stored)
        return tuple(dict.fromkeys(wanted))


def fuse(
    dense: list[Hit],
    sparse: list[Hit],
    query: SparseVec,
    encoder: SparseEncoder,
    ranking: Ranking,
) -> list[_Scored]:
    """Hybrid scores of the candidates `dense` holds (with payloads), best first.

    `sparse` holds the BM25 scores of the same candidates; one missing there
    shares no term with the query.
    """
    bm25 = {h.id: h.score for h in sparse}
    best_bm25 = max(bm25.values(), default=0.0)
    words = frozenset(query.indices)
    scored = []
    for hit in dense:
        keyword = bm25.get(hit.id, 0.0) / best_bm25 if best_bm25 > 0 else 0.0
        name = name_match(
            words, encoder.name_terms(defined_name(str(hit.payload.get("symbol", ""))))
        )
        score = (
            ranking.dense * max(hit.score, 0.0) + ranking.keyword * keyword + ranking.name * name
        )
        scored.append(_Scored(hit, score))
    # Ties (rare with float scores) go to the smaller id, so rankings repeat.
    scored.sort(key=lambda s: (-s.score, s.hit.id))
    return scored


def defined_name(symbol: str) -> str:
    """The last part of a qualified symbol: "request" for "Session.request"."""
    return _QUALIFIER.split(symbol)[-1].strip()


def name_match(query: frozenset[int], name: frozenset[int]) -> float:
    """How well a defined name and the query's terms match: the F1 of their overlap.

    1.0 when the query is the name's words exactly; a long query that also
    mentions the name's words scores less than a short one.
    """
    if not query or not name:
        return 0.0
    return 2 * len(query & name) / (len(query) + len(name))


def collapse_windows(scored: list[_Scored]) -> list[_Scored]:
    """One result per definition: the best of the windows a long one was cut into.

    A definition is its file, kind and qualified symbol. Windows need not
    overlap each other (the first and third of one function do not), so
    position is not compared; the price is that same-named definitions in
    one file (overloads, a property's getter and setter) also show as one.
    Chunks that define nothing ("module" code between definitions) are
    never folded.
    """
    kept: list[_Scored] = []
    seen: set[tuple[str, str, str]] = set()
    for item in scored:
        p = item.hit.payload
        symbol = str(p.get("symbol", ""))
        if symbol:
            key = (str(p.get("path", "")), str(p.get("kind", "")), symbol)
            if key in seen:
                continue
            seen.add(key)
        kept.append(item)
    return kept


def _results(scored: list[_Scored], request: QueryRequest) -> list[SearchResult]:
    results = []
    for item in scored:
        if request.min_score is not None and item.score < request.min_score:
            continue
        p: dict[str, Any] = item.hit.payload
        results.append(
            SearchResult(
                path=str(p.get("path", "")),
                start_line=int(p.get("start_line", 0)),
                end_line=int(p.get("end_line", 0)),
                score=round(item.score, 6),
                language=str(p.get("language", "")),
                symbol=str(p.get("symbol", "")),
                kind=str(p.get("kind", "")),
                text=str(p.get("text", "")),
            )
        )
    return results
