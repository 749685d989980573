"""`cidx index`: bring the project's index up to date (or rebuild it)."""

from __future__ import annotations

from pathlib import Path

import typer

from cidx import service
from cidx.cli import render
from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, flag, wait_policy
from cidx.cli.progress import progress_bar
from cidx.cli.render_hits import path_view
from cidx.errors import UsageError
from cidx.messages import IndexRequest, IndexSummary
from cidx.project import project_paths


def register(app: typer.Typer) -> None:
    app.command("index")(index)


def index(
    paths: list[str] | None = typer.Argument(
        None,
        metavar="[PATH]...",
        help="Files or folders to sync (relative to here); the whole project if none.",
        show_default=False,
    ),
    clear: bool = flag("--clear", help="Rebuild the index from scratch."),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    verbose: bool = flag("--verbose", "-v", help="List every skipped file."),
    as_json: bool = JSON,
) -> None:
    """Index the project: only what changed since the last run, unless --clear."""
    if clear and paths:
        raise UsageError("--clear rebuilds the whole index; give it without paths.")
    project = project_paths()
    request = IndexRequest(clear=clear, paths=tuple(project.relative(paths or (), Path.cwd())))

    def run(handle: service.IndexHandle) -> IndexSummary:
        if handle.owner is not None:
            render.note(f"Handing this over to {handle.owner.describe()}, which owns the index.")
        with progress_bar(not as_json) as progress:
            return handle.index(request, progress)

    summary = service.with_index(
        run, project.root, kind="index", wait=wait_policy(no_wait, wait_timeout)
    )
    if summary.widened and not as_json:
        render.note(
            "An ignore file is among the paths, so everything it can affect was synced too."
        )
    render.render_summary(summary, as_json, verbose=verbose, view=path_view(project.root))
