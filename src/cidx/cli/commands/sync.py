"""`cidx sync`: keep the index current by rescanning on a timer."""

from __future__ import annotations

import typer

from cidx import live
from cidx.cli.params import (
    LOG_FORMAT,
    NO_WAIT,
    WAIT_TIMEOUT,
    flag,
    log_format_value,
    seconds,
    wait_policy,
)
from cidx.errors import ExitCode


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)


def sync(
    interval: float = typer.Option(
        60.0, "--interval", metavar="SECONDS", help="Seconds between rescans."
    ),
    once: bool = flag("--once", help="Run one cycle and exit."),
    log_format: str = LOG_FORMAT,
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
) -> None:
    """Rescan the project every --interval seconds (for file systems without events)."""
    ok = live.run_owner(
        kind="sync",
        interval=seconds(interval, "--interval", least=0.01),
        once=once,
        log_format=log_format_value(log_format),
        wait=wait_policy(no_wait, wait_timeout),
    )
    if not ok:
        raise typer.Exit(int(ExitCode.ERROR))
