"""`cidx mcp`: serve the project's index to AI coding agents over MCP (stdio)."""

from __future__ import annotations

from pathlib import Path

import typer

from cidx.cli.params import NO_WAIT, WAIT_TIMEOUT, seconds, wait_policy


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)


def mcp(
    project: Path | None = typer.Option(
        None,
        "--project",
        metavar="FOLDER",
        help="The project to serve: its root is found from this folder as for every "
        "command (default: the working directory).",
    ),
    allow_reindex: bool = typer.Option(
        False,
        "--allow-reindex",
        metavar="",
        help="Also offer the `reindex` tool, which updates the index on request. Off by "
        "default: only the read-only tools `search` and `status` are offered.",
    ),
    idle_release: float = typer.Option(
        60.0,
        "--idle-release",
        metavar="SECONDS",
        help="When this server owns the index, let go of it after this long without a "
        "tool call, so a `cidx watch` started meanwhile can take over.",
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
) -> None:
    """Serve this project's index to AI coding agents (MCP over stdin/stdout).

    Tools: `search` (query, limit, paths, language, mode) and `status`, both
    read-only; `reindex` only with --allow-reindex. When a `cidx watch`, `serve`
    or other owner runs, tool calls go through it; otherwise this process owns
    the index (other cidx commands reach it), syncs changed files before each
    search, and releases it after --idle-release seconds without a call.
    Stdout carries only MCP messages; logs go to stderr and .code-indexer/logs/.

    Register it with an agent, e.g. `claude mcp add cidx -- cidx mcp`.
    """
    # Imported here: the MCP SDK takes a while to import, and no other command needs it.
    from cidx import mcp_server

    mcp_server.serve(
        project,
        allow_reindex=allow_reindex,
        idle_release=seconds(idle_release, "--idle-release", allow_zero=True),
        wait_timeout=wait_policy(no_wait, wait_timeout).timeout,
    )
