"""The exclusive lock that makes one process the owner of a project's index.

`flock` on `.code-indexer/owner.lock`: the kernel drops it when the owner
dies, however it dies, so a lock can never be left stale. Who holds it is
recorded in `owner.json` (pid, what kind of process, when it started) for
messages and `cidx status`; that file is advisory only, and a pid in it
that is no longer alive is treated as stale.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cidx.errors import AccessError, DiskFullError
from cidx.fsutil import disk_full, is_no_space, write_atomic
from cidx.project import ProjectPaths


@dataclass(frozen=True)
class OwnerInfo:
    pid: int
    kind: str  # "index", "query", "watch", "sync", "serve", "mcp", ...
    started_at: float

    def describe(self) -> str:
        return f"`cidx {self.kind}` (pid {self.pid})"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_owner(paths: ProjectPaths) -> OwnerInfo | None:
    """The recorded owner, if the record is readable and its pid still lives."""
    try:
        data = json.loads(paths.owner_info.read_text(encoding="utf-8"))
        info = OwnerInfo(
            pid=int(data["pid"]), kind=str(data["kind"]), started_at=float(data["started_at"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if pid_alive(info.pid) else None


class OwnerLock:
    """Held for as long as this process owns the project's index."""

    def __init__(self, paths: ProjectPaths, kind: str) -> None:
        self.paths = paths
        self.kind = kind
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        try:
            self.paths.create_index_dir()
            fd = os.open(self.paths.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if is_no_space(exc):
                raise disk_full(self.paths.index_dir) from None
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            raise AccessError(
                f"Cannot take the lock {self.paths.lock_file}: {exc.strerror}. The index of "
                f"{self.paths.root} is read-only for you; run cidx as the user who owns the "
                "project, or in a copy of it you can write."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        info = OwnerInfo(pid=os.getpid(), kind=self.kind, started_at=time.time())
        try:
            # Advisory, rewritten by every owner: not worth an fsync per command.
            write_atomic(self.paths.owner_info, json.dumps(asdict(info)), durable=False)
        except (OSError, DiskFullError):
            # The record only names the owner in messages; a full disk must not
            # stop a command that reads the index. No record beats a stale one.
            with contextlib.suppress(OSError):
                self.paths.owner_info.unlink()
        return True

    def acquire(self, poll: float = 0.1) -> None:
        """Take the lock, however long the current owner keeps it (see
        `cidx.service` for waiting with a limit)."""
        while not self.try_acquire():
            time.sleep(poll)

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove the record before unlocking, so a reader never sees our pid
        # attached to a lock someone else now holds.
        with contextlib.suppress(OSError):
            data = json.loads(self.paths.owner_info.read_text(encoding="utf-8"))
            if data.get("pid") == os.getpid():
                self.paths.owner_info.unlink()
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OwnerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_is_held(path: Path) -> bool:
    """Whether some process holds the flock on `path` right now."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
