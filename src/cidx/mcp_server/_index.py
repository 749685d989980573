"""Who answers an MCP tool call: the project's owner, or this process for a while.

Every call goes through `cidx.service.open_index`, so the answer is the same
whoever owns the index. When another process owns it (a `cidx watch`,
`serve`, a running `cidx index`, another agent's `cidx mcp`), the call is
forwarded through its socket. When nobody does, this process becomes the
owner — it takes the lock, opens the engine once and serves the owner
socket, so the user's own `cidx` commands reach it — and stays the owner
between calls, running an incremental sync before each search. After
`idle_release` seconds without a tool call it lets go of all that, so a
`cidx watch` started meanwhile (which waits for the lock) can take over;
the next call then reaches that watcher, or takes ownership again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from cidx import service
from cidx.errors import OwnerError, UsageError
from cidx.messages import (
    IndexRequest,
    IndexSummary,
    QueryRequest,
    SearchOutcome,
    SearchRequest,
    StatusReport,
)
from cidx.owner.lock import OwnerInfo
from cidx.project import ProjectPaths, project_paths

log = logging.getLogger("cidx.mcp")

KIND = "mcp"
DEFAULT_IDLE_RELEASE_SECONDS = 60.0

T = TypeVar("T")


def project_for(path: Path | None) -> ProjectPaths:
    """The project `cidx mcp --project PATH` serves (root discovery as for every command)."""
    if path is not None:
        if not path.exists():
            raise UsageError(
                f"The project folder {path} does not exist. Pass an existing folder to "
                "--project, or leave it out to serve the project in the working directory."
            )
        if not path.is_dir():
            raise UsageError(
                f"{path} is not a folder. Pass the project's folder (or any folder inside "
                "it) to --project."
            )
    return project_paths(path)


@dataclass(frozen=True)
class ReindexOutcome:
    summary: IndexSummary
    # "paths": only the paths asked for were looked at; "full": the whole project.
    scope: Literal["paths", "full"]
    paths: tuple[str, ...]
    note: str | None = None


class McpIndex:
    """The index as the MCP tools see it; thread-safe (the SDK runs tools on worker threads)."""

    def __init__(
        self,
        paths: ProjectPaths,
        *,
        idle_release: float = DEFAULT_IDLE_RELEASE_SECONDS,
        wait_timeout: float | None = None,
    ) -> None:
        if idle_release < 0:
            raise UsageError(f"--idle-release must be 0 or more seconds, not {idle_release:g}.")
        self.paths = paths
        self.idle_release = idle_release
        # How long a tool call waits for another process using the index
        # (None: as long as it takes).
        self.wait = service.WaitPolicy(timeout=wait_timeout, on_wait=self._on_wait)
        self._cond = threading.Condition()
        self._stack: contextlib.ExitStack | None = None  # set while this process owns the index
        self._local: service.LocalIndex | None = None
        self._users = 0  # tool calls running against `_local`
        self._last_used = time.monotonic()
        self._closed = False
        self._releaser = threading.Thread(
            target=self._release_when_idle, name="cidx-mcp-idle", daemon=True
        )
        self._releaser.start()

    # -- the tools ---------------------------------------------------------

    def search(
        self, query: QueryRequest, progress: service.ProgressFn | None = None
    ) -> SearchOutcome:
        def run(handle: service.IndexHandle) -> SearchOutcome:
            # An owner that does not keep the index live (this process, or a
            # running `cidx index`) syncs first; a watcher answers at once.
            return handle.search(SearchRequest([query], sync=True), progress)

        return self.run(run)

    def status(self) -> StatusReport:
        return self.run(lambda h: h.status())

    def reindex(
        self, paths: Sequence[str] | None = None, progress: service.ProgressFn | None = None
    ) -> ReindexOutcome:
        scope = self.paths.relative(paths or ())

        def run(handle: service.IndexHandle) -> ReindexOutcome:
            summary = handle.index(IndexRequest(paths=tuple(scope)), progress)
            if not scope:
                return ReindexOutcome(summary, "full", ())
            note = (
                "An ignore file is among the paths, so everything it can affect was synced too."
                if summary.widened
                else None
            )
            return ReindexOutcome(
                summary, "paths" if summary.scoped else "full", tuple(scope), note
            )

        return self.run(run)

    # -- ownership ---------------------------------------------------------

    def run(self, fn: Callable[[service.IndexHandle], T]) -> T:
        """Run `fn` against the index, under the retry policy every front end uses.

        Unlike `service.with_index`, ownership taken here is kept until the
        idle release instead of ending with the call.
        """

        def once() -> T:
            with self._handle() as handle:
                return fn(handle)

        return service.retrying(once, self.paths)

    @contextlib.contextmanager
    def _handle(self) -> Iterator[service.IndexHandle]:
        """The index for one call: this process's open engine, or the owner's socket."""
        with self._cond:
            if self._closed:
                raise OwnerError("The MCP server is shutting down.")
            local = self._local
            if local is None:
                opened = contextlib.ExitStack()
                handle = opened.enter_context(
                    service.open_index(self.paths.root, kind=KIND, wait=self.wait)
                )
                if isinstance(handle, service.LocalIndex):
                    # Nobody owned it: keep it, until the idle release.
                    self._stack, self._local = opened, handle
                    handle.engine.long_lived = True
                    handle.engine.staged = True
                    local = handle
                    log.info("owning the index of %s", self.paths.root)
            if local is not None:
                self._users += 1
        if local is None:
            # Another process owns the index: reach it for this call only.
            with opened:
                yield handle
            return
        try:
            yield local
        finally:
            with self._cond:
                self._users -= 1
                self._last_used = time.monotonic()
                self._cond.notify_all()

    def _on_wait(self, owner: OwnerInfo | None) -> None:
        who = owner.describe() if owner else "another cidx process"
        log.info("waiting for %s, which is using the index", who)

    def _release_when_idle(self) -> None:
        with self._cond:
            while not self._closed:
                if self._local is None or self._users:
                    self._cond.wait()
                    continue
                left = self._last_used + self.idle_release - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                log.info(
                    "no tool call for %g s: releasing the index for other cidx processes",
                    self.idle_release,
                )
                try:
                    self._release()
                except Exception:
                    # The lock is released whatever failed; this thread must
                    # live on for the next ownership.
                    log.exception("closing the index failed")

    def _release(self) -> None:
        """Stop owning: finish socket requests in flight, close the engine, unlock."""
        stack, self._stack, self._local = self._stack, None, None
        if stack is not None:
            stack.close()

    def close(self, timeout: float = 30.0) -> None:
        """Release the index once the calls in flight are done (or after `timeout`)."""
        with self._cond:
            self._closed = True
            self._cond.wait_for(lambda: self._users == 0, timeout=timeout)
            self._release()
            self._cond.notify_all()
        self._releaser.join(timeout=5)

    def __enter__(self) -> McpIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
