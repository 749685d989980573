"""The entry point every command uses to reach a project's index.

`open_index` gives a handle with the same methods whichever way the index is
reached: through the socket of the process that owns it now, or by becoming
the owner — taking the lock, opening the engine and serving the socket for
as long as the command runs, so that commands started meanwhile reach it in
turn instead of failing. An index the user may read but not write is opened
from a private snapshot instead, without the lock, for searches and status.

`with_index` adds the one retry policy every front end uses: an operation
whose owner vanished under it is run again (each is idempotent).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cidx.errors import AccessError, LockBusyError, NoIndexError, OwnerError
from cidx.messages import (
    IndexRequest,
    IndexSnapshot,
    IndexSummary,
    InitResult,
    NoArgs,
    Progress,
    SearchOutcome,
    SearchRequest,
    SnapshotRequest,
    StatusReport,
)
from cidx.operations import Operations, Snapshot
from cidx.owner import protocol
from cidx.owner.client import OwnerClient, OwnerUnavailable
from cidx.owner.lock import OwnerInfo, OwnerLock, read_owner
from cidx.owner.protocol import Verb
from cidx.project import (
    ProjectPaths,
    project_paths,
    read_only_error,
    refuse_broad_root,
    require_writable,
)
from cidx.storage import storage_location
from cidx.walk import refuse_large_first_index

if TYPE_CHECKING:
    from cidx.config import Config
    from cidx.engine import Engine
    from cidx.renaming import ProjectInfo, RemoteUpdate

ProgressFn = Callable[[Progress], None]
R = TypeVar("R")
WaitFn = Callable[[OwnerInfo | None], None]

# Commands that only read the index: they never create one, and they answer
# from a snapshot when the index is read-only for this user.
READ_ONLY_KINDS = frozenset({"status", "backup"})
# Commands that may read a read-only index (search without syncing first).
SNAPSHOT_KINDS = frozenset({"status", "query", "mcp"})
# Files of the index folder a snapshot leaves out: the owner's, not the index's,
# and damaged or dropped copies waiting to be deleted.
_NOT_SNAPSHOTTED = (
    "owner.lock",
    "owner.json",
    "owner.sock",
    "serve.json",
    "logs",
    "*.damaged-*",
    "*.dropped-*",
)


@dataclass(frozen=True)
class WaitPolicy:
    """How long a command waits for another process that owns the index.

    `timeout` None waits as long as it takes, 0 fails at once (`--no-wait`).
    `on_wait` is told once, when waiting starts, who is being waited for.
    """

    timeout: float | None = None
    on_wait: WaitFn | None = None


WAIT_FOREVER = WaitPolicy()
NO_WAIT = WaitPolicy(timeout=0)


class IndexHandle:
    """What a command can do with a project's index, however it is reached.

    `call` sends any verb (`cidx.owner.protocol`); `index`, `search` and
    `status` are its typed shortcuts for the verbs every front end uses.
    """

    paths: ProjectPaths

    @property
    def owner(self) -> OwnerInfo | None:
        """The other process answering, or None when this process owns the index."""
        return None

    def call(self, verb: Verb[Any, R], args: Any, progress: ProgressFn | None = None) -> R:
        raise NotImplementedError

    def index(self, request: IndexRequest, progress: ProgressFn | None = None) -> IndexSummary:
        return self.call(protocol.INDEX, request, progress)

    def search(self, request: SearchRequest, progress: ProgressFn | None = None) -> SearchOutcome:
        return self.call(protocol.SEARCH, request, progress)

    def status(self) -> StatusReport:
        return self.call(protocol.STATUS, NoArgs())

    def snapshot(self, request: SnapshotRequest) -> IndexSnapshot:
        return self.call(protocol.SNAPSHOT, request)


class LocalIndex(IndexHandle):
    """This process holds the index (as its owner, or a read-only snapshot of it)."""

    def __init__(self, paths: ProjectPaths, engine: Engine, operations: Operations) -> None:
        self.paths = paths
        self.engine = engine
        self.operations = operations

    def call(self, verb: Verb[Any, R], args: Any, progress: ProgressFn | None = None) -> R:
        return self.operations.handle(verb, args, progress or _no_progress)


class RemoteIndex(IndexHandle):
    """Another process owns the index; requests go through its socket."""

    def __init__(self, paths: ProjectPaths, client: OwnerClient, remote: OwnerInfo | None) -> None:
        self.paths = paths
        self.client = client
        self.remote = remote

    @property
    def owner(self) -> OwnerInfo | None:
        return self.remote

    def call(self, verb: Verb[Any, R], args: Any, progress: ProgressFn | None = None) -> R:
        return self.client.call(verb, args, on_progress=progress)


def _no_progress(_p: Progress) -> None:
    pass


@contextlib.contextmanager
def open_index(
    start: Path | None = None,
    *,
    kind: str,
    wait: WaitPolicy = WAIT_FOREVER,
    max_file_size: int | None = None,
    live: bool = False,
    remote: bool = True,
) -> Iterator[IndexHandle]:
    """A handle on the project's index, through its owner or as its owner.

    `remote=False` insists on owning the index (watch, serve): it waits for
    the current owner to exit, or fails at once when `wait` is False.
    Commands in `READ_ONLY_KINDS` never create an index (NoIndexError), and
    every command but those in `SNAPSHOT_KINDS` needs to write it
    (AccessError when it cannot).
    """
    paths = project_paths(start)
    if not paths.exists():
        if kind in READ_ONLY_KINDS:
            raise _no_index(paths)
        refuse_broad_root(paths.root)
        from cidx.config import DEFAULT_MAX_FILE_SIZE  # pydantic: only when creating

        refuse_large_first_index(paths.root, max_file_size=max_file_size or DEFAULT_MAX_FILE_SIZE)
    client = OwnerClient(paths.socket_path)
    if remote:
        handle = _reach_owner(paths, client, wait)
        if handle is not None:
            yield handle
            return
    if not paths.writable():
        if kind in SNAPSHOT_KINDS and paths.exists():
            with _snapshot(paths) as snapshot:
                yield snapshot
            return
        raise read_only_error(paths)
    lock = OwnerLock(paths, kind)
    reach = (lambda: _reach_owner(paths, client, wait)) if remote else None
    handle = _take_lock(lock, paths, wait, reach)
    if handle is not None:
        yield handle
        return
    try:
        with _owned(paths, max_file_size=max_file_size, live=live) as local:
            yield local
    finally:
        lock.release()


def _take_lock(
    lock: OwnerLock,
    paths: ProjectPaths,
    wait: WaitPolicy,
    reach: Callable[[], RemoteIndex | None] | None = None,
) -> RemoteIndex | None:
    """Take `lock`, waiting for the process that holds it as `wait` allows.

    With `reach`, an owner that starts answering on its socket meanwhile is
    used instead: its handle is returned and the lock is not taken.
    """
    deadline = None if wait.timeout is None else time.monotonic() + wait.timeout
    told = False
    while not lock.try_acquire():
        if reach is not None and (handle := reach()) is not None:
            return handle
        owner = read_owner(paths)
        if deadline is not None and time.monotonic() >= deadline:
            raise _busy(paths, owner, wait.timeout)
        if not told and wait.on_wait is not None:
            wait.on_wait(owner)
            told = True
        time.sleep(0.1)
    return None


@contextlib.contextmanager
def exclusive(paths: ProjectPaths, *, kind: str, wait: WaitPolicy = WAIT_FOREVER) -> Iterator[None]:
    """Hold the project's owner lock without opening its index: for work that
    replaces the index folder itself (`cidx restore`). Waits for a current
    owner as `wait` allows; other commands wait for this one meanwhile."""
    require_writable(paths)
    lock = OwnerLock(paths, kind)
    _take_lock(lock, paths, wait)
    try:
        yield
    finally:
        lock.release()


def _reach_owner(paths: ProjectPaths, client: OwnerClient, wait: WaitPolicy) -> RemoteIndex | None:
    """The owner's socket as a handle, or None when nobody answers on it."""
    try:
        state = client.ping()
    except OwnerUnavailable:
        return None
    owner = read_owner(paths)
    if state.busy:
        # The owner will take our request after its current sync.
        if wait.timeout == 0:
            raise _busy(paths, owner, 0)
        if wait.on_wait is not None:
            wait.on_wait(owner)
    return RemoteIndex(paths, client, owner)


@contextlib.contextmanager
def _snapshot(paths: ProjectPaths) -> Iterator[LocalIndex]:
    """Open a private copy of an index this process cannot write.

    The embedded store cannot open a shard on a read-only folder (it maps
    its files for writing), so the index is copied to a temporary folder
    only this user can read, opened there, and removed afterwards.
    """
    from cidx.engine import Engine

    scratch = Path(tempfile.mkdtemp(prefix="cidx-snapshot-"))
    try:
        copy = scratch / "index"
        try:
            shutil.copytree(paths.index_dir, copy, ignore=shutil.ignore_patterns(*_NOT_SNAPSHOTTED))
        except (OSError, shutil.Error) as exc:
            raise AccessError(
                f"Cannot read the index in {paths.index_dir} ({_reason(exc)}). Ask its owner "
                "for read access, or index a copy of the project you can write."
            ) from None
        engine, _created = Engine.open(ProjectPaths(paths.root, copy))
        try:
            real = storage_location(paths, engine.config).collection_dir(engine.collection)
            snapshot = Snapshot(paths.index_dir, real, read_only_error(paths))
            yield LocalIndex(paths, engine, Operations(engine, snapshot=snapshot))
        finally:
            engine.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


T = TypeVar("T")

# How often an operation is tried when its owner vanishes: before it answers
# (its socket is gone, or it is still starting)...
UNAVAILABLE_ATTEMPTS = 5
# ...or mid-request (it was killed, or crashed): its lock is free then, so
# the next attempt normally becomes the owner.
OWNER_ERROR_ATTEMPTS = 3


def _busy(paths: ProjectPaths, owner: OwnerInfo | None, waited: float | None) -> LockBusyError:
    who = owner.describe() if owner else "another cidx process"
    stop = f" (`kill {owner.pid}` stops it)" if owner else ""
    if waited:
        return LockBusyError(
            f"Gave up after waiting {waited:g} s for {who}, which is using the index of "
            f"{paths.root}{stop}. Run the command again when it is done, or give it longer "
            "with --wait-timeout SECONDS."
        )
    return LockBusyError(
        f"The index of {paths.root} is busy: {who} is using it{stop}. Run the command "
        "without --no-wait to wait for it."
    )


def retrying(run: Callable[[], T], paths: ProjectPaths) -> T:
    """Run `run` again while the owner it reached vanishes under it.

    The one retry policy of every front end (CLI, MCP): every operation a
    handle offers is idempotent (a sync, a search, a status), so repeating
    one whose owner died is safe, and the next attempt usually becomes the
    owner itself. When the owner keeps vanishing, an `OwnerError` says so.
    """
    attempts = 0
    while True:
        attempts += 1
        try:
            return run()
        except OwnerUnavailable:
            if attempts >= UNAVAILABLE_ATTEMPTS:
                raise OwnerError(
                    f"The process that owns the index of {paths.root} stopped answering "
                    f"{attempts} times in a row. Run the command again; if this repeats, "
                    "`cidx status` shows who owns the index."
                ) from None
        except OwnerError:
            if attempts >= OWNER_ERROR_ATTEMPTS:
                raise


def with_index(
    fn: Callable[[IndexHandle], T],
    start: Path | None = None,
    *,
    kind: str,
    wait: WaitPolicy = WAIT_FOREVER,
    max_file_size: int | None = None,
) -> T:
    """Run `fn` against the index, under the retry policy of `retrying`."""

    def once() -> T:
        with open_index(start, kind=kind, wait=wait, max_file_size=max_file_size) as handle:
            return fn(handle)

    return retrying(once, project_paths(start))


@contextlib.contextmanager
def _owned(paths: ProjectPaths, *, max_file_size: int | None, live: bool) -> Iterator[LocalIndex]:
    from cidx.engine import Engine
    from cidx.owner.server import OwnerServer
    from cidx.renaming import finish_pending_move

    finish_pending_move(paths)  # a move of the data a crash interrupted
    engine, _created = Engine.open(paths, max_file_size=max_file_size)
    try:
        operations = Operations(engine, live=live)
        server = OwnerServer(operations, paths.socket_path)
        server.start()
        try:
            yield LocalIndex(paths, engine, operations)
        finally:
            server.stop()
    finally:
        engine.close()


def init_project(
    start: Path | None = None,
    *,
    max_file_size: int | None = None,
    force: bool = False,
    wait: WaitPolicy = WAIT_FOREVER,
) -> InitResult:
    """Create the project's index (or keep it, or with `force` replace it)."""
    from cidx.config import load_config
    from cidx.engine import Engine, initialize

    paths = project_paths(start)
    refuse_broad_root(paths.root)
    if paths.exists() and not force:
        config = load_config(paths)
        if max_file_size in (None, config.max_file_size):
            # Nothing to change: no need to wait for a running owner.
            return _init_result(paths, config, created=False, replaced=False)
    require_writable(paths)
    lock = OwnerLock(paths, "init")
    _take_lock(lock, paths, wait)
    try:
        existed = paths.exists()
        before = load_config(paths).max_file_size if existed and not force else None
        config = initialize(paths, max_file_size=max_file_size, force=force)
        # Opening creates what the config names and is missing.
        Engine.open(paths)[0].close()
        return _init_result(
            paths,
            config,
            created=not existed or force,
            replaced=existed and force,
            previous_max_file_size=before if before != config.max_file_size else None,
        )
    finally:
        lock.release()


def _init_result(
    paths: ProjectPaths,
    config: Config,
    *,
    created: bool,
    replaced: bool,
    previous_max_file_size: int | None = None,
) -> InitResult:
    return InitResult(
        root=str(paths.root),
        index_dir=str(paths.index_dir),
        collection=config.collection,
        model=config.embedding.model_id,
        max_file_size=config.max_file_size,
        created=created,
        replaced=replaced,
        previous_max_file_size=previous_max_file_size,
    )


def project_info(start: Path | None = None) -> ProjectInfo:
    """Who the project is, and its collections and aliases (`cidx project info`)."""
    from cidx.renaming import project_info as info

    paths = project_paths(start)
    if not paths.exists():
        raise _no_index(paths)
    return info(paths)


def update_remote(
    start: Path | None = None,
    *,
    dry_run: bool = False,
    force: bool = False,
    wait: WaitPolicy = WAIT_FOREVER,
) -> RemoteUpdate:
    """Move the project's data to the names its identity gives now, or (`dry_run`)
    say what would move. Needs the index to itself: a live owner is waited for."""
    from cidx.config import load_config
    from cidx.renaming import plan_update
    from cidx.renaming import update_remote as move

    paths = project_paths(start)
    if not paths.exists():
        raise _no_index(paths)
    if dry_run:
        return plan_update(paths, load_config(paths))
    require_writable(paths)
    lock = OwnerLock(paths, "project")
    _take_lock(lock, paths, wait)
    try:
        return move(paths, force=force)
    finally:
        lock.release()


def _no_index(paths: ProjectPaths) -> NoIndexError:
    return NoIndexError(
        f"There is no cidx index for {paths.root} yet. Run `cidx index` there to create it."
    )
