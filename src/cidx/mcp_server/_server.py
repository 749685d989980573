"""The SDK wiring: the tools `cidx mcp` offers, their schemas, and its stdio loop.

Kept thin on purpose: each tool validates its arguments through its typed
signature (the SDK derives the JSON Schema from it), calls one `McpIndex`
method, and returns the typed result with a text rendering. A `CidxError`
becomes a tool error result carrying its message; arguments that do not fit
the schema, or that the tool does not take, become one naming the field.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import anyio.from_thread
from mcp.server import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, StringConstraints, ValidationError

from cidx import __version__
from cidx.errors import CidxError, InvalidQuery
from cidx.formatting import count
from cidx.mcp_server._index import DEFAULT_IDLE_RELEASE_SECONDS, McpIndex, project_for
from cidx.mcp_server._results import (
    ReindexOutput,
    SearchOutput,
    StatusOutput,
    reindex_output,
    reindex_text,
    search_output,
    search_text,
    status_output,
    status_text,
)
from cidx.messages import Progress, QueryMode
from cidx.query import DEFAULT_LIMIT, MAX_LIMIT, query_request

log = logging.getLogger("cidx.mcp")

PROGRESS_INTERVAL = 0.5  # seconds between progress notifications

# The `search` tool's names for the fields of a query.
_FIELDS = {"text": "query", "languages": "language"}

READ_ONLY = ToolAnnotations(
    read_only_hint=True,
    destructive_hint=False,
    idempotent_hint=True,
    open_world_hint=False,
)
# Reindex writes the index, never the files, and repeating it changes nothing more.
REINDEX = ToolAnnotations(
    read_only_hint=False,
    destructive_hint=False,
    idempotent_hint=True,
    open_world_hint=False,
)


class _Server(MCPServer[Any]):
    """MCPServer, with argument errors an agent can act on."""

    def __init__(self, *, allow_reindex: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_reindex = allow_reindex

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        if name == "reindex" and not self.allow_reindex:
            raise ToolError(
                "The reindex tool is off: the server offers read-only tools unless it is "
                "started with `cidx mcp --allow-reindex`. `search` brings the index up to "
                "date by itself."
            )
        known = {tool.name: tool for tool in await self.list_tools()}
        tool = known.get(name)
        if tool is not None:
            params = set(tool.input_schema.get("properties", {}))
            unknown = sorted(set(arguments) - params)
            if unknown:
                raise ToolError(
                    f"{name} takes no argument {', '.join(map(repr, unknown))}. "
                    f"Its arguments are: {', '.join(sorted(params)) or 'none'}."
                )
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError) and not isinstance(exc, UnexpectedToolError):
                raise ToolError(invalid_arguments(name, cause)) from cause
            raise


def invalid_arguments(tool: str, error: ValidationError) -> str:
    """One sentence per bad field: `limit: Input should be ... (got 'ten')`."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "arguments"
        got = "" if item["type"] == "missing" else f" (got {_short(item.get('input'))})"
        problems.append(f"{field}: {item['msg']}{got}")
    return f"Invalid arguments for {tool}: {'; '.join(problems)}."


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """A CidxError is the caller's to read (a tool error), not a crash."""
    try:
        yield
    except InvalidQuery as exc:
        raise ToolError(exc.relabel(_FIELDS).message) from exc
    except CidxError as exc:
        raise ToolError(exc.message) from exc


def _progress(ctx: Context[Any, Any] | None) -> Callable[[Progress], None] | None:
    """Sync progress as MCP progress notifications (sent only if the client asked).

    Tools run on a worker thread; the notification is sent from the event
    loop. The first index of a large project takes minutes, and progress
    tells the client the call is alive.
    """
    if ctx is None:
        return None
    sent = -1.0
    sent_at = 0.0

    def relay(p: Progress) -> None:
        nonlocal sent, sent_at
        now = time.monotonic()
        # MCP requires progress to increase; bytes only grow within a sync.
        if p.bytes_done <= sent or (p.phase == "index" and now - sent_at < PROGRESS_INTERVAL):
            return
        sent, sent_at = float(p.bytes_done), now
        if p.phase == "scan":
            message = "looking for changed files"
        else:
            message = (
                f"indexed {p.files_done:,} of {p.files_total:,} changed files "
                f"({p.chunks_embedded:,} chunks embedded)"
            )
        with contextlib.suppress(Exception):  # a client gone away is not the sync's problem
            anyio.from_thread.run(
                ctx.report_progress, float(p.bytes_done), float(p.bytes_total) or None, message
            )

    return relay


def _result(text: str, structured: SearchOutput | StatusOutput | ReindexOutput) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=structured.model_dump(mode="json"),
    )


def build_server(index: McpIndex, *, allow_reindex: bool = False) -> MCPServer[Any]:
    """The MCP server for one project's index (`reindex` only with `allow_reindex`)."""
    server = _Server(
        allow_reindex=allow_reindex,
        name="cidx",
        title="cidx code search",
        version=__version__,
        instructions=(
            f"Semantic and keyword search over the code and documents of {index.paths.root}. "
            "Use `search` to find where something is implemented or discussed, by meaning "
            "or by identifier; results give the file, line range, enclosing symbol and the "
            "code. The index is kept up to date automatically."
        ),
        log_level="WARNING",
    )

    @server.tool(
        name="search",
        title="Search the code",
        annotations=READ_ONLY,
        structured_output=True,
    )
    def search(
        query: Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1),
            Field(description="What to look for: words, a question, or identifiers."),
        ],
        limit: Annotated[
            int, Field(ge=1, le=MAX_LIMIT, description="How many results to return.")
        ] = DEFAULT_LIMIT,
        paths: Annotated[
            Sequence[str],
            Field(
                description="Only files matching any of these globs, gitignore syntax "
                "(e.g. `src/`, `*.py`, `src/**/test_*.py`)."
            ),
        ] = (),
        language: Annotated[
            str | None,
            Field(description="Only this language, e.g. python, typescript, go, markdown."),
        ] = None,
        mode: Annotated[
            QueryMode,
            Field(
                description="hybrid: meaning and keywords fused (best in general); semantic: "
                "meaning only; keyword: BM25 over code-aware tokens (exact identifiers)."
            ),
        ] = "hybrid",
        ctx: Context[Any, Any] | None = None,
    ) -> Annotated[CallToolResult, SearchOutput]:
        """Search the project's code and docs; returns the best-matching chunks, best first.

        Each result has the file path, line range, enclosing symbol, a score and
        the code itself. Files changed since the last search are indexed first.
        """
        with _tool_errors():
            request = query_request(
                query,
                limit=limit,
                mode=mode,
                paths=paths,
                languages=(language,) if language else (),
            )
            outcome = index.search(request, _progress(ctx))
        out = search_output(outcome.answers[0], mode, outcome.sync)
        log.info("search %r: %s", query, count(len(out.results), "result"))
        return _result(search_text(out), out)

    @server.tool(
        name="status",
        title="Index status",
        annotations=READ_ONLY,
        structured_output=True,
    )
    def status() -> Annotated[CallToolResult, StatusOutput]:
        """How much is indexed, how fresh it is, what changed since, and who owns the index."""
        with _tool_errors():
            report = index.status()
        out = status_output(report)
        return _result(status_text(out), out)

    if allow_reindex:

        @server.tool(
            name="reindex",
            title="Update the index",
            annotations=REINDEX,
            structured_output=True,
        )
        def reindex(
            paths: Annotated[
                list[str] | None,
                Field(
                    description="Files or folders to sync, relative to the project root; "
                    "leave out to sync the whole project."
                ),
            ] = None,
            ctx: Context[Any, Any] | None = None,
        ) -> Annotated[CallToolResult, ReindexOutput]:
            """Bring the index up to date now: the given paths, or every changed file.

            Searching does this by itself; use it after large changes (a branch switch)
            to pay the cost up front.
            """
            with _tool_errors():
                outcome = index.reindex(paths, _progress(ctx))
            out = reindex_output(outcome.summary, outcome.scope, list(outcome.paths), outcome.note)
            return _result(reindex_text(out, outcome.summary), out)

    return server


def serve(
    project: Path | None = None,
    *,
    allow_reindex: bool = False,
    idle_release: float = DEFAULT_IDLE_RELEASE_SECONDS,
    wait_timeout: float | None = None,
) -> None:
    """Serve the project's index over MCP on stdin/stdout until the client hangs up."""
    from cidx.logs import setup_logging

    paths = project_for(project)
    index = McpIndex(paths, idle_release=idle_release, wait_timeout=wait_timeout)
    try:
        setup_logging(paths)
        server = build_server(index, allow_reindex=allow_reindex)
        log.info(
            "cidx mcp: serving %s on stdio%s",
            paths.root,
            " (reindex allowed)" if allow_reindex else "",
        )
        with _exit_on_signals(index):
            server.run("stdio")
    finally:
        index.close()
        log.info("cidx mcp: stopped")


@contextlib.contextmanager
def _exit_on_signals(index: McpIndex) -> Iterator[None]:
    """SIGTERM or SIGINT: give up ownership cleanly, then exit at once.

    A client normally stops the server by closing stdin, which ends the stdio
    loop. A signal cannot end it: the SDK reads stdin on a worker thread that
    nothing interrupts. The release runs on its own thread, so a tool call in
    flight (which needs the event loop to report progress) can finish first.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int) -> None:
        log.info("cidx mcp: received %s, stopping", signal.Signals(signum).name)
        try:
            index.close()
        finally:
            logging.shutdown()
            os._exit(128 + signum)

    def handler(signum: int, _frame: object) -> None:
        threading.Thread(target=leave, args=(signum,), name="cidx-mcp-exit", daemon=True).start()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
