"""The ranking variants `quality.py` compares, and how a ranking is scored.

Query-time variants rank one index's results differently; index-time
variants patch the module that owns a choice (max length, embedded text,
BM25 settings, chunk sizes) and rebuild. See `quality.py` for how they run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _models import (
    candidate_model,
    first_tuned_model,
    previous_model,
    second_tuned_model,
    third_tuned_model,
)

from cidx.chunking import Chunk
from cidx.engine import Engine
from cidx.messages import QueryRequest
from cidx.search import DEFAULT_RANKING, Ranking, Searcher
from cidx.store import Fusion, Hit, Nearest, StoreQuery

LIMIT = 10
BASELINE = "engine rrf k=60 (before)"


# -- scoring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    text: str
    path: str
    start: int
    end: int


@dataclass(frozen=True)
class Loc:
    path: str
    start_line: int
    end_line: int


@dataclass
class Scores:
    mrr: float
    r1: float
    r5: float
    r10: float
    ms: float | None = None  # mean ms per query, batched, for variants that run the real path

    @staticmethod
    def of(
        queries: Sequence[Query], ranked: Sequence[Sequence[Loc]], ms: float | None = None
    ) -> Scores:
        rr = r1 = r5 = r10 = 0.0
        for q, results in zip(queries, ranked, strict=True):
            rank = next(
                (
                    i + 1
                    for i, r in enumerate(results[:LIMIT])
                    if r.path == q.path and r.start_line <= q.end and r.end_line >= q.start
                ),
                None,
            )
            if rank:
                rr += 1 / rank
                r1 += rank == 1
                r5 += rank <= 5
                r10 += 1
        n = len(queries)
        return Scores(rr / n, r1 / n, r5 / n, r10 / n, ms)


def load_queries(bench: Path) -> list[Query]:
    raw = json.loads((bench / "queries.json").read_text(encoding="utf-8"))
    return [Query(q["query"], q["path"], int(q["start"]), int(q["end"])) for q in raw]


# -- what the fusion variants start from -----------------------------------------------------


@dataclass
class Raw:
    """Every point's dense and BM25 score for every query, and where each point is."""

    queries: list[Query]
    locs: dict[str, Loc]
    dense: list[list[tuple[str, float]]]  # per query, best first, every point
    sparse: list[list[tuple[str, float]]]  # per query, best first, points sharing a term
    vectors: list[list[float]]
    sparse_queries: list[Any]
    symbols: dict[str, str] = field(default_factory=dict)
    # Filled on first use by the variants that need them.
    name_vectors: dict[str, list[float]] = field(default_factory=dict)


def fetch_raw(engine: Engine, queries: list[Query]) -> Raw:
    store, collection = engine.store, engine.collection
    payloads = dict(
        store.scroll(collection, payload_fields=("path", "start_line", "end_line", "symbol"))
    )
    locs = {
        pid: Loc(str(p["path"]), int(p["start_line"]), int(p["end_line"]))
        for pid, p in payloads.items()
    }
    n = len(locs)
    vectors = [v.tolist() for v in engine.parts.models.embedder.embed([q.text for q in queries])]
    sparse_q = [engine.parts.models.sparse.query(q.text) for q in queries]
    dense_hits = store.query_batch(
        collection, [StoreQuery((Nearest("dense", v, n),), n, with_payload=False) for v in vectors]
    )
    sparse_hits = store.query_batch(
        collection,
        [StoreQuery((Nearest("sparse", s, n),), n, with_payload=False) for s in sparse_q],
    )
    return Raw(
        queries,
        locs,
        [[(h.id, h.score) for h in hits] for hits in dense_hits],
        [[(h.id, h.score) for h in hits] for hits in sparse_hits],
        vectors,
        sparse_q,
        {pid: str(p.get("symbol", "")) for pid, p in payloads.items()},
    )


# -- query-time variants ---------------------------------------------------------------------

Ranker = Callable[[Engine, Raw], tuple[list[list[Loc]], float | None]]
VARIANTS: dict[str, Ranker] = {}


def _engine_fusion(fusion: Fusion, depth: int = 50) -> Ranker:
    """Qdrant's own fusion of dense and BM25 prefetches of `depth` each."""

    def run(engine: Engine, raw: Raw) -> tuple[list[list[Loc]], float | None]:
        queries = [
            StoreQuery(
                (Nearest("dense", v, depth), Nearest("sparse", s, depth)),
                LIMIT,
                fusion=fusion,
                with_payload=False,
            )
            for v, s in zip(raw.vectors, raw.sparse_queries, strict=True)
        ]
        hits: list[list[Hit]] = engine.store.query_batch(engine.collection, queries)
        return [[raw.locs[h.id] for h in found] for found in hits], None

    return run


# The baseline first: every ratio is against it.
VARIANTS[BASELINE] = _engine_fusion(Fusion("rrf", rrf_k=60))


def _cidx(mode: str, ranking: Ranking = DEFAULT_RANKING) -> Ranker:
    """The real `Searcher`, as `cidx query --mode MODE` runs it."""

    def run(engine: Engine, raw: Raw) -> tuple[list[list[Loc]], float | None]:
        requests = [QueryRequest(text=q.text, limit=LIMIT, mode=mode) for q in raw.queries]  # type: ignore[arg-type]
        searcher = Searcher(engine.parts, ranking)
        started = time.perf_counter()
        answers = searcher.search_batch(requests)
        ms = 1000 * (time.perf_counter() - started) / len(requests)
        return [[Loc(r.path, r.start_line, r.end_line) for r in a.results] for a in answers], ms

    return run


def _weights(alpha: float, beta: float) -> Ranking:
    """alpha: the dense share of dense + BM25; beta: the name match relative to those two."""
    return Ranking(
        dense=alpha / (1 + beta), keyword=(1 - alpha) / (1 + beta), name=beta / (1 + beta)
    )


for _mode in ("hybrid", "semantic", "keyword"):
    VARIANTS[f"cidx {_mode}"] = _cidx(_mode)
    VARIANTS[f"cidx {_mode}, windows not collapsed"] = _cidx(
        _mode, Ranking(DEFAULT_RANKING.dense, DEFAULT_RANKING.keyword, DEFAULT_RANKING.name, False)
    )
# The shipped weights as (dense share of dense + BM25, name weight relative to those two).
SHIPPED_ALPHA = DEFAULT_RANKING.dense / (DEFAULT_RANKING.dense + DEFAULT_RANKING.keyword)
SHIPPED_NAME = DEFAULT_RANKING.name / (DEFAULT_RANKING.dense + DEFAULT_RANKING.keyword)
for _alpha, _beta in (
    (0.7, 0.0), (0.8, 0.0), (0.9, 0.0),
    (0.7, 0.1), (0.9, 0.1),
    (0.8, 0.25), (0.8, 0.4), (0.8, 0.6),
):  # fmt: skip
    VARIANTS[f"cidx hybrid a={_alpha:g} name={_beta:g}"] = _cidx("hybrid", _weights(_alpha, _beta))

for _k in (2, 10, 30, 100):
    VARIANTS[f"engine rrf k={_k}"] = _engine_fusion(Fusion("rrf", rrf_k=_k))
for _w in ((1.5, 1.0), (2.0, 1.0), (3.0, 1.0)):
    VARIANTS[f"engine rrf k=60 w={_w[0]:g}:{_w[1]:g}"] = _engine_fusion(
        Fusion("rrf", rrf_k=60, weights=_w)
    )
for _d in (20, 100):
    VARIANTS[f"engine rrf k=60 depth={_d}"] = _engine_fusion(Fusion("rrf", rrf_k=60), _d)
VARIANTS["engine dbsf"] = _engine_fusion(Fusion("dbsf"))

Scored = dict[str, float]


def _client(combine: Callable[[Scored, Scored], Scored], depth: int = 50) -> Ranker:
    """Fusion here, of the top `depth` of each list, every candidate's both scores known."""

    def run(engine: Engine, raw: Raw) -> tuple[list[list[Loc]], float | None]:
        out = []
        for dense, sparse in zip(raw.dense, raw.sparse, strict=True):
            d_all, s_all = dict(dense), dict(sparse)
            cands = list(
                dict.fromkeys([i for i, _ in dense[:depth]] + [i for i, _ in sparse[:depth]])
            )
            fused = combine({i: d_all[i] for i in cands}, {i: s_all.get(i, 0.0) for i in cands})
            best = sorted(cands, key=lambda i: (-fused[i], i))[:LIMIT]
            out.append([raw.locs[i] for i in best])
        return out, None

    return run


def _minmax(x: Scored) -> Scored:
    lo, hi = min(x.values()), max(x.values())
    return {i: (v - lo) / (hi - lo) if hi > lo else 0.0 for i, v in x.items()}


def _zscore(x: Scored) -> Scored:
    mu, sd = statistics.fmean(x.values()), statistics.pstdev(x.values()) or 1.0
    return {i: (v - mu) / sd for i, v in x.items()}


def _by_max(x: Scored) -> Scored:
    hi = max(x.values())
    return {i: v / hi if hi > 0 else 0.0 for i, v in x.items()}


def _raw(x: Scored) -> Scored:
    return x


def _convex(
    alpha: float, nd: Callable[[Scored], Scored], ns: Callable[[Scored], Scored]
) -> Callable[[Scored, Scored], Scored]:
    def combine(d: Scored, s: Scored) -> Scored:
        dn, sn = nd(d), ns(s)
        return {i: alpha * dn[i] + (1 - alpha) * sn[i] for i in d}

    return combine


for _a in (0.5, 0.6, 0.7, 0.8, 0.9):
    VARIANTS[f"client minmax a={_a:g}"] = _client(_convex(_a, _minmax, _minmax))
    VARIANTS[f"client zscore a={_a:g}"] = _client(_convex(_a, _zscore, _zscore))
    VARIANTS[f"client cos+bm25/max a={_a:g}"] = _client(_convex(_a, _raw, _by_max))


def _named(
    alpha: float,
    beta: float,
    *,
    name: str = "last-f1",
    impute: bool = False,
    path: float = 0.0,
    name_vector: float = 0.0,
    depth: int = 50,
) -> Ranker:
    """cidx's hybrid formula with one ingredient swapped, to see what each is worth.

    name: which match of the query's terms with the symbol is the name signal
    ("last-f1" is cidx's: F1 with the last part of the symbol; "qualified-f1"
    uses the whole qualified symbol; "last-coverage" the share of the name's
    terms in the query; "query-coverage" the share of the query's terms in
    the qualified symbol). impute: score a candidate missing from one list
    with that list's lowest score (dense) or 0 (BM25) instead of its exact
    score. path: weight of the share of the file path's terms in the query.
    name_vector: weight of the cosine between the query and the embedded
    words of the defined name (what a second vector per chunk would give).
    """
    import numpy as np

    from cidx.search import defined_name, name_match
    from cidx.sparse import identifier_parts

    def run(engine: Engine, raw: Raw) -> tuple[list[list[Loc]], float | None]:
        enc = engine.parts.models.sparse
        if name_vector and not raw.name_vectors:
            ids = list(raw.symbols)
            words = [" ".join(identifier_parts(defined_name(raw.symbols[i]))) for i in ids]
            vecs = engine.parts.models.embedder.embed(words)
            raw.name_vectors.update(
                {i: v.tolist() for i, v, w in zip(ids, vecs, words, strict=True) if w}
            )
        out = []
        for qi, (dense, sparse) in enumerate(zip(raw.dense, raw.sparse, strict=True)):
            terms = frozenset(raw.sparse_queries[qi].indices)
            d_top, s_top = dense[:depth], sparse[:depth]
            cands = list(dict.fromkeys([i for i, _ in d_top] + [i for i, _ in s_top]))
            if impute:
                d_all = dict(d_top)
                s_all = dict(s_top)
                floor = d_top[-1][1]
            else:
                d_all, s_all, floor = dict(dense), dict(sparse), 0.0
            best = max((s_all.get(i, 0.0) for i in cands), default=0.0) or 1.0
            qvec = np.array(raw.vectors[qi])
            fused = {}
            for i in cands:
                symbol = raw.symbols[i]
                if name == "last-f1":
                    nm = name_match(terms, enc.name_terms(defined_name(symbol)))
                elif name == "qualified-f1":
                    nm = name_match(terms, enc.name_terms(symbol))
                elif name == "last-coverage":
                    nt = enc.name_terms(defined_name(symbol))
                    nm = len(terms & nt) / len(nt) if nt else 0.0
                else:
                    nt = enc.name_terms(symbol)
                    nm = len(terms & nt) / len(terms) if nt and terms else 0.0
                score = (
                    alpha * max(d_all.get(i, floor), 0.0)
                    + (1 - alpha) * s_all.get(i, 0.0) / best
                    + beta * nm
                )
                if path:
                    pt = enc.name_terms(raw.locs[i].path.rsplit(".", 1)[0].replace("/", " "))
                    score += path * (len(terms & pt) / len(pt) if pt else 0.0)
                if name_vector and i in raw.name_vectors:
                    score += name_vector * float(qvec @ np.array(raw.name_vectors[i]))
                fused[i] = score
            ranked = sorted(cands, key=lambda i: (-fused[i], i))[:LIMIT]
            out.append([raw.locs[i] for i in ranked])
        return out, None

    return run


VARIANTS["client cidx formula (as shipped, windows not collapsed)"] = _named(
    SHIPPED_ALPHA, SHIPPED_NAME
)
VARIANTS["client cidx formula, missing scores imputed"] = _named(
    SHIPPED_ALPHA, SHIPPED_NAME, impute=True
)
VARIANTS["client cidx formula, missing scores imputed, depth 100"] = _named(
    SHIPPED_ALPHA, SHIPPED_NAME, impute=True, depth=100
)
VARIANTS["client cidx formula, depth 20"] = _named(SHIPPED_ALPHA, SHIPPED_NAME, depth=20)
VARIANTS["client cidx formula, depth 200"] = _named(SHIPPED_ALPHA, SHIPPED_NAME, depth=200)
VARIANTS["client cidx formula, name = F1 with qualified symbol"] = _named(
    SHIPPED_ALPHA, SHIPPED_NAME, name="qualified-f1"
)
VARIANTS["client cidx formula, name = share of name terms in query"] = _named(
    SHIPPED_ALPHA, SHIPPED_NAME, name="last-coverage"
)
VARIANTS["client cidx formula, name = share of query terms in symbol"] = _named(
    SHIPPED_ALPHA, SHIPPED_NAME, name="query-coverage"
)
for _g in (0.05, 0.1):
    VARIANTS[f"client cidx formula + path terms {_g:g}"] = _named(
        SHIPPED_ALPHA, SHIPPED_NAME, path=_g
    )
for _g in (0.1, 0.25):
    VARIANTS[f"client cidx formula + embedded name cosine {_g:g}"] = _named(
        SHIPPED_ALPHA, SHIPPED_NAME, name_vector=_g
    )
    VARIANTS[f"client cos+bm25/max a=0.8 + embedded name cosine {_g:g} (no name match)"] = _named(
        0.8, 0.0, name_vector=_g
    )


# -- index-time variants ---------------------------------------------------------------------

IndexVariant = Callable[[Engine], contextlib.AbstractContextManager[None]]
INDEX_VARIANTS: dict[str, IndexVariant] = {}
SHIPPED = "index as shipped"
BEFORE = "index before"  # dense "symbol\ntext"; BM25 avg_len 120, symbol once


@contextlib.contextmanager
def _patched(target: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, old)


@contextlib.contextmanager
def _as_is(engine: Engine) -> Iterator[None]:
    yield


def _combined(*variants: IndexVariant) -> IndexVariant:
    @contextlib.contextmanager
    def apply(engine: Engine) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for v in variants:
                stack.enter_context(v(engine))
            yield

    return apply


@contextlib.contextmanager
def _embedding(engine: Engine, settings: Any, model: Any = None) -> Iterator[None]:
    """Index and query `engine` with other embedding settings (and model file)."""
    from cidx.parts import Models

    old_config, old_parts = engine.config, engine.parts
    config = old_config.model_copy(update={"embedding": settings})
    engine.config = config
    # The collections record the model id the vectors are cached and looked
    # up under: without it, this variant's vectors would be stored as (and
    # mixed with) the bundled model's.
    engine.parts = dataclasses.replace(
        old_parts,
        config=config,
        models=Models(settings.max_length, model=model),
        collections=dataclasses.replace(old_parts.collections, model=settings.model_id),
    )
    try:
        yield
    finally:
        engine.config, engine.parts = old_config, old_parts


def _max_length(n: int) -> IndexVariant:
    def apply(engine: Engine) -> contextlib.AbstractContextManager[None]:
        from cidx.embedding import embedding_settings

        return _embedding(engine, embedding_settings(n))

    return apply


def _text(which: str, fn: Callable[[str, Chunk], str]) -> IndexVariant:
    """Replace `dense_text` or `sparse_text` where the indexer calls it."""

    @contextlib.contextmanager
    def apply(engine: Engine) -> Iterator[None]:
        import cidx.indexer._files

        with _patched(cidx.indexer._files, which, fn):
            yield

    return apply


def _bm25(**settings: Any) -> IndexVariant:
    @contextlib.contextmanager
    def apply(engine: Engine) -> Iterator[None]:
        from cidx.sparse import SparseEncoder

        engine.parts.models.__dict__["sparse"] = SparseEncoder(**settings)
        yield

    return apply


def _chunk_sizes(max_lines: int, window: int, overlap: int) -> IndexVariant:
    @contextlib.contextmanager
    def apply(engine: Engine) -> Iterator[None]:
        from cidx.chunking import _text as chunk_text

        fn = chunk_text.split_range
        old = fn.__kwdefaults__
        fn.__kwdefaults__ = {"max_lines": max_lines, "window": window, "overlap": overlap}
        try:
            with _patched(chunk_text, "MAX_CHUNK_LINES", max_lines):
                yield
        finally:
            fn.__kwdefaults__ = old

    return apply


def _path_words(path: str) -> str:
    return path.replace("/", " ").replace(".", " ")


def _symbol_words(symbol: str) -> str:
    from cidx.sparse import identifier_parts

    return " ".join(identifier_parts(symbol.replace(".", "_")))


def _dense_v1(path: str, c: Chunk) -> str:
    return f"{c.symbol}\n{c.text}" if c.symbol else c.text


def _sparse_v1(path: str, c: Chunk) -> str:
    return f"{_path_words(path)}\n{c.symbol}\n{c.text}"


# Index variants that embed with an earlier bundled model (`_models`).
PREVIOUS_MODEL = "model: previous (all-MiniLM-L6-v2 int8)"
FIRST_TUNED_MODEL = "model: first code-tuned (cidx-code-minilm-l6-int8)"
SECOND_TUNED_MODEL = "model: second code-tuned (cidx-code2-minilm-l6-int8)"
THIRD_TUNED_MODEL = "model: third code-tuned (cidx-code3-minilm-l6-int8)"


def _model(make: Callable[[], Any]) -> IndexVariant:
    """Index and query with another model file (its own model id, so its own cache)."""

    def apply(engine: Engine) -> contextlib.AbstractContextManager[None]:
        from cidx.config import EmbeddingSettings

        model = make()
        size = engine.config.embedding.max_length
        settings = EmbeddingSettings(model_id=f"{model.name}@{size}", dim=384, max_length=size)
        return _embedding(engine, settings, model)

    return apply


def add_candidates(paths: list[Path]) -> list[str]:
    """An index variant per exported model file (`--candidate`); their names."""
    names = []
    for path in paths:
        name = f"model: candidate {path.name}"
        INDEX_VARIANTS[name] = _model(lambda path=path: candidate_model(path))
        names.append(name)
    return names


_NEW_KINDS = {"interface ": "class ", "type ": "class ", "enum ": "class ", "object ": "class "}


def _kinds_as_before(path: str, c: Chunk) -> str:
    """Dense text with the kind words chunker 1 gave (every container a "class")."""
    from cidx.representation import dense_text

    text = dense_text(path, c)
    for new, old in _NEW_KINDS.items():
        if text.startswith(new):
            return old + text[len(new) :]
    return text


INDEX_VARIANTS[SHIPPED] = _as_is
INDEX_VARIANTS[PREVIOUS_MODEL] = _model(previous_model)
INDEX_VARIANTS[FIRST_TUNED_MODEL] = _model(first_tuned_model)
INDEX_VARIANTS[SECOND_TUNED_MODEL] = _model(second_tuned_model)
INDEX_VARIANTS[THIRD_TUNED_MODEL] = _model(third_tuned_model)
INDEX_VARIANTS["kinds as before (interface/type/enum/object -> class)"] = _text(
    "dense_text", _kinds_as_before
)
INDEX_VARIANTS[BEFORE] = _combined(
    _text("dense_text", _dense_v1), _text("sparse_text", _sparse_v1), _bm25(avg_len=120.0)
)
for _n in (256, 512):
    INDEX_VARIANTS[f"max length {_n}"] = _max_length(_n)
INDEX_VARIANTS["dense: symbol + text"] = _text("dense_text", _dense_v1)
INDEX_VARIANTS["dense: symbol words + text"] = _text(
    "dense_text", lambda path, c: f"{_symbol_words(c.symbol)}\n{c.text}" if c.symbol else c.text
)
INDEX_VARIANTS["dense: text only"] = _text("dense_text", lambda path, c: c.text)
INDEX_VARIANTS["dense: path + kind + symbol + text"] = _text(
    "dense_text", lambda path, c: f"{_path_words(path)}\n{c.kind} {c.symbol}\n{c.text}"
)
INDEX_VARIANTS["sparse: symbol once"] = _text("sparse_text", _sparse_v1)
INDEX_VARIANTS["sparse: symbol x3"] = _text(
    "sparse_text",
    lambda path, c: f"{_path_words(path)}\n{c.symbol}\n{c.symbol}\n{c.symbol}\n{c.text}",
)
INDEX_VARIANTS["sparse: no path"] = _text(
    "sparse_text", lambda path, c: f"{c.symbol}\n{c.symbol}\n{c.text}"
)
for _avg in (40.0, 120.0, 256.0):
    INDEX_VARIANTS[f"bm25 avg_len={_avg:g}"] = _bm25(avg_len=_avg)
for _kk in (0.9, 1.5):
    INDEX_VARIANTS[f"bm25 k={_kk:g}"] = _bm25(k=_kk)
for _bb in (0.5, 0.9):
    INDEX_VARIANTS[f"bm25 b={_bb:g}"] = _bm25(b=_bb)
INDEX_VARIANTS["bm25 no stemming"] = _bm25(stem=False)
INDEX_VARIANTS["bm25 code stop words"] = _bm25(
    stopwords=frozenset(
        {"self", "cls", "this", "def", "return", "none", "null", "true", "false", "elif", "else"}
    )
)
INDEX_VARIANTS["chunks 40/30/6 (max lines/window/overlap)"] = _chunk_sizes(40, 30, 6)
INDEX_VARIANTS["chunks 120/80/10"] = _chunk_sizes(120, 80, 10)
