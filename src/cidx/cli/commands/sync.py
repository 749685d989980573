"""`cidx sync`: keep the index current by rescanning on a timer."""

from __future__ import annotations

import typer

from cidx import live
from cidx.cli import render
from cidx.cli.params import LOG_FORMAT, NO_WAIT, log_format_value
from cidx.errors import ExitCode


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)


def sync(
    interval: float = typer.Option(60.0, "--interval", help="Seconds between rescans.", min=0.01),
    once: bool = typer.Option(False, "--once", help="Run one cycle and exit."),
    log_format: str = LOG_FORMAT,
    no_wait: bool = NO_WAIT,
) -> None:
    """Rescan the project every --interval seconds (for file systems without events)."""
    ok = live.run_owner(
        kind="sync",
        interval=interval,
        once=once,
        log_format=log_format_value(log_format),
        wait=not no_wait,
        on_wait=render.waiting,
    )
    if not ok:
        raise typer.Exit(int(ExitCode.ERROR))
