"""The entry point every command uses to reach a project's index.

`open_index` gives a handle with the same methods whichever way the index is
reached: through the socket of the process that owns it now, or by becoming
the owner — taking the lock, opening the engine and serving the socket for
as long as the command runs, so that commands started meanwhile reach it in
turn instead of failing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from cidx.errors import LockBusyError, OwnerError
from cidx.messages import (
    IndexRequest,
    IndexSummary,
    InitResult,
    Progress,
    SearchOutcome,
    SearchRequest,
    StatusReport,
)
from cidx.owner.client import OwnerClient, OwnerUnavailable
from cidx.owner.lock import OwnerInfo, OwnerLock, read_owner
from cidx.project import ProjectPaths, project_paths

if TYPE_CHECKING:
    from cidx.config import Config
    from cidx.engine import Engine

ProgressFn = Callable[[Progress], None]
WaitFn = Callable[[OwnerInfo | None], None]


class IndexHandle(Protocol):
    """What a command can do with a project's index."""

    paths: ProjectPaths

    @property
    def owner(self) -> OwnerInfo | None:
        """The other process answering, or None when this process owns the index."""

    def index(self, request: IndexRequest, progress: ProgressFn | None = None) -> IndexSummary: ...

    def search(
        self, request: SearchRequest, progress: ProgressFn | None = None
    ) -> SearchOutcome: ...

    def status(self) -> StatusReport: ...


@dataclass
class LocalIndex:
    """This process owns the index."""

    paths: ProjectPaths
    engine: Engine
    created: bool

    @property
    def owner(self) -> OwnerInfo | None:
        return None

    def index(self, request: IndexRequest, progress: ProgressFn | None = None) -> IndexSummary:
        summary = self.engine.index(request, progress)
        summary.initialized, self.created = self.created, False  # said once per creation
        return summary

    def search(self, request: SearchRequest, progress: ProgressFn | None = None) -> SearchOutcome:
        outcome = self.engine.search_outcome(request, progress)
        if outcome.sync is not None:
            outcome.sync.initialized, self.created = self.created, False
        return outcome

    def status(self) -> StatusReport:
        return self.engine.status()


@dataclass
class RemoteIndex:
    """Another process owns the index; requests go through its socket."""

    paths: ProjectPaths
    client: OwnerClient
    remote: OwnerInfo | None

    @property
    def owner(self) -> OwnerInfo | None:
        return self.remote

    def index(self, request: IndexRequest, progress: ProgressFn | None = None) -> IndexSummary:
        return self.client.call("index", request, IndexSummary, on_progress=progress)

    def search(self, request: SearchRequest, progress: ProgressFn | None = None) -> SearchOutcome:
        return self.client.call("search", request, SearchOutcome, on_progress=progress)

    def status(self) -> StatusReport:
        return self.client.call("status", None, StatusReport)


@contextlib.contextmanager
def open_index(
    start: Path | None = None,
    *,
    kind: str,
    wait: bool = True,
    on_wait: WaitFn | None = None,
    max_file_size: int | None = None,
    live: bool = False,
    remote: bool = True,
) -> Iterator[IndexHandle]:
    """A handle on the project's index, through its owner or as its owner.

    `remote=False` insists on owning the index (watch, serve): it waits for
    the current owner to exit, or fails at once when `wait` is False.
    """
    paths = project_paths(start)
    client = OwnerClient(paths.socket_path)
    lock = OwnerLock(paths, kind)
    told = False
    while True:
        if remote:
            try:
                state = client.ping()
            except OwnerUnavailable:
                pass
            else:
                owner = read_owner(paths)
                if state.get("busy"):
                    # The owner will take our request after its current sync.
                    if not wait:
                        raise _busy(paths, owner)
                    if on_wait is not None:
                        on_wait(owner)
                yield RemoteIndex(paths, client, owner)
                return
        if lock.try_acquire():
            break
        owner = read_owner(paths)
        if not wait:
            raise _busy(paths, owner)
        if not told and on_wait is not None:
            on_wait(owner)
            told = True
        time.sleep(0.1)

    try:
        with _owned(paths, max_file_size=max_file_size, live=live) as handle:
            yield handle
    finally:
        lock.release()


T = TypeVar("T")

# How often an operation is tried when its owner vanishes: before it answers
# (its socket is gone, or it is still starting)...
UNAVAILABLE_ATTEMPTS = 5
# ...or mid-request (it was killed, or crashed): its lock is free then, so
# the next attempt normally becomes the owner.
OWNER_ERROR_ATTEMPTS = 3


def _busy(paths: ProjectPaths, owner: OwnerInfo | None) -> LockBusyError:
    who = owner.describe() if owner else "another cidx process"
    return LockBusyError(
        f"The index of {paths.root} is busy: {who} is updating it. Run the command "
        "without --no-wait to wait for it."
    )


def with_index(
    fn: Callable[[IndexHandle], T],
    start: Path | None = None,
    *,
    kind: str,
    wait: bool = True,
    on_wait: WaitFn | None = None,
    max_file_size: int | None = None,
) -> T:
    """Run `fn` against the index; if the owner exits under us, run it again.

    Every operation a handle offers is idempotent (a sync, a search, a
    status), so repeating one whose owner vanished is safe.
    """
    attempts = 0
    while True:
        attempts += 1
        try:
            with open_index(
                start, kind=kind, wait=wait, on_wait=on_wait, max_file_size=max_file_size
            ) as handle:
                return fn(handle)
        except OwnerUnavailable:
            if attempts >= UNAVAILABLE_ATTEMPTS:
                raise
        except OwnerError:
            if attempts >= OWNER_ERROR_ATTEMPTS:
                raise


@contextlib.contextmanager
def _owned(paths: ProjectPaths, *, max_file_size: int | None, live: bool) -> Iterator[LocalIndex]:
    from cidx.engine import Engine
    from cidx.owner.server import OwnerServer

    engine, created = Engine.open(paths, max_file_size=max_file_size)
    try:
        server = OwnerServer(engine, paths.socket_path, live=live)
        server.start()
        try:
            yield LocalIndex(paths, engine, created)
        finally:
            server.stop()
    finally:
        engine.close()


def init_project(
    start: Path | None = None,
    *,
    max_file_size: int | None = None,
    force: bool = False,
    wait: bool = True,
    on_wait: WaitFn | None = None,
) -> InitResult:
    """Create the project's index (or keep it, or with `force` replace it)."""
    from cidx.config import load_config
    from cidx.engine import initialize
    from cidx.store import open_store

    paths = project_paths(start)
    if paths.exists() and not force:
        config = load_config(paths)
        if max_file_size in (None, config.max_file_size):
            # Nothing to change: no need to wait for a running owner.
            return _init_result(paths, config, created=False, replaced=False)
    lock = OwnerLock(paths, "init")
    lock.acquire(wait=wait, on_wait=on_wait)
    try:
        existed = paths.exists()
        config = initialize(paths, max_file_size=max_file_size, force=force)
        store = open_store(paths, config)
        try:
            if not store.collection_exists(config.collection):
                store.create_collection(config.collection, config.embedding.dim)
        finally:
            store.close()
        return _init_result(paths, config, created=not existed or force, replaced=existed and force)
    finally:
        lock.release()


def _init_result(
    paths: ProjectPaths, config: Config, *, created: bool, replaced: bool
) -> InitResult:
    return InitResult(
        root=str(paths.root),
        index_dir=str(paths.index_dir),
        collection=config.collection,
        model=config.embedding.model_id,
        max_file_size=config.max_file_size,
        created=created,
        replaced=replaced,
    )
