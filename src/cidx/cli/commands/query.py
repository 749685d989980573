"""`cidx query`: search the project (indexing whatever changed first)."""

from __future__ import annotations

from collections.abc import Iterable

import typer

from cidx import service
from cidx.cli import render
from cidx.cli.params import JSON, NO_WAIT
from cidx.cli.progress import progress_bar
from cidx.errors import UsageError
from cidx.messages import QUERY_MODES, QueryRequest, SearchOutcome, SearchRequest


def register(app: typer.Typer) -> None:
    app.command("query")(query)


def query(
    text: str = typer.Argument(None, help="What to look for, in words or identifiers."),
    limit: int = typer.Option(10, "--limit", "-n", help="How many results to show."),
    mode: str = typer.Option(
        "hybrid",
        "--mode",
        help="hybrid (dense + BM25 + name match; the best measured), semantic (dense only) "
        "or keyword (BM25 only).",
    ),
    path: list[str] = typer.Option(
        None, "--path", help="Only files matching this glob (gitignore syntax); repeatable."
    ),
    lang: list[str] = typer.Option(
        None, "--lang", help="Only this language (e.g. python, ts); repeatable."
    ),
    min_score: float = typer.Option(
        None,
        "--min-score",
        help="Drop results scoring below this. Scores: hybrid 0..1, comparable across "
        "queries; semantic a cosine; keyword raw BM25.",
    ),
    batch: typer.FileText = typer.Option(
        None,
        "--batch",
        help="Run every line of FILE (- for stdin) as a query; prints JSON Lines.",
        metavar="FILE",
        encoding="utf-8",
    ),
    no_sync: bool = typer.Option(
        False, "--no-sync", help="Search the index as it is, without updating it first."
    ),
    no_wait: bool = NO_WAIT,
    as_json: bool = JSON,
) -> None:
    """Search the project. The first run creates and builds the index."""
    if mode not in QUERY_MODES:
        raise UsageError(f"Unknown --mode {mode!r}. Use one of: {', '.join(QUERY_MODES)}.")
    if batch is not None:
        texts = _read_batch(batch)
    elif text is None or not text.strip():
        raise UsageError('Give the text to search for, e.g. `cidx query "retry failed uploads"`.')
    else:
        texts = [text]
    requests = [
        QueryRequest(
            text=t,
            limit=limit,
            mode=mode,  # narrowed to QueryMode by the check above
            paths=tuple(path or ()),
            languages=tuple(lang or ()),
            min_score=min_score,
        )
        for t in texts
    ]

    def run(handle: service.IndexHandle) -> SearchOutcome:
        with progress_bar() as progress:
            return handle.search(SearchRequest(requests, sync=not no_sync), progress)

    outcome = service.with_index(run, kind="query", wait=not no_wait, on_wait=render.waiting)
    render.render_sync_note(outcome.sync)
    render.render_warnings(outcome.warnings)
    if batch is not None:
        render.render_batch(outcome.answers)
    else:
        render.render_results(outcome.answers[0], as_json)


def _read_batch(lines: Iterable[str]) -> list[str]:
    try:
        texts = [line.strip() for line in lines if line.strip()]
    except UnicodeDecodeError:
        raise UsageError("The batch file is not UTF-8 text.") from None
    if not texts:
        raise UsageError("The batch file holds no queries (one per line).")
    return texts
