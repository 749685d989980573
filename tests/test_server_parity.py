"""The public benchmark's queries rank the same on both backends.

The public retrieval benchmark's corpora (requests and jinja2, built from
their wheels by ../shared/eval/build_corpus.py through benchmarks/_corpora.py)
are indexed once in the embedded store and once on the server store
(qdrant-client's local mode behind a `local:` URL), and every benchmark query
is asked of both through `cidx query --batch`: the same top 10, with the same
scores. The server's copy reuses the embedding cache of the first (the state
database travels with the project folder), so the test embeds each corpus once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cidx

pytestmark = pytest.mark.slow

LIMIT = 10
# Scores are equal when they agree to this (float32 sums in another order).
TOLERANCE = 1e-4


def _corpus(name: str) -> Path:
    from benchmarks import _corpora

    try:
        return _corpora.ensure([name])[0]
    except (subprocess.CalledProcessError, OSError) as exc:
        # Building needs the wheel from PyPI once (then benchmarks/.cache/ keeps it).
        pytest.skip(f"cannot build the {name} benchmark corpus (no package registry?): {exc}")


def _answers(root: Path, queries: list[str]) -> list[list[tuple[str, int, float]]]:
    out = run_cidx(
        ["query", "--batch", "-", "--json", "--limit", str(LIMIT)], root, input="\n".join(queries)
    )
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["query"] for a in answers] == queries
    return [[(r["path"], r["start_line"], r["score"]) for r in a["results"]] for a in answers]


def _same_top(got: list[tuple[str, int, float]], want: list[tuple[str, int, float]]) -> None:
    """The same scores rank by rank, and the same chunks at each score (chunks
    tied on a score may come in any order; which tied ones make the cut is
    the engine's choice)."""
    assert len(got) == len(want)
    assert [s for *_, s in got] == pytest.approx([s for *_, s in want], abs=TOLERANCE)

    def levels(ranked: list[tuple[str, int, float]]) -> list[set[tuple[str, int]]]:
        out: list[set[tuple[str, int]]] = []
        last: float | None = None
        for path, line, score in ranked:
            if last is None or abs(score - last) > TOLERANCE:
                out.append(set())
            out[-1].add((path, line))
            last = score
        return out

    assert levels(got)[:-1] == levels(want)[:-1]


@pytest.mark.parametrize("name", ["requests", "jinja2"])
def test_benchmark_queries_rank_the_same_on_both_backends(name: str, tmp_path: Path) -> None:
    bench = _corpus(name)
    queries = [q["query"] for q in json.loads((bench / "queries.json").read_text())]
    assert len(queries) > 100

    embedded = tmp_path / "embedded"
    shutil.copytree(bench / "corpus", embedded)
    run_cidx(["init"], embedded)
    run_cidx(["index"], embedded)

    on_server = tmp_path / "on-server"
    shutil.copytree(embedded, on_server)
    url = f"local:{tmp_path / 'qdrant'}"
    run_cidx(["init", "--force", "--storage", "server", "--qdrant-url", url], on_server)
    run_cidx(["index"], on_server)
    status = run_cidx(["status", "--json"], on_server).json()
    assert status["storage_mode"] == "server"
    assert status["points"] == run_cidx(["status", "--json"], embedded).json()["points"]

    want, got = _answers(embedded, queries), _answers(on_server, queries)
    assert sum(len(a) for a in want) == LIMIT * len(queries)
    for query, mine, theirs in zip(queries, got, want, strict=True):
        try:
            _same_top(mine, theirs)
        except AssertionError as exc:
            raise AssertionError(f"{query!r}: server {mine} vs embedded {theirs}") from exc
