"""The projects one daemon holds: taking, watching, releasing, isolating failures.

Each project is held exactly as any owner holds it: its owner lock (kind
"daemon"), its engine opened through `cidx.service.owned` and its own
socket, so every client path reaches it unchanged. What the daemon adds:
one `Models` per model length, shared by every project; a watched project
is kept live by a `LiveSync` thread of its own; a project nobody used for
`idle_release` seconds is released; and a project that fails (its folder
vanished, its index damaged, its permissions lost) is marked failed, closed
and retried later with backoff, without touching the others.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cidx.config import load_config
from cidx.cpucap import CpuCap
from cidx.daemon import DAEMON_KIND
from cidx.daemon._messages import HeldProject, ProjectState, WatchResult
from cidx.embedding import DEFAULT_MAX_LENGTH
from cidx.errors import CidxError, LockBusyError, UsageError
from cidx.live import DEFAULT_RESCAN_SECONDS, LiveSync
from cidx.owner.lock import OwnerLock, read_owner
from cidx.parts import Models
from cidx.priority import background_priority
from cidx.project import ProjectPaths, refuse_broad_root
from cidx.service import NO_WAIT, LocalIndex, owned
from cidx.watcher import FileWatcher

log = logging.getLogger("cidx.daemon")

# A watched project that failed is tried again after this long, doubling up to the cap.
RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 60.0


@dataclass
class _Project:
    """One project's slot: what is held of it, and what went wrong."""

    paths: ProjectPaths
    watched: bool = False
    lock: OwnerLock | None = None
    stack: contextlib.ExitStack | None = None
    local: LocalIndex | None = None
    keeper: LiveSync | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    error: str | None = None
    waiting: bool = False
    # It was open once since it was last asked for (its index existed then).
    was_held: bool = False
    retry_at: float = 0.0
    retry_delay: float = RETRY_SECONDS
    guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def held(self) -> bool:
        return self.local is not None

    def state(self) -> ProjectState:
        if self.error is not None:
            return "failed"
        if self.waiting and not self.held:
            return "waiting"
        return "watched" if self.watched and self.held else "open"


class Projects:
    """Every project of one daemon, keyed by root."""

    def __init__(
        self,
        *,
        idle_release: float,
        threads: int | None,
        on_watched: Callable[[list[str]], None],
        rescan_interval: float = DEFAULT_RESCAN_SECONDS,
        cap: CpuCap | None = None,
    ) -> None:
        self.idle_release = idle_release
        self.threads = threads
        # Paces the syncs of watched projects (their keeper threads), no other work.
        self.cap = cap or CpuCap(100)
        self.rescan_interval = rescan_interval
        self._on_watched = on_watched
        self._models: dict[int, Models] = {}
        self._projects: dict[Path, _Project] = {}
        self._lock = threading.Lock()

    # -- the shared model ---------------------------------------------------

    def models(self, paths: ProjectPaths) -> Models:
        """The `Models` for this project's model length, shared by all projects."""
        try:
            length = load_config(paths).embedding.max_length if paths.exists() else None
        except CidxError:
            length = None  # opening it says what is wrong
        length = length or DEFAULT_MAX_LENGTH
        with self._lock:
            models = self._models.get(length)
            if models is None:
                models = self._models[length] = Models(
                    length, long_lived=True, threads=self.threads, cap=self.cap
                )
            return models

    # -- requests -----------------------------------------------------------

    @contextlib.contextmanager
    def _slot(self, root: Path) -> Iterator[_Project]:
        """The project's slot, its guard held, and still the one registered.

        A slot the supervisor released and forgot while this request waited
        for its guard is not used: an index opened in a forgotten slot would
        be held by nobody (its lock never released, its socket closed when
        the slot is garbage-collected).
        """
        while True:
            with self._lock:
                slot = self._projects.get(root)
                if slot is None:
                    slot = self._projects[root] = _Project(ProjectPaths(root))
            slot.guard.acquire()
            with self._lock:
                current = self._projects.get(root) is slot
            if current:
                break
            slot.guard.release()
        try:
            yield slot
        finally:
            slot.guard.release()

    def adopt(self, root: Path, max_file_size: int | None = None) -> None:
        """Hold the project's index (a command there found no owner).

        LockBusyError when another process owns it; the command then uses
        that owner, as it would without a daemon.
        """
        with self._slot(root) as slot:
            if slot.held:
                return
            try:
                self._open(slot, max_file_size)
            except BaseException:
                self._forget(slot)  # nothing held: nothing to show
                raise

    def watch(self, root: Path) -> WatchResult:
        """Keep the project live from now on, and after restarts."""
        refuse_broad_root(root)
        if not root.is_dir():
            raise UsageError(f"{root} is not a folder. Give the root of a project to watch.")
        with self._slot(root) as slot:
            changed = not slot.watched
            slot.watched = True
            slot.retry_at, slot.retry_delay = 0.0, RETRY_SECONDS
            slot.was_held = slot.held  # asked again: a deleted index may be rebuilt
            self._save_watched()
            self._keep_live(slot)
            return self._answer(slot, changed)

    def unwatch(self, root: Path) -> WatchResult:
        """Stop keeping the project live (it stays open until idle)."""
        with self._slot(root) as slot:
            changed = slot.watched
            slot.watched = False
            self._stop_keeper(slot)
            if slot.local is not None:
                slot.local.operations.live = False
            slot.error = None
            slot.waiting = False
            self._save_watched()
            answer = self._answer(slot, changed)
            if not slot.held:
                self._forget(slot)
            return answer

    def release(self, root: Path) -> WatchResult:
        """Give the project up now, unless it is watched."""
        with self._slot(root) as slot:
            if slot.watched:
                raise LockBusyError(
                    f"The cidx daemon (pid {os.getpid()}) keeps {root} live. Run `cidx watch "
                    "--stop` there first (or `cidx stop`), then run the command again."
                )
            self._close(slot)
            self._forget(slot)
            return self._answer(slot, False)

    def watched_roots(self) -> list[str]:
        with self._lock:
            return [str(root) for root, slot in self._projects.items() if slot.watched]

    def view(self) -> list[HeldProject]:
        with self._lock:
            slots = list(self._projects.values())
        out = []
        for slot in sorted(slots, key=lambda s: str(s.paths.root)):
            local = slot.local
            idle = local.server.idle_seconds() if local and local.server else None
            error = slot.error
            if error is None and slot.keeper is not None:
                error = slot.keeper.last_error
            if error is None and slot.waiting and not slot.held:
                owner = read_owner(slot.paths)
                who = owner.describe() if owner else "another cidx process"
                error = f"waiting for {who}, which owns the index"
            out.append(
                HeldProject(
                    root=str(slot.paths.root),
                    state="failed" if error is not None and not slot.waiting else slot.state(),
                    watched=slot.watched,
                    idle_seconds=idle,
                    error=error,
                )
            )
        return out

    # -- the supervisor's round ---------------------------------------------

    def tick(self) -> None:
        """Retry watched projects that are not live, release idle ones."""
        with self._lock:
            slots = list(self._projects.values())
        now = time.monotonic()
        for slot in slots:
            if not slot.guard.acquire(blocking=False):
                continue  # a request is opening or closing it
            try:
                if slot.thread is not None and not slot.thread.is_alive():
                    self._failed(slot, slot.error or "the file watcher stopped")
                elif slot.held and not slot.paths.exists():
                    self._failed(slot, _gone(slot.paths))
                if slot.watched and slot.keeper is None and now >= slot.retry_at:
                    self._keep_live(slot)
                elif not slot.watched and slot.held and self._idle(slot):
                    log.info("%s: unused for %g s, released", slot.paths.root, self.idle_release)
                    self._close(slot)
                    self._forget(slot)
            finally:
                slot.guard.release()

    def close_all(self) -> list[str]:
        """Flush and release every project (the daemon is stopping)."""
        with self._lock:
            slots = list(self._projects.values())
        released = []
        for slot in slots:
            with slot.guard:
                if slot.held:
                    released.append(str(slot.paths.root))
                self._close(slot)
        return sorted(released)

    # -- opening and closing (caller holds slot.guard) ------------------------

    def _idle(self, slot: _Project) -> bool:
        local = slot.local
        if local is None or local.server is None or local.engine.syncing:
            return False
        if local.engine.dense.active:
            return False  # its dense pass is not done: released, it would wait for a command
        return local.server.idle_seconds() >= self.idle_release

    def _open(self, slot: _Project, max_file_size: int | None = None) -> None:
        paths = slot.paths
        lock = OwnerLock(paths, DAEMON_KIND)
        if not lock.try_acquire():
            owner = read_owner(paths)
            who = owner.describe() if owner else "another cidx process"
            raise LockBusyError(f"The index of {paths.root} is owned by {who}.")
        stack = contextlib.ExitStack()
        stack.callback(lock.release)
        try:
            local = stack.enter_context(
                owned(
                    paths,
                    max_file_size=max_file_size,
                    live=slot.watched,
                    wait=NO_WAIT,
                    models=self.models(paths),
                )
            )
        except BaseException:
            stack.close()
            raise
        local.engine.staged = True  # new projects answer from the first seconds
        slot.lock, slot.stack, slot.local = lock, stack, local
        slot.waiting, slot.error, slot.was_held = False, None, True
        log.info("%s: taken (pid %d)", paths.root, os.getpid())

    def _keep_live(self, slot: _Project) -> None:
        """Open the project if needed and start following its files; a failure
        is recorded on the slot (and retried by `tick`), never raised."""
        if slot.keeper is not None:
            return
        try:
            if slot.was_held and not slot.paths.exists():
                # Never build a new index where the user deleted one.
                raise UsageError(_gone(slot.paths))
            if not slot.held:
                self._open(slot)
        except LockBusyError:
            slot.waiting = True
            slot.retry_at = time.monotonic() + RETRY_SECONDS
            return
        except (CidxError, OSError) as exc:
            self._failed(slot, _describe(exc))
            return
        except Exception as exc:  # a bug, or an engine failure: isolate it
            log.exception("%s: could not be opened", slot.paths.root)
            self._failed(slot, _describe(exc))
            return
        local = slot.local
        assert local is not None
        local.operations.live = True
        slot.stop = threading.Event()
        keeper = LiveSync(
            local.engine, FileWatcher(slot.paths.root), rescan_interval=self.rescan_interval
        )
        slot.keeper = keeper
        local.operations.health = keeper.health
        slot.thread = threading.Thread(
            target=self._run_keeper,
            args=(slot, keeper, slot.stop),
            name=f"watch {slot.paths.root}",
            daemon=True,
        )
        slot.thread.start()
        log.info("%s: watching", slot.paths.root)

    def _run_keeper(self, slot: _Project, keeper: LiveSync, stop: threading.Event) -> None:
        background_priority(thread=True)
        try:
            with self.cap.background():
                keeper.run(stop)
        except BaseException as exc:
            if not stop.is_set():
                slot.error = _describe(exc)
                log.error("%s: stopped watching: %s", slot.paths.root, slot.error)
        else:
            if keeper.last_error and not stop.is_set():
                slot.error = keeper.last_error

    def _stop_keeper(self, slot: _Project) -> None:
        if slot.keeper is None:
            return
        slot.stop.set()
        if slot.local is not None:
            slot.local.operations.health = None
            slot.local.engine.holds.stop_waiting()
        if slot.thread is not None:
            slot.thread.join(timeout=60)
        slot.keeper, slot.thread = None, None

    def _close(self, slot: _Project) -> None:
        self._stop_keeper(slot)
        stack, slot.stack, slot.local, slot.lock = slot.stack, None, None, None
        if stack is not None:
            try:
                stack.close()
            except Exception as exc:
                log.error("%s: closing failed: %s", slot.paths.root, _describe(exc))
        slot.error = slot.error if slot.watched else None

    def _failed(self, slot: _Project, error: str) -> None:
        log.error("%s: %s (retrying in %g s)", slot.paths.root, error, slot.retry_delay)
        self._close(slot)
        slot.error = error
        slot.waiting = False
        slot.retry_at = time.monotonic() + slot.retry_delay
        slot.retry_delay = min(slot.retry_delay * 2, MAX_RETRY_SECONDS)

    def _forget(self, slot: _Project) -> None:
        if slot.watched or slot.held:
            return
        with self._lock:
            if self._projects.get(slot.paths.root) is slot:
                del self._projects[slot.paths.root]

    def _save_watched(self) -> None:
        self._on_watched(self.watched_roots())

    def _answer(self, slot: _Project, changed: bool) -> WatchResult:
        return WatchResult(
            root=str(slot.paths.root),
            pid=os.getpid(),
            watched=slot.watched,
            changed=changed,
            state=slot.state(),
            error=slot.error,
        )


def _gone(paths: ProjectPaths) -> str:
    where = paths.root if not paths.root.is_dir() else paths.index_dir
    return (
        f"The index of {paths.root} is gone ({where} was deleted). Run `cidx watch` there "
        "to index it again, or `cidx watch --stop` there to forget it."
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CidxError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}"
