"""`cidx force-flush`: make the project's index durable on disk now."""

from __future__ import annotations

import typer

from cidx import service
from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, wait_policy
from cidx.cli.render_copy import render_flush
from cidx.errors import ExitCode
from cidx.messages import FlushRequest


def register(app: typer.Typer) -> None:
    app.command("force-flush")(force_flush)


def force_flush(
    collection: str | None = typer.Option(
        None,
        "--collection",
        metavar="NAME",
        help="Flush only this collection (a name `cidx status --json` lists).",
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Write every collection of the project (or one) durably to disk: store
    segments flushed, write-ahead logs checkpointed, the state database's too.

    Through the process that owns the index when one runs. Exits 6 when a
    collection could not be flushed.
    """
    request = FlushRequest(collection)
    report = service.with_index(
        lambda handle: handle.flush(request),
        kind="force-flush",
        wait=wait_policy(no_wait, wait_timeout),
    )
    render_flush(report, as_json)
    if not report.ok:
        raise typer.Exit(int(ExitCode.STORE))
