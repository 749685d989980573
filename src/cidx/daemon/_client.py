"""Reaching the user's daemon: start it, stop it, ask it for its state or a project.

These are the core functions the front ends call. Each connects to the
daemon socket for one request (`cidx.owner.client`); "no daemon" is an
answer (`DaemonReport(running=False)`, None, False), not an error, except
where the user asked the daemon for something only it can do.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
from pathlib import Path

from cidx.daemon import _protocol, _settings
from cidx.daemon._messages import (
    AdoptRequest,
    DaemonReport,
    DaemonState,
    ProjectRequest,
    StartResult,
    StopResult,
    WatchResult,
)
from cidx.daemon._paths import DaemonPaths, daemon_paths
from cidx.errors import CidxError, LockBusyError, OwnerError, UsageError
from cidx.messages import NoArgs
from cidx.owner.client import OwnerClient, OwnerUnavailable
from cidx.owner.lock import pid_alive
from cidx.project import find_root

log = logging.getLogger(__name__)

# How long `cidx start` waits for a new daemon to answer, and `cidx stop`
# for a stopped one's process to end.
START_SECONDS = 60.0
STOP_SECONDS = 60.0


def _client(dp: DaemonPaths | None = None) -> OwnerClient:
    return OwnerClient((dp or daemon_paths()).socket)


def _state(dp: DaemonPaths | None = None) -> DaemonState | None:
    try:
        return _client(dp).call(_protocol.STATE, NoArgs())
    except (OwnerUnavailable, OwnerError):
        return None


def status() -> DaemonReport:
    """Whether the daemon runs, and what it holds (`cidx status --daemon`)."""
    state = _state()
    return DaemonReport(running=state is not None, daemon=state)


def start(
    watch: list[Path] | None = None,
    *,
    idle_release: float | None = None,
    cpu_cap: float | None = None,
) -> StartResult:
    """Start the daemon unless it runs, then have it watch `watch` (idempotent).
    `cpu_cap`: its background CPU cap in percent (None: the settings file's)."""
    dp = daemon_paths()
    state = _state(dp)
    started = state is None
    if state is None:
        state = _launch(dp, idle_release, _settings.cpu_cap(cpu_cap))
    watching = [keep_live_at(dp, find_root(path)) for path in watch or []]
    return StartResult(
        pid=state.pid,
        started=started,
        socket=str(dp.socket),
        log_file=str(dp.log_file),
        watching=watching,
        cpu_cap_percent=state.cpu_cap_percent,
    )


def run_here(
    watch: list[Path] | None = None,
    *,
    idle_release: float | None = None,
    cpu_cap: float | None = None,
) -> int:
    """Be the daemon in this process until stopped (`cidx start --foreground`, for
    service managers: systemd, launchd); its exit code. Nothing happens (0)
    when a daemon runs already."""
    from cidx.daemon._process import DEFAULT_IDLE_RELEASE, run

    return run(
        idle_release=DEFAULT_IDLE_RELEASE if idle_release is None else idle_release,
        cpu_cap=_settings.cpu_cap(cpu_cap),
        watch=[str(find_root(path)) for path in watch or []],
    )


def _launch(dp: DaemonPaths, idle_release: float | None, cpu_cap: float) -> DaemonState:
    """Start a detached daemon process and wait until it answers."""
    dp.create()
    command = [sys.executable, "-m", "cidx.daemon", "--cpu-cap", repr(cpu_cap)]
    if idle_release is not None:
        command += ["--idle-release", repr(idle_release)]
    # Only what fails before logging is set up ever reaches this file.
    with open(dp.log_file, "ab") as early:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=early,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        state = _state(dp)
        if state is not None:
            return state
        code = proc.poll()
        # Exit code 0 is a daemon that found another one starting: wait for that one.
        if code not in (None, 0):
            raise OwnerError(
                f"The cidx daemon could not start (exit code {code}). Its log is {dp.log_file}."
            )
        time.sleep(0.05)
    raise OwnerError(
        f"The cidx daemon did not answer within {START_SECONDS:g} s. Its log is {dp.log_file}."
    )


def stop() -> StopResult:
    """Stop the daemon: every index flushed and released, the process gone."""
    dp = daemon_paths()
    try:
        result = _client(dp).call(_protocol.STOP, NoArgs())
    except (OwnerUnavailable, OwnerError):
        return StopResult(running=False)
    assert result.pid is not None
    deadline = time.monotonic() + STOP_SECONDS
    while not _gone(result.pid):
        if time.monotonic() > deadline:
            raise OwnerError(
                f"The cidx daemon (pid {result.pid}) released every index but did not exit "
                f"within {STOP_SECONDS:g} s. `kill {result.pid}` ends it; its log is "
                f"{dp.log_file}."
            )
        time.sleep(0.05)
    return result


def _gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie waiting for its parent counts as gone)."""
    if not pid_alive(pid):
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    return False


def keep_live(start_at: Path | None = None) -> WatchResult | None:
    """Ask the daemon to keep the project live (`cidx watch`); None with no daemon."""
    dp = daemon_paths()
    if _state(dp) is None:
        return None
    return keep_live_at(dp, find_root(start_at))


def keep_live_at(dp: DaemonPaths, root: Path) -> WatchResult:
    return _client(dp).call(_protocol.WATCH, ProjectRequest(str(root)))


def stop_watching(start_at: Path | None = None) -> WatchResult:
    """Ask the daemon to stop keeping the project live (`cidx watch --stop`)."""
    root = find_root(start_at)
    try:
        return _client().call(_protocol.UNWATCH, ProjectRequest(str(root)))
    except OwnerUnavailable:
        raise UsageError(
            f"No cidx daemon runs, so nothing watches {root} in the background. A `cidx watch` "
            "started in a terminal stops with Ctrl-C."
        ) from None


def adopt(root: Path, max_file_size: int | None = None) -> bool:
    """Whether the daemon, if one runs, took ownership of the project's index."""
    dp = daemon_paths()
    if not dp.socket.exists():
        return False
    try:
        _client(dp).call(_protocol.ADOPT, AdoptRequest(str(root), max_file_size))
    except OwnerUnavailable:
        return False
    except CidxError as exc:
        # Busy, damaged, not ours: this command finds out for itself.
        log.info("the cidx daemon did not take %s: %s", root, exc.message)
        return False
    return True


def release(root: Path) -> bool:
    """Ask the daemon to give the project up (a command needs the index to
    itself); whether it did. LockBusyError, naming the next step, when the
    daemon keeps the project live: waiting for it would never end."""
    dp = daemon_paths()
    if not dp.socket.exists():
        return False
    try:
        _client(dp).call(_protocol.RELEASE, ProjectRequest(str(root)))
    except LockBusyError:
        raise
    except (OwnerUnavailable, CidxError):
        return False
    return True
