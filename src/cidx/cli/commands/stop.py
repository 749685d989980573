"""`cidx stop`: stop the per-user daemon, flushing and releasing every index it holds."""

from __future__ import annotations

import typer

from cidx import daemon
from cidx.cli.daemon_render import render_stop
from cidx.cli.params import JSON


def register(app: typer.Typer) -> None:
    app.command("stop")(stop)


def stop(as_json: bool = JSON) -> None:
    """Stop the cidx daemon. Watched projects are remembered for the next `cidx start`."""
    render_stop(daemon.stop(), as_json)
