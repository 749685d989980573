"""`cidx watch`: keep the index in step with the files as they change."""

from __future__ import annotations

import typer

from cidx import daemon, live
from cidx.cli.daemon_render import render_watch
from cidx.cli.params import (
    JSON,
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
    stop: bool = flag("--stop", help="Have the cidx daemon stop keeping this project live."),
    foreground: bool = flag(
        "--foreground", help="Watch in this process even when the cidx daemon runs."
    ),
    as_json: bool = JSON,
) -> None:
    """Follow file changes and keep the index live until Ctrl-C.

    Other cidx commands on this project are answered by this process meanwhile.
    When the cidx daemon runs (`cidx start`), it keeps the project live
    instead, and this returns at once; `cidx watch --stop` ends that.
    """
    if stop:
        render_watch(daemon.stop_watching(), as_json)
        return
    if not foreground and (delegated := daemon.keep_live()) is not None:
        render_watch(delegated, as_json)
        return
    ok = live.run_owner(
        kind="watch",
        rescan_interval=seconds(rescan_interval, "--rescan-interval", least=1.0),
        log_format=log_format_value(log_format),
        wait=wait_policy(no_wait, wait_timeout),
        force_polling=True if poll else None,
    )
    if not ok:
        raise typer.Exit(int(ExitCode.ERROR))
