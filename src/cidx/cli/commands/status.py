"""`cidx status`: what is indexed, where, and how fresh it is."""

from __future__ import annotations

import typer

from cidx import service
from cidx.cli import render
from cidx.cli.params import JSON, NO_WAIT


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(no_wait: bool = NO_WAIT, as_json: bool = JSON) -> None:
    """Show the index's location, model, counts, size and pending changes."""
    report = service.with_index(
        lambda handle: handle.status(), kind="status", wait=not no_wait, on_wait=render.waiting
    )
    render.render_status(report, as_json)
