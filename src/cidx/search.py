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
not ranked as if the other side gave it nothing. While a staged sync's
dense pass runs, some chunks have no dense vector yet: dense searches do
not see them, and in a hybrid ranking each is given the median similarity
of the candidates that have one (its keyword signal when none has), so it
ranks by what is known of it; the answer says it is partial. In every
mode a definition counts once: a long one cut into windows is shown by its
best window.
What was measured to choose all this: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cidx.chunking import languages_named
from cidx.errors import UsageError
from cidx.messages import Location, QueryAnswer, QueryRequest, SearchResult
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

    # Dense 4:1 over BM25, and the name match a ninth of those two: the
    # middle of a broad plateau (dense shares 0.7-0.8 and name weights
    # 0-0.25 of the other two all score within 0.01 MRR of it, over 23
    # corpora in five languages), so no corpus decides it. A better model
    # needs less of the name match: a quarter was best for the first one.
    dense: float = 0.72
    keyword: float = 0.18
    name: float = 0.10
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
    also: list[Hit] = field(default_factory=list)  # copies folded into this result


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
        # Queries are embedded by the model of the vectors they are compared
        # with (a collection being migrated to another model keeps the old
        # one's until cutover); None: this cidx cannot run it, keywords only.
        model = parts.collections.model_of(self.collection)
        self.dense_models = parts.models.variant(model) if model else parts.models

    def search(self, request: QueryRequest) -> list[SearchResult]:
        return self.search_batch([request])[0].results

    def search_batch(self, requests: list[QueryRequest]) -> list[QueryAnswer]:
        for request in requests:
            validate_query(request)
        scopes = [self._scope(r) for r in requests]
        share = self.manifest.dense_share()
        partial = share is not None
        need_dense = [
            i
            for i, r in enumerate(requests)
            if r.mode != "keyword" and not scopes[i].empty and self.dense_models is not None
        ]
        dense: dict[int, list[float]] = {}
        if need_dense and self.dense_models is not None:
            vectors = self.dense_models.embedder.embed(
                [requests[i].text for i in need_dense], query=True
            )
            dense = {i: vectors[k].tolist() for k, i in enumerate(need_dense)}
        sparse = {i: self.models.sparse.query(r.text) for i, r in enumerate(requests)}
        # Every store query of every request goes in one batch: (request, queries).
        queries: list[StoreQuery] = []
        slots: list[tuple[int, int]] = []
        for i, request in enumerate(requests):
            if scopes[i].empty:
                continue
            mine = self._store_queries(request, dense.get(i), sparse[i], scopes[i].flt, partial)
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
                    self._store_queries(
                        request, dense.get(i), sparse[i], scopes[i].flt, partial, deeper
                    ),
                )
                ranked[i] = self._rank(request, hits, sparse[i])
        return [
            QueryAnswer(r.text, _results(scored, r), partial, share.share if share else 1.0)
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
        partial: bool = False,
        deeper: int = 1,
    ) -> list[StoreQuery]:
        spare, depth = self._fetch_sizes(request, deeper)
        if request.mode == "keyword" or dense is None:
            return [StoreQuery((Nearest("sparse", sparse, spare),), spare, filter=flt)]
        if request.mode == "semantic":
            return [StoreQuery((Nearest("dense", dense, spare),), spare, filter=flt)]
        searches = (Nearest("dense", dense, depth), Nearest("sparse", sparse, depth))
        # Both re-score the union of both candidate lists; payloads come once,
        # unless some points have no dense vector yet: the dense re-scoring
        # leaves those out, so the BM25 side brings their payloads.
        return [
            StoreQuery(searches, 2 * depth, filter=flt, rescore=Nearest("dense", dense, 2 * depth)),
            StoreQuery(
                searches,
                2 * depth,
                filter=flt,
                with_payload=partial,
                rescore=Nearest("sparse", sparse, 2 * depth),
            ),
        ]

    def _rank(
        self, request: QueryRequest, hits: list[list[Hit]], sparse: SparseVec
    ) -> list[_Scored]:
        if len(hits) == 1:
            # Ties go to the smaller id, as in `fuse`: the store's own order
            # of equal scores depends on how its segments were written.
            scored = sorted(
                (_Scored(h, h.score) for h in hits[0]), key=lambda s: (-s.score, s.hit.id)
            )
        else:
            scored = fuse(hits[0], hits[1], sparse, self.models.sparse, self.ranking)
        if self.ranking.collapse:
            scored = collapse_copies(collapse_windows(scored))
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
    """Hybrid scores of the candidates, best first.

    `dense` holds the candidates that have a dense vector (with payloads) and
    their similarity; `sparse` the BM25 scores of all candidates: one missing
    there shares no term with the query. A candidate only `sparse` holds has
    no dense vector yet (its payload came with it): it is given the median
    similarity of the others, or its keyword signal when no candidate has one.
    """
    bm25 = {h.id: h.score for h in sparse}
    best_bm25 = max(bm25.values(), default=0.0)
    words = frozenset(query.indices)
    similarity = {h.id: max(h.score, 0.0) for h in dense}
    known = sorted(similarity.values())
    median = known[len(known) // 2] if known else None
    embedded = set(similarity)
    pending = [h for h in sparse if h.id not in embedded and h.payload]
    scored = []
    for hit in [*dense, *pending]:
        keyword = bm25.get(hit.id, 0.0) / best_bm25 if best_bm25 > 0 else 0.0
        name = name_match(
            words, encoder.name_terms(defined_name(str(hit.payload.get("symbol", ""))))
        )
        meaning = similarity.get(hit.id, keyword if median is None else median)
        score = ranking.dense * meaning + ranking.keyword * keyword + ranking.name * name
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


# Folders that hold build output or published copies of a package's source.
_GENERATED_DIRS = frozenset(
    {"dist", "lib", "build", "out", "esm", "cjs", "es", "es5", "es6", "esnext", "umd", "amd",
     "mjs", "commonjs", "module", "modules", "node", "browser", "bundle", "bundles", "types",
     "typings", "_esm", "_cjs", "_types", "_bundles", "src", "source"}
)  # fmt: skip
# `.js .cjs .mjs .jsx .ts .cts .mts .tsx`, a declaration `.d.ts` (`.d.cts`, `.d.mts`), and
# source maps of any of them.
_JS_FILE = re.compile(r"(\.d)?\.[cm]?[jt]sx?(\.map)?$")
_DECLARATION = re.compile(r"\.d\.[cm]?ts$")
_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# Identifier overlap from which a bundled definition is taken for a copy of
# a source one (types and comments differ; the names in the body do not).
_SAME_BODY = 0.5
# Names too common to say two files define the same thing.
_GENERIC_NAMES = frozenset(
    {"default", "constructor", "index", "main", "init", "create", "get", "set"}
)


def copy_family(path: str) -> str | None:
    """What a JS/TS file is a copy of: its path without extension and build folders.

    `dist/cjs/v4/core/api.cjs`, `v4/core/api.d.ts` and `src/v4/core/api.ts`
    are all `v4/core/api`. None for files that are not JS/TS.
    """
    if not _JS_FILE.search(path):
        return None
    stem = _JS_FILE.sub("", path)
    parts = [p for p in stem.split("/") if p not in _GENERATED_DIRS]
    return "/".join(parts) or stem


def _is_generated(path: str) -> bool:
    return any(p in _GENERATED_DIRS - {"src", "source"} for p in path.split("/")[:-1])


def _preference(item: _Scored) -> tuple[bool, bool, bool, bool, bool]:
    """Which copy of a definition to show (False sorts first): code before
    source maps and declarations, then source before build output: outside
    build folders, under `src/`, TypeScript (what JavaScript is compiled from)."""
    path = str(item.hit.payload.get("path", ""))
    return (
        path.endswith(".map"),
        bool(_DECLARATION.search(path)),
        _is_generated(path),
        "src" not in path.split("/")[:-1],
        not _is_ts(path),
    )


def _words(item: _Scored) -> frozenset[str]:
    return frozenset(_WORD.findall(str(item.hit.payload.get("text", ""))))


def collapse_copies(scored: list[_Scored]) -> list[_Scored]:
    """One result per definition across generated copies of a JS/TS file.

    Packages often hold one function several times: `src/x.ts`, its build
    output `x.js`, `x.cjs`, `x.mjs`, the declarations `x.d.ts`, `x.d.cts`
    and source maps; a bundle puts it in `lib/index.js`. Results that are
    such copies of each other fold into one, placed where the best of them
    ranked, shown by the implementation in the source (declarations, source
    maps and build output only when nothing better is there), with the
    other copies in `also`. Two definitions with the same symbol are copies
    when their files are of one copy family (`copy_family`), when one is a
    declaration, or when one is build output or JavaScript beside
    TypeScript and they share most identifiers. A chunk of a declaration
    file or source map that names no definition folds into the best result
    of its family.
    """
    n = len(scored)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)  # the best ranked member leads

    info = [_copy_info(item) for item in scored]
    named: dict[str, list[int]] = {}
    nameless: dict[str, list[int]] = {}
    for i, (family, symbol, _) in enumerate(info):
        if family is None:
            continue
        if symbol:
            named.setdefault(symbol, []).append(i)
        elif info[i][2]:
            nameless.setdefault(family, []).append(i)
    for same_symbol in named.values():
        for k, i in enumerate(same_symbol):
            for j in same_symbol[k + 1 :]:
                if root(i) != root(j) and _are_copies(scored[i], info[i], scored[j], info[j]):
                    join(i, j)
    best_of_family: dict[str, int] = {}
    for same_symbol in named.values():
        for i in same_symbol:
            family = info[i][0]
            assert family is not None
            if family not in best_of_family or i < best_of_family[family]:
                best_of_family[family] = i
    for family, asides in nameless.items():
        target = best_of_family.get(family, asides[0])
        for i in asides:
            join(i, target)
    groups: dict[int, list[_Scored]] = {}
    for i, item in enumerate(scored):
        groups.setdefault(root(i), []).append(item)
    out = []
    for lead in sorted(groups):
        members = groups[lead]
        if len(members) == 1:
            out.append(members[0])
            continue
        shown = min(members, key=_preference)  # min is stable: the best ranked wins ties
        also = [m.hit for m in members if m is not shown]
        out.append(_Scored(shown.hit, members[0].score, [*shown.also, *also]))
    return out


def _copy_info(item: _Scored) -> tuple[str | None, str, bool]:
    """(copy family, symbol, a declaration file or source map) of a result."""
    path = str(item.hit.payload.get("path", ""))
    aside = path.endswith(".map") or bool(_DECLARATION.search(path))
    return copy_family(path), str(item.hit.payload.get("symbol", "")), aside


def _are_copies(
    a: _Scored,
    a_info: tuple[str | None, str, bool],
    b: _Scored,
    b_info: tuple[str | None, str, bool],
) -> bool:
    """Whether two results with the same symbol are copies of one definition."""
    if a_info[0] == b_info[0]:
        return True
    if defined_name(a_info[1]).lower() in _GENERIC_NAMES:
        return False
    if a_info[2] or b_info[2]:
        return True
    pa, pb = str(a.hit.payload.get("path", "")), str(b.hit.payload.get("path", ""))
    if _is_generated(pa) or _is_generated(pb) or _is_ts(pa) != _is_ts(pb):
        mine, theirs = _words(a), _words(b)
        return bool(mine and theirs) and len(mine & theirs) / len(mine | theirs) >= _SAME_BODY
    return False


def _is_ts(path: str) -> bool:
    return bool(re.search(r"\.[cm]?tsx?(\.map)?$", path))


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
                also=tuple(
                    Location(
                        str(h.payload.get("path", "")),
                        int(h.payload.get("start_line", 0)),
                        int(h.payload.get("end_line", 0)),
                    )
                    for h in item.also
                ),
            )
        )
    return results
