"""`cidx serve`: own the index, keep it live, and answer HTTP (health, metrics, search)."""

from __future__ import annotations

import typer

from cidx import served
from cidx.cli.params import (
    LOG_FORMAT,
    NO_WAIT,
    WAIT_TIMEOUT,
    log_format_value,
    seconds,
    wait_policy,
)
from cidx.errors import ExitCode, UsageError


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    http: str | None = typer.Option(
        None,
        "--http",
        metavar="HOST:PORT",
        help="Answer HTTP here: /healthz, /metrics, /search (e.g. 127.0.0.1:8765, :8765, "
        "[::1]:8765; port 0 picks a free one). The URL and token are written to "
        ".code-indexer/serve.json.",
    ),
    interval: float | None = typer.Option(
        None,
        "--interval",
        metavar="SECONDS",
        help="Rescan every this many seconds (at least 0.1) instead of following file events.",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        metavar="TOKEN",
        help="The token every HTTP request must send as `Authorization: Bearer TOKEN`; needed "
        "to listen beyond loopback. Without it, one is made for each run and written to "
        ".code-indexer/serve.json. Prefer $CIDX_HTTP_TOKEN: options show in `ps`.",
    ),
    log_format: str = LOG_FORMAT,
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
) -> None:
    """Keep the index live until Ctrl-C and, with --http, serve it over HTTP.

    Other cidx commands on this project are answered by this process meanwhile.
    When the cidx daemon runs (`cidx start`), it keeps the project live instead
    (without --interval), and this process answers HTTP through it.
    """
    fmt = log_format_value(log_format)
    if http is None and token is not None:
        raise UsageError("--token only applies with --http HOST:PORT.")
    from cidx import http_api  # only this command needs the HTTP layer

    settings = http_api.http_settings(http, token) if http is not None else None
    ok = served.serve(
        interval=None if interval is None else seconds(interval, "--interval", least=0.1),
        log_format=fmt,
        wait=wait_policy(no_wait, wait_timeout),
        on_ready=http_api.starter(settings) if settings is not None else None,
    )
    if not ok:
        raise typer.Exit(int(ExitCode.ERROR))
