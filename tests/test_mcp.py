"""`cidx mcp` as a real subprocess, driven by the official MCP SDK's stdio client.

Real model, real files, real owner processes: the tools are listed and
called the way an agent's client calls them, alone and while a `cidx watch`
owns the project, and the server's stderr goes to a file shown on failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from cidx.embedding import model_id
from cidx.owner.lock import read_owner
from cidx.project import ProjectPaths
from tests.conftest import cidx_cmd, run_cidx

PROJECT: dict[str, str | bytes] = {
    "uploads.py": '''
        """Uploading files to the storage service."""

        import time


        class UploadQueue:
            """Uploads waiting to be sent, and the ones that failed."""

            def __init__(self) -> None:
                self.failed: list[str] = []

            def retry_failed(self, attempts: int = 3) -> int:
                """Send every failed upload again, backing off between tries."""
                sent = 0
                for path in list(self.failed):
                    for attempt in range(attempts):
                        time.sleep(2**attempt)
                        sent += 1
                        break
                return sent
        ''',
    "auth.py": '''
        """Checking who is who."""

        import hashlib


        def check_password(stored_hash: str, password: str) -> bool:
            """Compare a password with the stored salted hash."""
            return hashlib.sha256(password.encode()).hexdigest() == stored_hash
        ''',
    "docs/guide.md": """
        # Guide

        ## Deploying

        Build the image and push it to the registry, then roll out.
        """,
}

NEW_FUNCTION = '''

def rotate_api_token(user_id: int) -> str:
    """Issue a fresh API token for the user and revoke the previous one."""
    return f"token-{user_id}"
'''


class Server:
    """A connected client, and the server's stderr log."""

    def __init__(self, client: Client, log: Path) -> None:
        self.client = client
        self.log = log

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        return await self.client.call_tool(tool, arguments)

    async def ok(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        result = await self.call(tool, arguments or {})
        assert not result.is_error, f"{tool} failed: {text(result)}\n{self.stderr()}"
        assert result.structured_content is not None
        return result.structured_content

    async def error(self, tool: str, arguments: dict[str, Any]) -> str:
        result = await self.call(tool, arguments)
        assert result.is_error, f"{tool}({arguments}) did not fail: {text(result)}"
        return text(result)


def text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


@asynccontextmanager
async def mcp_server(root: Path, *args: str) -> AsyncIterator[Server]:
    log = root.parent / f"mcp-{time.monotonic_ns()}.log"
    errors: list[Exception] = []

    async def on_message(message: object) -> None:
        # Anything on stdout that is not an MCP message arrives here.
        if isinstance(message, Exception):
            errors.append(message)

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cidx", "mcp", "--project", str(root), *args],
        env=dict(os.environ),
        cwd=root.parent,
    )
    with log.open("w", encoding="utf-8") as errlog:
        transport = stdio_client(params, errlog=errlog)
        async with Client(transport, message_handler=on_message, read_timeout_seconds=180) as c:
            server = Server(c, log)
            yield server
    assert not errors, f"non-MCP output on stdout: {errors}\n{server.stderr()}"


def run(test: Callable[[], Any]) -> None:
    anyio.run(test)


async def eventually(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Await `check()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.2)


def owner_of(root: Path) -> tuple[str, int] | tuple[None, None]:
    owner = read_owner(ProjectPaths(root))
    return (owner.kind, owner.pid) if owner is not None else (None, None)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


class Watch:
    """A `cidx watch` process on the project."""

    def __init__(self, root: Path) -> None:
        self.log = root.parent / f"watch-{time.monotonic_ns()}.log"
        with self.log.open("w") as stderr:
            self.proc = subprocess.Popen(
                [*cidx_cmd(), "watch"],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.paths = ProjectPaths(root)

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def owning(self) -> bool:
        assert self.proc.poll() is None, (
            f"cidx watch exited {self.proc.returncode}:\n{self.stderr()}"
        )
        owner = read_owner(self.paths)
        return (
            owner is not None
            and owner.pid == self.proc.pid
            and self.paths.socket_path.exists()
            and "catch-up sync" in self.stderr()
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- tests -------------------------------------------------------------------


def test_tools_are_listed_with_annotations_and_bad_arguments_are_refused(
    project: Callable[[dict[str, str | bytes]], Path],
) -> None:
    root = project(PROJECT)

    async def main() -> None:
        async with mcp_server(root) as server:
            tools = {t.name: t for t in (await server.client.list_tools()).tools}
            assert set(tools) == {"search", "status"}
            for tool in tools.values():
                assert tool.annotations is not None
                assert tool.annotations.read_only_hint is True
                assert tool.annotations.destructive_hint is False
                assert tool.annotations.idempotent_hint is True
                assert tool.annotations.open_world_hint is False
                assert tool.output_schema is not None
            schema = tools["search"].input_schema
            assert schema["required"] == ["query"]
            assert set(schema["properties"]) == {"query", "limit", "paths", "language", "mode"}
            assert schema["properties"]["limit"]["minimum"] == 1
            assert schema["properties"]["limit"]["maximum"] == 1000
            output = tools["search"].output_schema or {}
            hit = output["$defs"]["SearchHit"]
            assert set(hit["properties"]) == {
                "path",
                "start_line",
                "end_line",
                "symbol",
                "kind",
                "language",
                "score",
                "snippet",
            }

            # Malformed arguments: rejected before anything runs, naming the field.
            message = await server.error("search", {"limit": 5})
            assert "query" in message and "required" in message
            message = await server.error("search", {"query": "upload", "limit": "ten"})
            assert "limit" in message and "valid integer" in message and "'ten'" in message
            message = await server.error("search", {"query": "upload", "limit": 0})
            assert "limit" in message and "greater than or equal to 1" in message
            message = await server.error("search", {"query": "upload", "limit": 1001})
            assert "limit" in message and "less than or equal to 1000" in message
            message = await server.error("search", {"query": "upload", "mode": "fuzzy"})
            assert "mode" in message and "'hybrid', 'semantic' or 'keyword'" in message
            message = await server.error("search", {"query": "   "})
            assert "query" in message and "at least 1 character" in message
            message = await server.error("search", {"query": "upload", "max_results": 3})
            assert "max_results" in message and "limit" in message
            message = await server.error("reindex", {})
            assert "--allow-reindex" in message
            # The server survived all of it.
            again = await server.client.list_tools(cache_mode="refresh")
            assert {t.name for t in again.tools} == {"search", "status"}
        assert not ProjectPaths(root).index_dir.joinpath("state.db").exists(), (
            "listing tools and refusing arguments must not build the index"
        )

        async with mcp_server(root, "--allow-reindex") as server:
            tools = {t.name: t for t in (await server.client.list_tools()).tools}
            assert set(tools) == {"search", "status", "reindex"}
            annotations = tools["reindex"].annotations
            assert annotations is not None
            assert annotations.read_only_hint is False
            assert annotations.idempotent_hint is True
            assert annotations.destructive_hint is False
            assert tools["search"].annotations == tools["status"].annotations

    run(main)


def test_search_status_and_edits_without_an_owner(
    project: Callable[[dict[str, str | bytes]], Path],
) -> None:
    root = project(PROJECT)

    async def main() -> None:
        async with mcp_server(root) as server:
            reported: list[tuple[float, float | None, str | None]] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                reported.append((done, total, message))

            first = await server.client.call_tool(
                "search",
                {"query": "retry failed uploads with backoff"},
                progress_callback=on_progress,
            )
            assert not first.is_error, text(first)
            found = first.structured_content
            assert found is not None
            # Building the index reported progress, increasing, up to the total.
            assert reported, server.stderr()
            assert [r[0] for r in reported] == sorted({r[0] for r in reported})
            assert reported[-1][0] == reported[-1][1]
            assert "files" in (reported[-1][2] or "")
            assert found["query"] == "retry failed uploads with backoff"
            assert found["mode"] == "hybrid"
            assert "created the index" in found["index_update"]
            top = found["results"][0]
            assert set(top) == {
                "path",
                "start_line",
                "end_line",
                "symbol",
                "kind",
                "language",
                "score",
                "snippet",
            }
            assert top["path"] == "uploads.py"
            assert top["symbol"] == "UploadQueue.retry_failed"
            assert top["language"] == "python"
            assert top["start_line"] == line_of(root / "uploads.py", "def retry_failed")
            assert top["end_line"] == line_of(root / "uploads.py", "return sent")
            assert "def retry_failed" in top["snippet"]
            result = await server.call("search", {"query": "retry failed uploads with backoff"})
            assert f"uploads.py:{top['start_line']}-{top['end_line']} UploadQueue.retry_failed" in (
                text(result)
            )
            assert "def retry_failed" in text(result)

            # Filters and modes reach the engine.
            docs = await server.ok(
                "search", {"query": "deploy the image", "paths": ["docs/"], "limit": 3}
            )
            assert docs["results"] and {r["path"] for r in docs["results"]} == {"docs/guide.md"}
            assert len(docs["results"]) <= 3
            keyword = await server.ok(
                "search", {"query": "check_password", "mode": "keyword", "language": "python"}
            )
            assert keyword["results"][0]["symbol"] == "check_password"

            status = await server.ok("status")
            assert status["root"] == str(root)
            assert status["files"] == 3
            assert status["chunks"] >= 3 and status["points"] == status["chunks"]
            assert status["pending_changes"]["total"] == 0
            assert status["owner"]["this_process"] is True
            assert status["owner"]["kind"] == "mcp"
            assert status["freshness_seconds"] is not None and status["freshness_seconds"] >= 0
            assert status["model"] == model_id(128)
            assert "Owner: this process" in text(await server.call("status", {}))

            # The user's own commands reach this process through the owner socket.
            other = await anyio.to_thread.run_sync(
                lambda: run_cidx(["status", "--json"], cwd=root).json()
            )
            assert other["owner_kind"] == "mcp"
            assert other["owner_pid"] == status["owner"]["pid"]

            # An edit, with no watcher: status sees it pending, the next search has it.
            with (root / "auth.py").open("a") as fh:
                fh.write(NEW_FUNCTION)
            pending = (await server.ok("status"))["pending_changes"]
            assert pending["modified"] == 1
            found = await server.ok("search", {"query": "issue a fresh API token", "limit": 3})
            assert found["results"][0]["symbol"] == "rotate_api_token"
            assert found["results"][0]["path"] == "auth.py"
            assert "1 modified" in found["index_update"]
            assert "created" not in found["index_update"]
            assert (await server.ok("status"))["pending_changes"]["total"] == 0

            # What the engine refuses comes back as a tool error with its message.
            message = await server.error("search", {"query": "token", "language": "cobol"})
            assert "cobol" in message and "python" in message
            message = await server.error("search", {"query": "token", "paths": ["\\"]})
            assert "glob" in message and "gitignore syntax" in message
            # ...and the server still answers.
            assert (await server.ok("search", {"query": "password hash"}))["results"]

    run(main)


def test_answers_come_through_a_running_watcher(
    project: Callable[[dict[str, str | bytes]], Path],
) -> None:
    root = project(PROJECT)

    async def main() -> None:
        watch = Watch(root)
        try:
            await eventually(watch.owning, "cidx watch to own the index")
            async with mcp_server(root, "--allow-reindex") as server:
                status = await server.ok("status")
                assert status["owner"] == {
                    "this_process": False,
                    "pid": watch.proc.pid,
                    "kind": "watch",
                    "description": f"`cidx watch` (pid {watch.proc.pid})",
                }
                found = await server.ok("search", {"query": "compare a password with its hash"})
                assert found["results"][0]["symbol"] == "check_password"
                assert found["index_update"] is None  # the watcher keeps it live

                with (root / "auth.py").open("a") as fh:
                    fh.write(NEW_FUNCTION)

                async def edit_seen() -> bool:
                    found = await server.ok("search", {"query": "issue a fresh API token"})
                    return found["results"][0]["symbol"] == "rotate_api_token"

                await eventually(edit_seen, "the watcher to index the edit")

                # A sync of some paths goes through the watcher's socket as is.
                synced = await server.ok("reindex", {"paths": ["auth.py", "missing.py"]})
                assert synced["scope"] == "paths" and synced["note"] is None
                assert synced["paths"] == ["auth.py", "missing.py"]
                assert (synced["files_scanned"], synced["files_deleted"]) == (1, 0)
                assert owner_of(root) == ("watch", watch.proc.pid)
        finally:
            watch.stop()
        assert watch.proc.returncode == 0, watch.stderr()

    run(main)


def test_idle_release_lets_a_watcher_take_over(
    project: Callable[[dict[str, str | bytes]], Path],
) -> None:
    root = project(PROJECT)
    paths = ProjectPaths(root)
    idle = 2.0

    async def main() -> None:
        async with mcp_server(root, "--allow-reindex", "--idle-release", f"{idle:g}") as server:
            synced = await server.ok("reindex")
            assert synced["scope"] == "full" and synced["note"] is None
            assert synced["files_added"] == 3 and synced["initialized"] is True

            # A sync of just some paths leaves the other changes pending.
            for name in ("auth.py", "uploads.py"):
                with (root / name).open("a") as fh:
                    fh.write(f"\n\n# edited {name}\n")
            synced = await server.ok("reindex", {"paths": ["auth.py", str(root / "docs")]})
            assert synced["scope"] == "paths"
            assert synced["paths"] == ["auth.py", "docs"]
            assert (synced["files_scanned"], synced["files_modified"]) == (2, 1)
            status = await server.ok("status")
            assert status["owner"]["this_process"] is True
            assert status["pending_changes"]["modified"] == 1
            # An ignore file among the paths: its rules may reach anywhere.
            (root / ".gitignore").write_text("*.log\n")
            synced = await server.ok("reindex", {"paths": [".gitignore"]})
            assert synced["scope"] == "full" and "ignore file" in synced["note"]
            assert synced["files_modified"] == 1 and synced["initialized"] is False

            # Started while this server owns the index (kept busy meanwhile,
            # however long the watcher takes to start), a watcher waits for it
            # instead of being refused...
            watch = Watch(root)
            try:

                async def watch_waits() -> bool:
                    assert (await server.ok("status"))["owner"]["this_process"] is True
                    return "Waiting for `cidx mcp`" in watch.stderr()

                await eventually(watch_waits, "cidx watch to say it waits")
                last_call = time.monotonic()
                assert owner_of(root)[0] == "mcp"
                # ...and takes over once the server has been idle long enough.
                await eventually(watch.owning, "cidx watch to own the index")
                assert time.monotonic() - last_call >= idle - 0.5
                assert "releasing the index" in server.stderr()

                status = await server.ok("status")
                assert status["owner"]["kind"] == "watch"
                assert status["owner"]["pid"] == watch.proc.pid
                assert status["files"] == 4  # with .gitignore
                assert status["pending_changes"]["total"] == 0  # the catch-up took uploads.py
            finally:
                watch.stop()
            assert watch.proc.returncode == 0, watch.stderr()

            # With the watcher gone, the next call makes this process the owner again.
            status = await server.ok("status")
            assert status["owner"]["this_process"] is True
        # Ownership ends with the server.
        assert read_owner(paths) is None

    run(main)


def test_missing_project_folder_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_cidx(["mcp", "--project", str(missing)], cwd=tmp_path, check=False, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "does not exist" in result.stderr and str(missing) in result.stderr


def test_stdout_carries_only_mcp_and_sigterm_releases_the_index(
    project: Callable[[dict[str, str | bytes]], Path],
) -> None:
    root = project({"a.py": "def f():\n    return 1\n"})
    log = root.parent / "raw.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [*cidx_cmd(), "mcp"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:

        def exchange(message: dict[str, Any]) -> dict[str, Any]:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            if "id" not in message:
                return {}
            # Every stdout line must be a JSON-RPC message.
            reply: dict[str, Any] = json.loads(proc.stdout.readline())
            assert reply["jsonrpc"] == "2.0" and reply["id"] == message["id"], reply
            return reply

        hello = exchange(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "test", "version": "0"},
                },
            }
        )
        assert hello["result"]["serverInfo"]["name"] == "cidx"
        exchange({"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {"name": "search", "arguments": {"query": "return one"}}
        reply = exchange({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        assert reply["result"]["structuredContent"]["results"][0]["symbol"] == "f"
        assert owner_of(root) == ("mcp", proc.pid)

        # Stopped by a signal with stdin still open, it gives the index up first.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM, log.read_text()
        assert proc.stdout.read() == ""
        assert read_owner(ProjectPaths(root)) is None
        assert not ProjectPaths(root).socket_path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
