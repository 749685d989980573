"""`cidx start`: start the per-user daemon (or find it running), optionally watching projects."""

from __future__ import annotations

from pathlib import Path

import typer

from cidx import daemon
from cidx.cli.daemon_render import render_start
from cidx.cli.params import JSON, flag, seconds


def register(app: typer.Typer) -> None:
    app.command("start")(start)


def start(
    watch: list[Path] = typer.Option(
        None,
        "--watch",
        metavar="PATH",
        help="Also keep this project live (a folder in it). Repeatable; remembered.",
    ),
    idle_release: float = typer.Option(
        None,
        "--idle-release",
        metavar="SECONDS",
        help="Release a project no command used for this long (default 1800; not for "
        "watched ones). Applies when the daemon starts.",
    ),
    cpu_cap: float = typer.Option(
        None,
        "--cpu-cap",
        metavar="PCT",
        help="Keep background indexing under this share of the machine's CPU, on average "
        "(1-100; default 50, or cpu_cap_percent in the user's daemon.json; 100: no cap). "
        "Queries are never slowed by it. Applies when the daemon starts.",
    ),
    foreground: bool = flag(
        "--foreground",
        help="Run the daemon in this process until SIGTERM (for systemd, launchd).",
    ),
    as_json: bool = JSON,
) -> None:
    """Start the cidx daemon: one process, one model, for all your projects.

    Every cidx command in a project nobody owns is then answered by it.
    Nothing happens when it runs already (but --watch is passed on).
    """
    idle = None if idle_release is None else seconds(idle_release, "--idle-release", least=1.0)
    if foreground:
        raise typer.Exit(daemon.run_here(list(watch or []), idle_release=idle, cpu_cap=cpu_cap))
    render_start(daemon.start(list(watch or []), idle_release=idle, cpu_cap=cpu_cap), as_json)
