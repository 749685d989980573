"""Staged indexing: keyword answers from the first seconds, dense vectors after.

Real engine, real model, real files and processes. Every corpus here is
small, so each test stages it on purpose (`CIDX_STAGE_MIN_BYTES=1`); the
dense pass is held back deterministically (a failpoint, or by running its
batches by hand), never by racing a timer.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cidx.indexer import STAGE_ENV
from cidx.messages import QueryAnswer, QueryRequest
from cidx.project import ProjectPaths
from cidx.state import StateDB
from tests.conftest import cidx_cmd, run_cidx, write_files
from tests.helpers import clean_rebuild, full_snapshot, generated_module, opened, sync, until
from tests.test_watch import Watcher

QUERIES = ("retry upload queue", "parse token cache", "digest commit branch", "socket render")
MODES = ("hybrid", "keyword", "semantic")


def _files() -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        f"src/m{i:02d}.py": generated_module(i, functions=4) for i in range(6)
    }
    files["tests/test_m00.py"] = generated_module(100, functions=3)
    files["src/m00_test.py"] = generated_module(101, functions=2)
    files["docs/guide.md"] = (
        "# Guide\n\n## Uploads\n\nFailed uploads are retried from the queue.\n\n"
        "## Tokens\n\nTokens are parsed once and cached.\n"
    )
    return files


@pytest.fixture(autouse=True)
def _stage_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STAGE_ENV, "1")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write_files(root, _files())
    # Distinct ages: the dense pass takes the newest first within each kind.
    now = time.time()
    for n, rel in enumerate(sorted(_files())):
        os.utime(root / rel, (now - 1000 + n, now - 1000 + n))
    return root


def _reference(root: Path, scratch: Path) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """The answers of an index of a fresh copy built the old way (one sync, embedded whole)."""
    copy = scratch / "reference"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".code-indexer"))
    summary = sync(copy)
    assert summary.chunks_pending == 0 and summary.chunks_embedded > 0
    with opened(copy) as engine:
        return _answers(engine.search_batch([_req(q, m) for m in MODES for q in QUERIES]))


def _req(text: str, mode: str) -> QueryRequest:
    return QueryRequest(text=text, limit=5, mode=mode)  # type: ignore[arg-type]


def _answers(answers: list[QueryAnswer]) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    out = {}
    for (mode, text), answer in zip([(m, q) for m in MODES for q in QUERIES], answers, strict=True):
        out[mode, text] = [
            (r.path, r.start_line, r.symbol, round(r.score, 4)) for r in answer.results
        ]
    return out


def _pending(root: Path) -> set[str]:
    db = StateDB(ProjectPaths(root).state_db)
    try:
        config_collection = db.conn.execute("SELECT DISTINCT collection FROM files").fetchone()[0]
        return {r.path for r in db.manifest(str(config_collection)).dense_pending()}
    finally:
        db.close()


def test_keywords_answer_before_the_dense_pass_and_the_end_matches_a_full_index(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened(corpus) as engine:
        summary = engine.indexer().sync(staged=True)
        assert summary.chunks_embedded == 0
        assert summary.chunks_pending == summary.points_upserted > 0
        early = engine.search_batch([_req(q, m) for m in MODES for q in QUERIES])
        assert all(a.partial and a.embedded_share == 0.0 for a in early)
        by_mode = {m: early[i * len(QUERIES) : (i + 1) * len(QUERIES)] for i, m in enumerate(MODES)}
        # Keyword and hybrid answers come from BM25 already; semantic has nothing yet.
        assert all(a.results for a in by_mode["keyword"])
        assert all(a.results for a in by_mode["hybrid"])
        assert not any(a.results for a in by_mode["semantic"])

        # The dense pass, one file a batch: source, then tests, then docs,
        # newest first within each.
        dense = engine.indexer().dense_pass()
        order: list[str] = []
        pending = _pending(corpus)
        while dense.step(chunks=1) is not None:
            now = _pending(corpus)
            order.extend(sorted(pending - now))
            pending = now
            share = dense.share()
            assert share is None or 0 < share.share < 1
        sources = sorted(
            (p for p in _files() if p.startswith("src/") and "_test" not in p),
            key=lambda p: -(corpus / p).stat().st_mtime_ns,
        )
        # Both tests are tests; the newer (by the ages set above) goes first.
        assert order == [*sources, "tests/test_m00.py", "src/m00_test.py", "docs/guide.md"]
        late = engine.search_batch([_req(q, m) for m in MODES for q in QUERIES])
        assert not any(a.partial for a in late)
        assert all(a.embedded_share == 1.0 for a in late)
        staged = _answers(late)
        keyword_early = _answers(early)
    reference = _reference(corpus, tmp_path)
    assert staged == reference
    # A keyword answer is whole from the first second.
    for q in QUERIES:
        assert keyword_early["keyword", q] == reference["keyword", q]


def test_a_killed_dense_pass_is_completed_by_the_next_command(corpus: Path, tmp_path: Path) -> None:
    # `cidx watch` stages its first index and dies (SIGKILL) right after its
    # dense pass wrote the first batch's vectors, before the manifest says so.
    proc = subprocess.run(
        [*cidx_cmd(), "watch"],
        cwd=corpus,
        env={**os.environ, "CIDX_FAILPOINT": "after_set_dense"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _pending(corpus), "the kill left no dense work to resume"
    found = run_cidx(["query", "--json", "-n", "5", QUERIES[0]], corpus)
    answer = found.json()
    assert answer["partial"] is False and answer["embedded_share"] == 1.0
    assert "Partial answer" not in found.stderr
    assert _pending(corpus) == set()
    with opened(corpus) as engine:
        points = list(engine.store.points(engine.collection))
        assert points and all(p.dense for p in points)
        staged = _answers(engine.search_batch([_req(q, m) for m in MODES for q in QUERIES]))
    assert staged == _reference(corpus, tmp_path)


@pytest.fixture
def held_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every batch of the dense pass fails after writing (a failing store): the
    pass stays pending, so queries are answered partial for as long as needed."""
    monkeypatch.setenv("CIDX_FAILPOINT_RAISE", "after_set_dense:1000000")


@pytest.fixture
def watcher(corpus: Path, held_back: None) -> Iterator[Watcher]:
    w = Watcher(corpus)
    yield w
    if w.proc.poll() is None:
        w.stop(signal.SIGKILL)


def test_a_query_during_the_dense_pass_says_partial_in_json_and_in_words(
    watcher: Watcher, corpus: Path
) -> None:
    found = run_cidx(["query", "--json", "-n", "3", QUERIES[0]], corpus)
    answer = found.json()
    assert answer["partial"] is True and answer["embedded_share"] == 0.0
    assert answer["results"]
    assert "Partial answer: 0% of the index has semantic vectors" in found.stderr
    batch = run_cidx(["query", "--batch", "-"], corpus, input=f"{QUERIES[1]}\n")
    assert batch.json()["partial"] is True
    human = run_cidx(["query", "-n", "1", QUERIES[0]], corpus)
    assert human.stderr.count("Partial answer") == 1
    status = run_cidx(["status", "--json"], corpus).json()
    assert status["chunks_pending"] == status["chunks"] > 0
    assert watcher.stop() == 0


def test_the_daemon_stages_a_fresh_project_it_is_asked_about(corpus: Path, held_back: None) -> None:
    run_cidx(["start", "--json"], corpus)
    try:
        found = run_cidx(["query", "--json", "-n", "3", QUERIES[0]], corpus)
        answer = found.json()
        assert answer["partial"] is True and answer["results"]
        until(lambda: bool(_pending_via_status(corpus)), "the daemon's status shows pending chunks")
    finally:
        run_cidx(["stop"], corpus, check=False)


def _pending_via_status(root: Path) -> int:
    return int(run_cidx(["status", "--json"], root).json()["chunks_pending"])


def test_hybrid_ranking_places_chunks_without_a_dense_vector_by_what_is_known() -> None:
    from cidx.search import DEFAULT_RANKING, fuse, name_match
    from cidx.sparse import SparseEncoder
    from cidx.store import Hit

    encoder = SparseEncoder()
    query = encoder.query("parse token")
    embedded = [Hit("a", 0.9, {"symbol": "other"}), Hit("b", 0.5, {"symbol": "x"})]
    # "c" has no dense vector yet: only the BM25 side found it (with its payload).
    bm25 = [Hit("c", 8.0, {"symbol": "parse_token"}), Hit("a", 4.0, {}), Hit("b", 2.0, {})]
    ranked = fuse(embedded, bm25, query, encoder, DEFAULT_RANKING)
    assert [s.hit.id for s in ranked] == ["c", "a", "b"]
    r = DEFAULT_RANKING
    name = name_match(frozenset(query.indices), encoder.name_terms("parse_token"))
    # The median similarity of the embedded candidates stands in for its own.
    assert ranked[0].score == pytest.approx(r.dense * 0.9 + r.keyword * 1.0 + r.name * name)
    # No candidate embedded yet: its keyword signal stands in.
    alone = fuse([], bm25[:1], query, encoder, DEFAULT_RANKING)
    assert alone[0].score == pytest.approx(r.dense * 1.0 + r.keyword * 1.0 + r.name * name)


def test_a_sync_between_a_batch_plan_and_its_write_keeps_the_new_file_pending(
    corpus: Path, tmp_path: Path
) -> None:
    """The worker embeds without the write lock: a file synced meanwhile is
    not given the vectors of its old text, and keeps its mark."""
    with opened(corpus) as engine:
        engine.indexer().sync(staged=True)
        dense = engine.indexer().dense_pass()
        batch = dense.plan(chunks=1_000_000)
        assert batch is not None and len(batch.files) == len(_files())
        write_files(corpus, {"src/m01.py": generated_module(501, functions=3)})
        engine.indexer().sync(staged=True, paths=["src/m01.py"])
        dense.embed(batch)
        step = dense.apply(batch)
        assert step.files == len(_files()) - 1
        assert _pending(corpus) == {"src/m01.py"}
        while dense.step() is not None:
            pass
        assert _pending(corpus) == set()
        points = list(engine.store.points(engine.collection))
        assert points and all(p.dense for p in points)
    assert full_snapshot(corpus) == clean_rebuild(corpus, tmp_path)
