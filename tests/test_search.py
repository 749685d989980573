"""Ranking, fusion, filters and modes of `cidx query`, through the real path.

One small real project is indexed once, with the bundled model and the real
Qdrant Edge store; the tests query it in-process through `Searcher`, and one
runs the CLI, so the hybrid formula, the re-scoring of candidates, the name
match and the folding of windows are checked as users get them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cidx.search as search_module
from cidx.engine import Engine
from cidx.errors import UsageError
from cidx.messages import QueryRequest, SearchResult
from cidx.owner.lock import OwnerLock
from cidx.project import ProjectPaths
from cidx.search import DEFAULT_RANKING, Ranking, Searcher, defined_name, name_match
from tests.conftest import run_cidx, write_files

# A definition long enough to be cut into several overlapping windows.
_LONG_BODY = "\n".join(
    f"    subtotal_{i} = ledger_rows[{i}] * exchange_rate + shipping_fee_{i % 7}"
    for i in range(170)
)

FILES: dict[str, str | bytes] = {
    "src/uploads.py": """
        import time


        def retry_failed_upload(queue, attempts=3):
            for _ in range(attempts):
                item = queue.pop()
                if item.send():
                    return True
                time.sleep(1)
            return False


        def parse_config_file(path):
            with open(path) as fh:
                return dict(line.split("=", 1) for line in fh if "=" in line)
        """,
    "src/cache.py": """
        class LruCache:
            def __init__(self, capacity):
                self.capacity = capacity
                self.items = {}

            def get(self, key):
                value = self.items.pop(key)
                self.items[key] = value
                return value

            def put(self, key, value):
                if len(self.items) >= self.capacity:
                    oldest = next(iter(self.items))
                    del self.items[oldest]
                self.items[key] = value
        """,
    "src/ledger.py": "def sum_ledger_rows(ledger_rows, exchange_rate):\n"
    + _LONG_BODY
    + "\n    return subtotal_0\n",
    "tests/test_uploads.py": """
        from src.uploads import retry_failed_upload


        def test_gives_up_after_attempts(queue):
            assert retry_failed_upload(queue, attempts=2) is False
            assert retry_failed_upload(queue, attempts=1) is False
        """,
    "docs/guide.md": """
        # Guide

        ## Uploads

        Uploads that fail are retried three times before giving up.

        ## Configuration

        The config file holds one key=value pair per line.
        """,
    "web/app.ts": """
        export function renderPage(title: string): string {
          return `<h1>${title}</h1>`;
        }
        """,
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("search") / "project"
    root.mkdir()
    write_files(root, FILES)
    paths = ProjectPaths(root)
    lock = OwnerLock(paths, "test")
    lock.acquire()
    eng, _ = Engine.open(paths)
    try:
        eng.sync()
        yield eng
    finally:
        eng.close()
        lock.release()


def search(
    engine: Engine, text: str, ranking: Ranking = DEFAULT_RANKING, **kw: object
) -> list[SearchResult]:
    return Searcher(engine.parts, ranking).search(QueryRequest(text=text, **kw))  # type: ignore[arg-type]


def where(r: SearchResult) -> tuple[str, int]:
    return (r.path, r.start_line)


# -- the hybrid formula ------------------------------------------------------------------


def test_hybrid_score_is_the_weighted_sum_of_cosine_bm25_and_name_match(engine: Engine) -> None:
    query = "retry an upload that failed"
    hybrid = search(engine, query, limit=5)
    # The project is smaller than a prefetch, so every chunk is a candidate:
    # each one's cosine and BM25 are what the single-retriever modes report.
    cosine = {where(r): r.score for r in search(engine, query, mode="semantic", limit=100)}
    bm25 = {where(r): r.score for r in search(engine, query, mode="keyword", limit=100)}
    best_bm25 = max(bm25.values())
    terms = frozenset(engine.parts.models.sparse.query(query).indices)
    w = DEFAULT_RANKING
    assert len(hybrid) == 5
    for r in hybrid:
        name = name_match(terms, engine.parts.models.sparse.name_terms(defined_name(r.symbol)))
        expected = (
            w.dense * max(cosine[where(r)], 0.0)
            + w.keyword * bm25.get(where(r), 0.0) / best_bm25
            + w.name * name
        )
        assert r.score == pytest.approx(expected, abs=1e-5)
    assert [r.score for r in hybrid] == sorted((r.score for r in hybrid), reverse=True)
    assert hybrid[0].symbol == "retry_failed_upload"


def test_chunks_only_one_retriever_found_get_their_real_other_score(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prefetch only as deep as the limit, so that some candidates come from
    # BM25 alone: they must still be scored with their exact cosine (and
    # dense-only ones with their exact BM25), not a guess.
    monkeypatch.setattr(search_module, "MIN_PREFETCH", 1)
    monkeypatch.setattr(search_module, "PREFETCH_FACTOR", 1)
    weights = Ranking(dense=0.3, keyword=0.7, name=0.0)
    # The first query whose hybrid top 3 holds a chunk outside the dense top 3
    # (which one does depends on the model).
    for query in (
        "key value pair per line",
        "configuration file format",
        "line",
        "token",
        "cache",
        "upload",
    ):
        hybrid = search(engine, query, limit=3, ranking=weights)
        dense_top = {where(r) for r in search(engine, query, mode="semantic", limit=3)}
        if any(where(r) not in dense_top for r in hybrid):
            break
    else:
        raise AssertionError("no query found a result through BM25 alone")
    cosine = {where(r): r.score for r in search(engine, query, mode="semantic", limit=100)}
    bm25 = {where(r): r.score for r in search(engine, query, mode="keyword", limit=100)}
    best = max(bm25.values())
    assert len(hybrid) == 3
    for r in hybrid:
        expected = 0.3 * cosine[where(r)] + 0.7 * bm25.get(where(r), 0.0) / best
        assert r.score == pytest.approx(expected, abs=1e-5)


def test_hybrid_scores_are_between_0_and_1(engine: Engine) -> None:
    for query in ("retry_failed_upload", "LruCache.put", "configuration file format", "zzz qqq"):
        results = search(engine, query, limit=20)
        assert results
        assert all(0.0 <= r.score <= 1.0 for r in results)


def test_a_definition_outranks_code_that_only_calls_it(engine: Engine) -> None:
    results = search(engine, "retry failed upload", limit=10)
    assert (results[0].path, results[0].symbol) == ("src/uploads.py", "retry_failed_upload")
    caller = next(r for r in results if r.path.startswith("tests/"))
    # The name signal is what widens the lead over the test that calls it.
    plain = search(engine, "retry failed upload", limit=10, ranking=Ranking(0.8, 0.2, 0.0))
    plain_caller = next(r for r in plain if r.path.startswith("tests/"))
    assert results[0].score - caller.score > plain[0].score - plain_caller.score


def test_name_match_is_the_f1_of_shared_terms() -> None:
    a, b, c = 1, 2, 3
    assert name_match(frozenset({a, b}), frozenset({a, b})) == 1.0
    assert name_match(frozenset({a, b, c}), frozenset({a})) == pytest.approx(0.5)
    assert name_match(frozenset(), frozenset({a})) == 0.0
    assert name_match(frozenset({a}), frozenset()) == 0.0
    assert defined_name("Session.request") == "request"
    assert defined_name("Guide > Uploads") == "Uploads"
    assert defined_name("net::http::get") == "get"


def test_rankings_repeat_exactly(engine: Engine) -> None:
    first = search(engine, "value of a key in the cache", limit=10)
    for _ in range(3):
        assert search(engine, "value of a key in the cache", limit=10) == first


# -- windows of one definition -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_windows_of_one_long_definition_count_once(engine: Engine, mode: str) -> None:
    query = "subtotal ledger rows exchange rate shipping fee value"
    folded = search(engine, query, mode=mode, limit=5)
    unfolded = search(engine, query, mode=mode, limit=5, ranking=Ranking(collapse=False))
    windows = [r for r in unfolded if r.symbol == "sum_ledger_rows"]
    assert len(windows) >= 3, "the fixture's long function must be cut into windows"
    assert [r.symbol for r in folded].count("sum_ledger_rows") == 1
    # The one kept is the best window, and the freed places go to other chunks.
    assert folded[0] == unfolded[0]
    everything = search(engine, query, mode=mode, limit=100, ranking=Ranking(collapse=False))
    definitions = {(r.path, r.kind, r.symbol or str(r.start_line)) for r in everything}
    assert len(folded) == min(5, len(definitions))


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_folding_fetches_deeper_when_windows_crowd_out_results(
    engine: Engine, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = "subtotal ledger rows exchange rate shipping fee value"
    roomy = search(engine, query, mode=mode, limit=5)
    # Fetch only `limit` candidates: the windows of one function fill them.
    monkeypatch.setattr(search_module, "SPARE_RESULTS", 0)
    monkeypatch.setattr(search_module, "MIN_PREFETCH", 1)
    monkeypatch.setattr(search_module, "PREFETCH_FACTOR", 1)
    tight = search(engine, query, mode=mode, limit=5)
    assert [where(r) for r in tight] == [where(r) for r in roomy]
    assert [r.score for r in tight] == pytest.approx([r.score for r in roomy], abs=1e-5)


# -- --min-score -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_min_score_drops_results_below_it(engine: Engine, mode: str) -> None:
    query = "retry failed upload"
    everything = search(engine, query, mode=mode, limit=10)
    assert len(everything) >= 3
    # A cut between two distinct scores, below the first.
    n = next(i for i in range(1, len(everything)) if everything[i].score < everything[i - 1].score)
    cut = (everything[n - 1].score + everything[n].score) / 2
    kept = search(engine, query, mode=mode, limit=10, min_score=cut)
    assert kept == everything[:n]
    assert search(engine, query, mode=mode, limit=10, min_score=everything[0].score + 1) == []


# -- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_path_globs_limit_results_to_matching_files(engine: Engine, mode: str) -> None:
    query = "retry failed upload"
    docs = search(engine, query, mode=mode, paths=("docs/",))
    assert docs and {r.path for r in docs} == {"docs/guide.md"}
    py = search(engine, query, mode=mode, paths=("src/*.py",), limit=50)
    assert py and {r.path for r in py} <= {"src/uploads.py", "src/cache.py", "src/ledger.py"}
    either = search(engine, query, mode=mode, paths=("tests/", "*.md"), limit=50)
    assert {r.path for r in either} == {"tests/test_uploads.py", "docs/guide.md"}
    assert search(engine, query, mode=mode, paths=("nowhere/**",)) == []


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_language_filter_by_name_or_extension(engine: Engine, mode: str) -> None:
    page = search(engine, "render a page title", mode=mode, languages=("ts",), limit=50)
    assert page and {r.language for r in page} == {"typescript"}
    md = search(engine, "config file", mode=mode, languages=("markdown",), limit=50)
    assert md and {r.path for r in md} == {"docs/guide.md"}
    both = search(
        engine, "upload attempts", mode=mode, languages=("python",), paths=("tests/",), limit=50
    )
    assert {r.path for r in both} == {"tests/test_uploads.py"}
    # Aliases and families: "TypeScript" covers .tsx too, "rs"/"golang" are known names.
    assert {r.language for r in search(engine, "render", mode=mode, languages=("TypeScript",))} <= {
        "typescript",
        "tsx",
    }
    assert search(engine, "config file", mode=mode, languages=("rust", "golang")) == []
    with pytest.raises(UsageError, match=r"Unknown language 'cobol'.*markdown, python, typescript"):
        search(engine, "config file", mode=mode, languages=("cobol",))


# -- modes -------------------------------------------------------------------------------------


def test_keyword_mode_finds_an_exact_identifier_with_bm25_scores(engine: Engine) -> None:
    results = search(engine, "LruCache", mode="keyword", limit=5)
    assert results[0].symbol.startswith("LruCache")
    assert all(r.path == "src/cache.py" for r in results)
    # Raw BM25: not bounded by 1.
    assert results[0].score > 1.0


def test_semantic_mode_finds_by_meaning_with_cosine_scores(engine: Engine) -> None:
    results = search(engine, "cache that forgets old entries", mode="semantic", limit=3)
    assert results[0].path == "src/cache.py"
    assert all(-1.0 <= r.score <= 1.0 for r in results)


def test_limit_is_honoured_in_every_mode(engine: Engine) -> None:
    for mode in ("hybrid", "semantic", "keyword"):
        assert len(search(engine, "value", mode=mode, limit=1)) == 1
        assert len(search(engine, "the cache value of a key", mode=mode, limit=4)) <= 4


def test_batch_answers_each_query_in_its_own_mode(engine: Engine) -> None:
    requests = [
        QueryRequest(text="retry failed upload", mode="keyword", limit=2),
        QueryRequest(text="retry failed upload", mode="hybrid", limit=2),
        QueryRequest(text="retry failed upload", mode="semantic", limit=2, paths=("nowhere/",)),
        QueryRequest(text="render a page title", mode="semantic", limit=2),
    ]
    answers = Searcher(engine.parts).search_batch(requests)
    assert [a.query for a in answers] == [r.text for r in requests]
    for answer, request in zip(answers, requests, strict=True):
        alone = Searcher(engine.parts).search(request)
        assert [where(r) for r in answer.results] == [where(r) for r in alone]
        assert [r.score for r in answer.results] == pytest.approx(
            [r.score for r in alone], abs=1e-5
        )
    assert answers[0].results[0].score > 1.0  # BM25
    assert answers[1].results[0].score <= 1.0  # fused
    assert answers[2].results == []


def test_cli_default_mode_is_hybrid_with_scores_from_0_to_1(tmp_path: Path) -> None:
    root = tmp_path / "cli"
    root.mkdir()
    write_files(root, {k: v for k, v in FILES.items() if k.startswith("src/")})
    results = run_cidx(["query", "retry failed upload", "--json", "-n", "3"], root).results()
    assert [set(r) for r in results] == [
        {"path", "start_line", "end_line", "score", "language", "symbol", "kind", "text", "also"}
    ] * 3
    assert results[0]["symbol"] == "retry_failed_upload"
    assert all(0.0 <= r["score"] <= 1.0 for r in results)
    hybrid = run_cidx(
        ["query", "retry failed upload", "--json", "-n", "3", "--mode", "hybrid"], root
    ).results()
    assert hybrid == results
    keyword = run_cidx(
        ["query", "retry failed upload", "--json", "-n", "3", "--mode", "keyword"], root
    ).results()
    assert keyword[0]["score"] > 1.0
