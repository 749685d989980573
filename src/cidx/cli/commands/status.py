"""`cidx status`: what is indexed, where, and how fresh it is."""

from __future__ import annotations

import typer

from cidx import daemon, service
from cidx.cli import render
from cidx.cli.daemon_render import render_daemon
from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, flag, wait_policy


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
    of_daemon: bool = flag(
        "--daemon",
        help="Show the cidx daemon instead: whether it runs, its memory, the projects it holds.",
    ),
) -> None:
    """Show the index's location, model, counts, size and pending changes.

    Never creates an index: in a project without one it says so (exit code 10).
    """
    if of_daemon:
        render_daemon(daemon.status(), as_json)
        return
    report = service.with_index(
        lambda handle: handle.status(), kind="status", wait=wait_policy(no_wait, wait_timeout)
    )
    render.render_status(report, as_json)
