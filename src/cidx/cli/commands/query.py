"""`cidx query`: search the project (indexing whatever changed first)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import typer

from cidx import service
from cidx.cli import render
from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, flag, wait_policy
from cidx.cli.progress import progress_bar
from cidx.errors import InvalidQuery, UsageError
from cidx.messages import SearchOutcome, SearchRequest
from cidx.project import project_paths
from cidx.query import DEFAULT_LIMIT, query_request, rebase_globs

# The command line's names for the fields of a query.
_OPTIONS = {
    "limit": "--limit",
    "mode": "--mode",
    "paths": "--path",
    "languages": "--lang",
    "min_score": "--min-score",
}


def register(app: typer.Typer) -> None:
    app.command("query")(query)


def query(
    text: str = typer.Argument(
        None, metavar="TEXT", help="What to look for, in words or identifiers."
    ),
    limit: int = typer.Option(
        DEFAULT_LIMIT, "--limit", "-n", metavar="N", help="How many results to show."
    ),
    mode: str = typer.Option(
        "hybrid",
        "--mode",
        metavar="hybrid|semantic|keyword",
        help="hybrid (dense + BM25 + name match; the best measured), semantic (dense only) "
        "or keyword (BM25 only).",
    ),
    path: list[str] = typer.Option(
        None,
        "--path",
        metavar="GLOB",
        help="Only files matching this glob (gitignore syntax), relative to the current "
        "folder; start it with / to anchor it at the project root. Repeatable.",
    ),
    lang: list[str] = typer.Option(
        None,
        "--lang",
        metavar="LANGUAGE",
        help="Only this language: a name or file extension (python, py, ts, golang, rs...). "
        "Repeatable.",
    ),
    min_score: float = typer.Option(
        None,
        "--min-score",
        metavar="SCORE",
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
    no_sync: bool = flag("--no-sync", help="Search the index as it is, without updating it first."),
    collection: str = typer.Option(
        None,
        "--collection",
        metavar="NAME",
        help="Search this collection or alias instead of the project's own.",
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Search the project. The first run creates and builds the index.

    Paths are shown relative to the current folder (JSON: relative to the
    project root, which it names).
    """
    if batch is not None:
        texts = _read_batch(batch)
    elif text is None or not text.strip():
        raise UsageError('Give the text to search for, e.g. `cidx query "retry failed uploads"`.')
    else:
        texts = [text]
    paths = project_paths()
    globs = rebase_globs(path or (), paths.folder_of(Path.cwd()))
    try:
        requests = [
            query_request(
                t, limit=limit, mode=mode, paths=globs, languages=lang or (), min_score=min_score
            )
            for t in texts
        ]
    except InvalidQuery as exc:
        raise exc.relabel(_OPTIONS) from None

    def run(handle: service.IndexHandle) -> SearchOutcome:
        with progress_bar() as progress:
            request = SearchRequest(requests, sync=not no_sync, collection=collection)
            return handle.search(request, progress)

    try:
        outcome = service.with_index(
            run, paths.root, kind="query", wait=wait_policy(no_wait, wait_timeout)
        )
    except InvalidQuery as exc:
        raise exc.relabel(_OPTIONS) from None
    render.render_outcome(outcome, str(paths.root), as_json=as_json, batch=batch is not None)


def _read_batch(lines: Iterable[str]) -> list[str]:
    try:
        texts = [line.strip() for line in lines if line.strip()]
    except UnicodeDecodeError:
        raise UsageError("The batch file is not UTF-8 text.") from None
    if not texts:
        raise UsageError("The batch file holds no queries (one per line).")
    return texts
