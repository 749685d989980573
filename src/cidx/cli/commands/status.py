"""`cidx status`: what is indexed, where, and how fresh it is."""

from __future__ import annotations

import typer

from cidx import service
from cidx.cli import render
from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, wait_policy


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    no_wait: bool = NO_WAIT, wait_timeout: float = WAIT_TIMEOUT, as_json: bool = JSON
) -> None:
    """Show the index's location, model, counts, size and pending changes.

    Never creates an index: in a project without one it says so (exit code 10).
    """
    report = service.with_index(
        lambda handle: handle.status(), kind="status", wait=wait_policy(no_wait, wait_timeout)
    )
    render.render_status(report, as_json)
