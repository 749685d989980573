"""`cidx watch`: keep the index in step with the files as they change."""

from __future__ import annotations

import typer

from cidx import live
from cidx.cli import render
from cidx.cli.params import LOG_FORMAT, NO_WAIT, log_format_value
from cidx.errors import ExitCode


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)


def watch(
    rescan_interval: float = typer.Option(
        live.DEFAULT_RESCAN_SECONDS,
        "--rescan-interval",
        help="Rescan everything this often (seconds), to recover events the kernel dropped.",
        min=1.0,
    ),
    poll: bool = typer.Option(
        False, "--poll", help="Poll the disk instead of using file events (slower, always works)."
    ),
    log_format: str = LOG_FORMAT,
    no_wait: bool = NO_WAIT,
) -> None:
    """Follow file changes and keep the index live until Ctrl-C.

    Other cidx commands on this project are answered by this process meanwhile.
    """
    ok = live.run_owner(
        kind="watch",
        rescan_interval=rescan_interval,
        log_format=log_format_value(log_format),
        wait=not no_wait,
        on_wait=render.waiting,
        force_polling=True if poll else None,
    )
    if not ok:
        raise typer.Exit(int(ExitCode.ERROR))
