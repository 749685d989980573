"""`cidx watch`: keep the index in step with the files as they change."""

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
    app.command("watch")(watch)


def watch(
    rescan_interval: float = typer.Option(
        live.DEFAULT_RESCAN_SECONDS,
        "--rescan-interval",
        metavar="SECONDS",
        help="Rescan everything this often (at least 1 s), to recover events the kernel dropped.",
    ),
    poll: bool = flag(
        "--poll", help="Poll the disk instead of using file events (slower, always works)."
    ),
    log_format: str = LOG_FORMAT,
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
) -> None:
    """Follow file changes and keep the index live until Ctrl-C.

    Other cidx commands on this project are answered by this process meanwhile.
    """
    ok = live.run_owner(
        kind="watch",
        rescan_interval=seconds(rescan_interval, "--rescan-interval", least=1.0),
        log_format=log_format_value(log_format),
        wait=wait_policy(no_wait, wait_timeout),
        force_polling=True if poll else None,
    )
    if not ok:
        raise typer.Exit(int(ExitCode.ERROR))
