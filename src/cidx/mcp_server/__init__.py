"""`cidx mcp`: a project's index as tools for AI coding agents, over MCP on stdio.

`McpIndex` (`_index`) decides who answers each tool call — the project's
current owner through its socket, or this process as a temporary owner that
lets go after an idle period. `_results` holds the typed answers and their
text renderings; `_server` declares the tools with the official MCP SDK and
runs the stdio loop.
"""

from cidx.mcp_server._index import (
    DEFAULT_IDLE_RELEASE_SECONDS,
    McpIndex,
    ReindexOutcome,
    project_for,
)
from cidx.mcp_server._server import build_server, serve

__all__ = [
    "DEFAULT_IDLE_RELEASE_SECONDS",
    "McpIndex",
    "ReindexOutcome",
    "build_server",
    "project_for",
    "serve",
]
