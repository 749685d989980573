"""The daemon process itself: one per user, serving every project it is asked to.

`run` is what `python -m cidx.daemon` (started by `cidx start`) does: take
the daemon lock (a second daemon exits at once), serve the daemon
socket (peers of another user are refused), resume the watched list, and
then, once a second, let `Projects.tick` retry failed projects and release
idle ones — until `cidx stop`, SIGTERM or SIGINT. On the way out every
project is flushed and released, and the socket, pid file and lock file go.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cidx.cpucap import DEFAULT_PERCENT, CpuCap
from cidx.daemon import _protocol, _watched
from cidx.daemon._messages import (
    AdoptRequest,
    AdoptResult,
    DaemonState,
    ProjectRequest,
    StopResult,
    WatchResult,
)
from cidx.daemon._paths import DaemonPaths, daemon_paths
from cidx.daemon._projects import Projects
from cidx.errors import UsageError
from cidx.fsutil import write_atomic
from cidx.logs import log_to_file
from cidx.messages import NoArgs, Progress
from cidx.owner.server import OwnerServer
from cidx.owner.wire import Handler, Verb, dispatch
from cidx.priority import background_priority

log = logging.getLogger("cidx.daemon")

R = TypeVar("R")
ProgressFn = Callable[[Progress], None]

TICK_SECONDS = 1.0
DEFAULT_IDLE_RELEASE = 1800.0


def model_threads() -> int:
    """The model's threads in the daemon: half the cores, so that indexing in
    the background leaves the others to whatever the user is doing."""
    return max(1, (os.cpu_count() or 1) // 2)


def take_lock(dp: DaemonPaths) -> int | None:
    """The daemon lock's descriptor, or None when another daemon holds it.

    The file is removed by the daemon that stops, so a lock taken on a file
    that was unlinked meanwhile is no lock at all: check it is still the
    file at the path, and try again if not.
    """
    while True:
        fd = os.open(dp.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(dp.lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def rss_bytes() -> int:
    """This process's resident memory."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    import resource
    import sys

    # No /proc (macOS): the peak instead, which macOS gives in bytes, Linux in KiB.
    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak if sys.platform == "darwin" else peak * 1024


class Daemon:
    """The daemon's handlers (one per verb of `cidx.daemon._protocol`)."""

    def __init__(self, dp: DaemonPaths, projects: Projects, stop: threading.Event) -> None:
        self.dp = dp
        self.projects = projects
        self.stopping = stop
        self.started_at = time.time()
        self._started = time.monotonic()
        self.table: dict[str, Handler] = {
            _protocol.STATE.name: self.state,
            _protocol.ADOPT.name: self.adopt,
            _protocol.WATCH.name: self.watch,
            _protocol.UNWATCH.name: self.unwatch,
            _protocol.RELEASE.name: self.release,
            _protocol.STOP.name: self.stop,
        }

    def handle(self, verb: Verb[Any, R], args: Any, progress: ProgressFn) -> R:
        if self.stopping.is_set() and verb.name != _protocol.STATE.name:
            raise UsageError("The cidx daemon is stopping. Run the command again.")
        return dispatch(self.table, verb, args, progress, "The cidx daemon")

    def state(self, _args: NoArgs, _progress: ProgressFn) -> DaemonState:
        return DaemonState(
            pid=os.getpid(),
            started_at=self.started_at,
            uptime_seconds=time.monotonic() - self._started,
            rss_bytes=rss_bytes(),
            idle_release_seconds=self.projects.idle_release,
            cpu_cap_percent=self.projects.cap.percent,
            socket=str(self.dp.socket),
            log_file=str(self.dp.log_file),
            projects=self.projects.view(),
        )

    def adopt(self, req: AdoptRequest, _progress: ProgressFn) -> AdoptResult:
        self.projects.adopt(_root(req.root), req.max_file_size)
        return AdoptResult(root=req.root, pid=os.getpid())

    def watch(self, req: ProjectRequest, _progress: ProgressFn) -> WatchResult:
        return self.projects.watch(_root(req.root))

    def unwatch(self, req: ProjectRequest, _progress: ProgressFn) -> WatchResult:
        return self.projects.unwatch(_root(req.root))

    def release(self, req: ProjectRequest, _progress: ProgressFn) -> WatchResult:
        return self.projects.release(_root(req.root))

    def stop(self, _args: NoArgs, _progress: ProgressFn) -> StopResult:
        self.stopping.set()
        released = self.projects.close_all()
        log.info("stopping on request: %d project(s) flushed and released", len(released))
        return StopResult(running=True, pid=os.getpid(), released=released)


def _root(text: str) -> Path:
    path = Path(text)
    if not path.is_absolute():
        raise UsageError(f"The daemon needs an absolute project root, not {text!r}.")
    return path


def run(
    *,
    idle_release: float = DEFAULT_IDLE_RELEASE,
    cpu_cap: float = DEFAULT_PERCENT,
    watch: list[str] | None = None,
) -> int:
    """Be the user's daemon until stopped; 0 also when another one runs already.
    `cpu_cap`: the share of the machine its background syncs take, on average."""
    os.umask(0o077)
    dp = daemon_paths()
    dp.create()
    fd = take_lock(dp)
    if fd is None:
        return 0
    log_to_file(dp.logs, dp.log_file.name, threads=True)
    stop = threading.Event()
    server: OwnerServer | None = None
    projects: Projects | None = None
    try:
        background_priority()
        write_atomic(dp.pid_file, f"{os.getpid()}\n", mode=0o600, durable=False)
        projects = Projects(
            idle_release=idle_release,
            threads=model_threads(),
            cap=CpuCap(cpu_cap),
            on_watched=lambda roots: _watched.save(dp.watched, roots),
        )
        daemon = Daemon(dp, projects, stop)
        server = OwnerServer(daemon, dp.socket, verbs=_protocol.VERBS, same_user_only=True)
        server.start()
        _stop_on_signals(stop)
        log.info(
            "cidx daemon started (pid %d, socket %s, background CPU cap %g %%)",
            os.getpid(),
            dp.socket,
            cpu_cap,
        )
        for root in [*_watched.load(dp.watched), *(watch or [])]:
            try:
                projects.watch(Path(root))
            except UsageError as exc:
                log.error("not watching %s: %s", root, exc.message)
        while not stop.wait(TICK_SECONDS):
            try:
                projects.tick()
            except Exception:
                log.exception("daemon round failed")
        return 0
    except Exception:
        log.exception("the cidx daemon failed")
        return 1
    finally:
        if projects is not None:
            projects.close_all()
        if server is not None:
            server.stop()
        with contextlib.suppress(FileNotFoundError):
            dp.pid_file.unlink()
        with contextlib.suppress(FileNotFoundError):
            dp.lock.unlink()
        os.close(fd)
        log.info("cidx daemon stopped")


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
