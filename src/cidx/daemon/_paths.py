"""Where the per-user daemon keeps its socket, lock, pid file, log and watched list.

The socket, the lock and the pid file are runtime files: in
`$XDG_RUNTIME_DIR/cidx/` (or the user cache folder's `run/`), a folder only
the user can enter. The watched list is state that outlives the daemon
(`cidx start` resumes it), in the user state folder; the log is in the
user log folder (`cidx.userdirs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cidx import userdirs


@dataclass(frozen=True)
class DaemonPaths:
    """The files of the daemon of the user running this process."""

    runtime: Path
    state: Path
    logs: Path

    @property
    def socket(self) -> Path:
        return self.runtime / "daemon.sock"

    @property
    def lock(self) -> Path:
        return self.runtime / "daemon.lock"

    @property
    def pid_file(self) -> Path:
        return self.runtime / "daemon.pid"

    @property
    def watched(self) -> Path:
        return self.state / "watched.json"

    @property
    def log_file(self) -> Path:
        return self.logs / "daemon.log"

    def create(self) -> None:
        """The daemon's folders, private to the user."""
        for folder in (self.runtime, self.state, self.logs):
            userdirs.ensure(folder)


def daemon_paths() -> DaemonPaths:
    return DaemonPaths(
        runtime=userdirs.runtime_dir(), state=userdirs.state_dir(), logs=userdirs.log_dir()
    )
