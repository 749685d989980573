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
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cidx import daemon
from cidx.errors import AccessError, LockBusyError, NoIndexError, OwnerError
from cidx.messages import (
    FlushReport,
    FlushRequest,
    IndexRequest,
    IndexSnapshot,
    IndexSummary,
    InitResult,
    NoArgs,
    OwnerState,
    PauseRequest,
    PauseState,
    Progress,
    ResumeRequest,
    ResumeResult,
    SearchOutcome,
    SearchRequest,
    SnapshotRequest,
    StatusReport,
)
from cidx.operations import Operations, Snapshot
from cidx.owner import protocol
from cidx.owner.client import OwnerClient, OwnerUnavailable
from cidx.owner.lock import OwnerInfo, OwnerLock, read_owner
from cidx.owner.waiting import NO_WAIT, WAIT_FOREVER, WaitPolicy, busy_error, take_lock
from cidx.owner.wire import Verb
from cidx.project import (
    ProjectPaths,
    project_paths,
    read_only_error,
    refuse_broad_root,
    require_writable,
)
from cidx.storage import StorageMode, probe_server, requested_server, storage_location
from cidx.walk import refuse_large_first_index

if TYPE_CHECKING:
    from cidx.config import Config
    from cidx.engine import Engine
    from cidx.owner.server import OwnerServer
    from cidx.parts import Models
    from cidx.renaming import ProjectInfo, RemoteUpdate

log = logging.getLogger(__name__)

__all__ = [
    "NO_WAIT",
    "WAIT_FOREVER",
    "IndexHandle",
    "LocalIndex",
    "RemoteIndex",
    "WaitPolicy",
    "init_project",
    "open_index",
    "owned",
    "retrying",
    "take_lock",
    "with_index",
]

ProgressFn = Callable[[Progress], None]
R = TypeVar("R")

# Commands that never create an index: in a folder without one they say so
# (NoIndexError). `status` and `backup` also answer from a snapshot when the
# index is read-only for this user (see SNAPSHOT_KINDS).
READ_ONLY_KINDS = frozenset({"status", "force-flush", "pause", "backup", "migrate"})
# Commands that write the index: an owner that is paused holds them until
# the pause ends, so they learn of the pause before they ask.
WRITING_KINDS = frozenset({"index", "migrate"})
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

    def flush(self, request: FlushRequest) -> FlushReport:
        return self.call(protocol.FLUSH, request)

    def pause(self, request: PauseRequest) -> PauseState:
        return self.call(protocol.PAUSE, request)

    def resume(self, request: ResumeRequest) -> ResumeResult:
        return self.call(protocol.RESUME, request)

    def snapshot(self, request: SnapshotRequest) -> IndexSnapshot:
        return self.call(protocol.SNAPSHOT, request)


class LocalIndex(IndexHandle):
    """This process holds the index (as its owner, or a read-only snapshot of it)."""

    def __init__(
        self,
        paths: ProjectPaths,
        engine: Engine,
        operations: Operations,
        server: OwnerServer | None = None,
    ) -> None:
        self.paths = paths
        self.engine = engine
        self.operations = operations
        # The socket other processes reach this index through (None: a snapshot).
        self.server = server

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
        handle = _reach_owner(paths, client, wait, kind)
        if handle is None and _daemon_adopts(paths, max_file_size):
            handle = _reach_owner(paths, client, wait, kind)
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
    reach = (lambda: _reach_owner(paths, client, wait, kind)) if remote else None
    handle = take_lock(lock, paths, wait, reach)
    if handle is not None:
        yield handle
        return
    try:
        with owned(paths, max_file_size=max_file_size, live=live, wait=wait) as local:
            yield local
    finally:
        lock.release()


def _daemon_adopts(paths: ProjectPaths, max_file_size: int | None) -> bool:
    """Whether the user's daemon (`cidx start`), if one runs, took ownership of
    the index just now; when it cannot, this process goes on without it."""
    if not paths.writable():
        return False  # a snapshot is taken here, not by the daemon
    return daemon.adopt(paths.root, max_file_size)


def _reach_owner(
    paths: ProjectPaths, client: OwnerClient, wait: WaitPolicy, kind: str
) -> RemoteIndex | None:
    """The owner's socket as a handle, or None when nobody answers on it."""
    try:
        state = client.ping()
    except OwnerUnavailable:
        return None
    owner = read_owner(paths)
    if kind in WRITING_KINDS and state.paused_for is not None:
        _meet_pause(paths, state, wait)
    elif state.busy:
        # The owner will take our request after its current sync.
        if wait.timeout == 0:
            raise busy_error(paths, owner, 0)
        if wait.on_wait is not None:
            wait.on_wait(owner)
    return RemoteIndex(paths, client, owner)


def _meet_pause(paths: ProjectPaths, state: OwnerState, wait: WaitPolicy) -> None:
    """A write sent to a paused owner waits until the pause ends: say so, or
    refuse when the wait policy would not wait that long."""
    from cidx.formatting import duration

    left = state.paused_for or 0.0
    if wait.timeout is not None and wait.timeout < left:
        raise LockBusyError(
            f"The index of {paths.root} is paused (`cidx pause`, or a `cidx clone` copying "
            f"it) for {duration(left)} more. Run `cidx resume` there to end the pause, then "
            "run the command again."
        )
    if wait.on_notice is not None:
        wait.on_notice(
            f"The index of {paths.root} is paused for {duration(left)} more; this waits "
            "until the pause ends (`cidx resume` ends it now)."
        )


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
            real = storage_location(paths, engine.config).where(engine.collection)
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
def owned(
    paths: ProjectPaths,
    *,
    max_file_size: int | None = None,
    live: bool = False,
    wait: WaitPolicy = WAIT_FOREVER,
    models: Models | None = None,
) -> Iterator[LocalIndex]:
    """Open the index and serve its socket, for as long as the caller, who
    holds the owner lock, keeps it. `models` shares one loaded model between
    the indexes of a process (the daemon)."""
    from cidx.engine import Engine
    from cidx.owner.server import OwnerServer
    from cidx.renaming import finish_pending_move

    finish_pending_move(paths)  # a move of the data a crash interrupted
    _check_place(paths, wait)
    engine, _created = Engine.open(
        paths, max_file_size=max_file_size, on_migration=wait.on_migration, models=models
    )
    try:
        operations = Operations(engine, live=live)
        server = OwnerServer(operations, paths.socket_path)
        server.start()
        try:
            yield LocalIndex(paths, engine, operations, server)
        finally:
            server.stop()
    finally:
        engine.close()


@contextlib.contextmanager
def holding_lock(paths: ProjectPaths, kind: str, wait: WaitPolicy = WAIT_FOREVER) -> Iterator[None]:
    """The project's owner lock, taken as `wait` allows, for work that needs the
    index to itself without serving it (clearing or removing its data,
    resetting its migrations)."""
    require_writable(paths)
    lock = OwnerLock(paths, kind)
    take_lock(lock, paths, wait)
    try:
        yield
    finally:
        lock.release()


def _check_place(paths: ProjectPaths, wait: WaitPolicy) -> None:
    """Before opening an index this process owns: a project that moved is
    fixed, a copy is told about (`cidx.relocate.check_on_open`)."""
    from cidx.relocate import check_on_open

    def notice(message: str) -> None:
        log.warning("%s", message)
        if wait.on_notice is not None:
            wait.on_notice(message)

    check_on_open(paths, notice)


def init_project(
    start: Path | None = None,
    *,
    max_file_size: int | None = None,
    force: bool = False,
    storage: StorageMode | None = None,
    wait: WaitPolicy = WAIT_FOREVER,
    qdrant_url: str | None = None,
    qdrant_ca_file: str | None = None,
    qdrant_shared_collection: str | None = None,
) -> InitResult:
    """Create the project's index (or keep it, or with `force` replace it); with
    `storage`, in that storage mode (an existing index moves between the
    embedded stores; `force` starts a new one elsewhere). "server" puts a new
    index on the Qdrant server at `qdrant_url` (given alone, it implies "server").
    """
    from cidx.config import load_config
    from cidx.engine import Engine
    from cidx.initialize import initialize

    storage, server = requested_server(
        storage,
        qdrant_url,
        ca_file=qdrant_ca_file,
        shared_collection=qdrant_shared_collection,
        base=Path.cwd(),
    )
    paths = project_paths(start)
    refuse_broad_root(paths.root)
    if server is not None:
        # Before anything is written: a config never names a server that
        # cannot be used.
        probe_server(server)
    if paths.exists() and not force:
        config = load_config(paths)
        url = config.server.url if config.server is not None else None
        same_storage = storage is None or (
            storage == config.storage_mode
            and (server.url if server else None) == url
            and (server.shared_collection if server else None)
            == (config.server.shared_collection if config.server else None)
        )
        if same_storage and max_file_size in (None, config.max_file_size):
            # Nothing to change: no need to wait for a running owner.
            return _init_result(paths, config, created=False, replaced=False)
    with holding_lock(paths, "init", wait):
        _check_place(paths, wait)
        existed = paths.exists()
        before = load_config(paths) if existed and not force else None
        config = initialize(
            paths, max_file_size=max_file_size, force=force, storage_mode=storage, server=server
        )
        # Opening moves the index where the config says (`cidx.migration`) and
        # creates what the config names and is missing.
        engine, _created = Engine.open(paths, on_migration=wait.on_migration)
        config = engine.config
        engine.close()
        return _init_result(
            paths,
            config,
            created=not existed or force,
            replaced=existed and force,
            previous_max_file_size=(
                before.max_file_size
                if before is not None and before.max_file_size != config.max_file_size
                else None
            ),
            previous_storage_mode=(
                before.storage_mode
                if before is not None and before.storage_mode != config.storage_mode
                else None
            ),
        )


def _init_result(
    paths: ProjectPaths,
    config: Config,
    *,
    created: bool,
    replaced: bool,
    previous_max_file_size: int | None = None,
    previous_storage_mode: str | None = None,
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
        storage_mode=config.storage_mode,
        storage_path=storage_location(paths, config).where(config.collection),
        previous_storage_mode=previous_storage_mode,
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
    from cidx.renaming import plan_update, update_remote as move

    paths = project_paths(start)
    if not paths.exists():
        raise _no_index(paths)
    if dry_run:
        return plan_update(paths, load_config(paths))
    require_writable(paths)
    lock = OwnerLock(paths, "project")
    take_lock(lock, paths, wait)
    try:
        return move(paths, force=force)
    finally:
        lock.release()


def _no_index(paths: ProjectPaths) -> NoIndexError:
    return NoIndexError(
        f"There is no cidx index for {paths.root} yet. Run `cidx index` there to create it."
    )
