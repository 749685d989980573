"""`cidx pause` and `cidx resume`: keeping an index still while it is copied.

A pause asks the process that owns the index to stop writing, flush (so its
files are complete by themselves, see `cidx.flush`) and hold every write
until `cidx resume` or the pause's timeout (a hold, `cidx.holds`). Queries
are still answered, from the index as it is; a watcher's file events wait
in its queue and are applied on resume.

When no process owns the index, `cidx pause` starts one that does nothing
else: a detached holder (an owner of kind "pause") that takes the lock,
serves the socket — so queries and `cidx status` are answered, without
syncing — and exits on resume or at the timeout. So the index is held for
as long as the pause lasts whoever asks for it meanwhile, and a pause that
is forgotten ends by itself.

`paused` is the same for a command that copies the index itself (`cidx
clone`): it pauses the owner for as long as the copy takes (renewing the
pause while it runs), or holds the lock itself when there is no owner, and
says whether the pause held throughout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cidx.errors import ERROR_CLASSES, CidxError, NoIndexError, OwnerError, UsageError
from cidx.interrupts import wait_for
from cidx.messages import PauseRequest, PauseState, ResumeRequest, ResumeResult
from cidx.operations import MAX_PAUSE_SECONDS
from cidx.owner import protocol
from cidx.owner.client import OwnerClient, OwnerUnavailable
from cidx.owner.lock import OwnerLock, lock_is_held, read_owner
from cidx.owner.waiting import WAIT_FOREVER, WaitPolicy, take_lock
from cidx.owner.wire import from_jsonable, to_jsonable
from cidx.project import ProjectPaths, project_paths

__all__ = [
    "DEFAULT_PAUSE_SECONDS",
    "Paused",
    "hold",
    "pause",
    "paused",
    "resume",
]

log = logging.getLogger(__name__)

# A forgotten pause ends by itself after this long.
DEFAULT_PAUSE_SECONDS = 600.0
# How long the pause of a copy lasts unless renewed, and how often it is:
# a copy that dies leaves the owner paused for at most this long.
COPY_HOLD_SECONDS = 60.0
COPY_RENEW_SECONDS = 15.0
# How long `cidx resume` waits for a holder to exit after ending its pause.
HOLDER_EXIT_SECONDS = 30.0


def _require_index(paths: ProjectPaths, command: str) -> None:
    if not paths.exists():
        raise NoIndexError(
            f"There is no cidx index in {paths.root}: nothing to {command}. Run `cidx {command}` "
            "in a project with an index (`cidx status` shows whether a folder has one)."
        )


def _check_seconds(seconds: float) -> None:
    if not 0 < seconds <= MAX_PAUSE_SECONDS:
        raise UsageError(
            f"--timeout must be more than 0 and at most {MAX_PAUSE_SECONDS:g} seconds, not "
            f"{seconds:g}."
        )


# -- cidx pause / cidx resume --------------------------------------------------


def pause(
    start: Path | None = None,
    *,
    seconds: float = DEFAULT_PAUSE_SECONDS,
    wait: WaitPolicy = WAIT_FOREVER,
) -> PauseState:
    """Pause the project's index for `seconds` (or until `resume`).

    Through its owner when one runs; otherwise a detached holder is started
    and this returns once it holds the index.
    """
    _check_seconds(seconds)
    paths = project_paths(start)
    _require_index(paths, "pause")
    request = PauseRequest("cidx pause", os.getpid(), seconds, wait_seconds=wait.timeout)
    client = OwnerClient(paths.socket_path)
    for _attempt in range(5):
        try:
            return client.call(protocol.PAUSE, request)
        except OwnerUnavailable:
            pass
        state = _start_holder(paths, seconds, wait)
        if state is not None:
            return state
        # Another owner appeared meanwhile and the holder gave way: pause it.
    raise OwnerError(
        f"Could not pause the index of {paths.root}: its owner kept changing. Run "
        "`cidx pause` again."
    )


def resume(start: Path | None = None) -> ResumeResult:
    """End every pause of the project's index (a no-op when it is not paused)."""
    paths = project_paths(start)
    _require_index(paths, "resume")
    owner = read_owner(paths)
    try:
        result = OwnerClient(paths.socket_path).call(protocol.RESUME, ResumeRequest())
    except OwnerUnavailable:
        return ResumeResult(str(paths.root), [], [], True, None)
    if owner is not None and owner.kind == "pause" and not result.remaining:
        # The holder exits now; a command run next must not meet it on its way out.
        deadline = time.monotonic() + HOLDER_EXIT_SECONDS
        while lock_is_held(paths.lock_file) and time.monotonic() < deadline:
            time.sleep(0.02)
    return result


# -- the detached holder -------------------------------------------------------


def _start_holder(paths: ProjectPaths, seconds: float, wait: WaitPolicy) -> PauseState | None:
    """Start a holder and wait until it holds the index: its state, or None
    when an owner appeared meanwhile (and the holder exited, giving way)."""
    command = [
        sys.executable,
        "-m",
        "cidx",
        "pause",
        "--hold",
        "--timeout",
        repr(seconds),
        "--by-pid",
        str(os.getpid()),
    ]
    if wait.timeout is not None:
        command += ["--wait-timeout", repr(wait.timeout)]
    proc = subprocess.Popen(
        command,
        cwd=paths.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not stopped with this command's terminal or group
    )
    assert proc.stdout is not None
    with proc.stdout:
        line = proc.stdout.readline()
    if not line:
        code = proc.wait()
        raise OwnerError(
            f"The process started to hold the pause of {paths.root} exited (code {code}) "
            f"before holding it. Its log is {paths.logs_dir / 'cidx.log'}; run `cidx pause` "
            "again."
        )
    message = json.loads(line)
    if message.get("ok"):
        return from_jsonable(PauseState, message["state"])
    proc.wait()
    if message.get("class") == OWNER_APPEARED:
        return None
    cls = ERROR_CLASSES.get(str(message.get("class")), CidxError)
    raise cls(str(message.get("message")))


def hold(
    start: Path | None = None,
    *,
    seconds: float,
    by_pid: int,
    wait: WaitPolicy = WAIT_FOREVER,
    ready: Callable[[str], None],
) -> None:
    """Run as the detached holder: own the index, pause it, and wait for the
    pause to end (resume, timeout, or SIGTERM); then close it and return.

    `ready` is given one JSON line for the process that started this one:
    the pause's state, or the error that kept it from holding the index
    (`OwnerAppeared` when another process became the owner meanwhile: that
    one is then paused instead).
    """
    from cidx.service import LocalIndex, open_index

    paths = project_paths(start)
    told = False

    def tell(message: dict[str, object]) -> None:
        nonlocal told
        if not told:
            told = True
            ready(json.dumps(message, ensure_ascii=False))

    ended = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: ended.set())
    try:
        with open_index(paths.root, kind="pause", wait=wait) as handle:
            if not isinstance(handle, LocalIndex):
                tell({"ok": False, "class": OWNER_APPEARED, "message": ""})
                return
            engine = handle.engine
            engine.long_lived = True  # it answers queries until the pause ends
            engine.holds.on_open(ended.set)
            state = handle.pause(PauseRequest("cidx pause", by_pid, seconds))
            tell({"ok": True, "state": to_jsonable(state)})
            log.info("holding the pause of %s for %g s", paths.root, seconds)
            if engine.holds.closed:
                wait_for(ended)
            log.info("the pause of %s ended: releasing the index", paths.root)
    except CidxError as exc:
        tell({"ok": False, "class": type(exc).__name__, "message": exc.message})
        raise


# What a holder answers when another process became the owner before it.
OWNER_APPEARED = "OwnerAppeared"


# -- a pause for the length of a copy -----------------------------------------


@dataclass
class Paused:
    """A pause held by this process while it copies the index."""

    paths: ProjectPaths
    # The owner paused ("`cidx watch` (pid 12)"), or None when this process
    # holds the lock itself (no process had the index open).
    owner: str | None
    state: PauseState | None
    held_throughout: bool = True


@contextlib.contextmanager
def paused(paths: ProjectPaths, *, by: str, wait: WaitPolicy = WAIT_FOREVER) -> Iterator[Paused]:
    """Keep the index at `paths` still for the length of the block.

    Through its owner (paused, and the pause renewed every few seconds), or,
    with no owner, by holding the lock. On the way out the pause is ended;
    `Paused.held_throughout` says whether it held all along (an owner that
    died, or a pause that someone else ended, did not).
    """
    client = OwnerClient(paths.socket_path)
    request = PauseRequest(by, os.getpid(), COPY_HOLD_SECONDS, wait_seconds=wait.timeout)
    kind = by.removeprefix("cidx ")

    def reach() -> PauseState | None:
        try:
            return client.call(protocol.PAUSE, request)
        except OwnerUnavailable:
            return None

    lock = OwnerLock(paths, kind)
    state = reach()
    if state is None:
        state = take_lock(lock, paths, wait, reach)
    if state is None:
        try:
            yield Paused(paths, None, None)
        finally:
            lock.release()
        return
    owner = read_owner(paths)
    pause = Paused(paths, owner.describe() if owner else f"pid {state.pid}", state)
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(client, request, state.token, stop, pause), daemon=True
    )
    renewer.start()
    try:
        yield pause
    finally:
        stop.set()
        renewer.join()
        try:
            result = client.call(protocol.RESUME, ResumeRequest(state.token))
            pause.held_throughout = pause.held_throughout and result.found
        except (OwnerUnavailable, OwnerError):
            pause.held_throughout = False


def _renew(
    client: OwnerClient, request: PauseRequest, token: str, stop: threading.Event, pause: Paused
) -> None:
    """Renew the pause `token` until `stop`; a pause found ended stays ended."""
    renewal = PauseRequest(request.by, request.pid, request.seconds, token=token)
    while not stop.wait(COPY_RENEW_SECONDS):
        try:
            state = client.call(protocol.PAUSE, renewal)
        except (OwnerUnavailable, CidxError):
            pause.held_throughout = False
            return
        if state.token != token:
            # The pause had ended (someone resumed it): the copy is not
            # consistent any more, and the new pause is not wanted.
            with contextlib.suppress(OwnerUnavailable, CidxError):
                client.call(protocol.RESUME, ResumeRequest(state.token))
            pause.held_throughout = False
            return
