"""`cidx pause` and `cidx resume`: keep the index still while it is copied."""

from __future__ import annotations

import os
import sys

import typer

from cidx import pause as pausing
from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, seconds, wait_policy
from cidx.cli.render_copy import render_pause, render_resume
from cidx.service import WaitPolicy


def register(app: typer.Typer) -> None:
    app.command("pause")(pause)
    app.command("resume")(resume)


def pause(
    timeout: float = typer.Option(
        pausing.DEFAULT_PAUSE_SECONDS,
        "--timeout",
        metavar="SECONDS",
        help="End the pause by itself after this long, if `cidx resume` has not.",
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
    hold: bool = typer.Option(False, "--hold", hidden=True),
    by_pid: int = typer.Option(0, "--by-pid", hidden=True),
) -> None:
    """Stop writing to the index, flush it, and hold writes until `cidx resume`
    (or --timeout): its files can then be copied or snapshotted as they are.

    Queries are still answered; a watcher's changes wait and are applied on
    resume. With no cidx process using the index, a small background process
    holds it for the length of the pause.
    """
    wait = wait_policy(no_wait, wait_timeout)
    length = seconds(timeout, "--timeout")
    if hold:
        _hold(length, by_pid, wait)
        return
    state = pausing.pause(seconds=length, wait=wait)
    render_pause(state, as_json)


def _hold(length: float, by_pid: int, wait: WaitPolicy) -> None:
    """The detached holder `cidx pause` starts: tells it on stdout when it
    holds the index (one JSON line), then has nothing more to say there."""

    def ready(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)

    pausing.hold(seconds=length, by_pid=by_pid or os.getppid(), wait=wait, ready=ready)


def resume(as_json: bool = JSON) -> None:
    """End the pause of the index (`cidx pause`): writes and syncs go on."""
    render_resume(pausing.resume(), as_json)
