"""The daemon's typed requests and answers (carried as JSON over its socket)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# open: held for the commands that reach it; watched: kept live as files
# change; waiting: watched but another process owns it (taken when it
# exits); failed: could not be opened or kept live (see `error`).
ProjectState = Literal["open", "watched", "waiting", "failed"]


@dataclass(frozen=True)
class HeldProject:
    """One project the daemon holds or was asked to watch."""

    root: str
    state: ProjectState
    watched: bool
    # Seconds since a command last used it (None: never, since the daemon took it).
    idle_seconds: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class DaemonState:
    """What the daemon says about itself (`cidx status --daemon`)."""

    pid: int
    started_at: float
    uptime_seconds: float
    rss_bytes: int
    idle_release_seconds: float
    socket: str
    log_file: str
    projects: list[HeldProject] = field(default_factory=list)
    # The share of the machine's CPU its background syncs take, on average (100: no cap).
    cpu_cap_percent: float = 100.0


@dataclass(frozen=True)
class DaemonReport:
    """Whether the daemon runs, and if so its state."""

    running: bool
    daemon: DaemonState | None = None


@dataclass(frozen=True)
class AdoptRequest:
    root: str
    max_file_size: int | None = None


@dataclass(frozen=True)
class AdoptResult:
    root: str
    pid: int


@dataclass(frozen=True)
class ProjectRequest:
    root: str


@dataclass(frozen=True)
class WatchResult:
    """The answer to `cidx watch` or `cidx watch --stop` through the daemon."""

    root: str
    pid: int
    watched: bool  # watched now
    changed: bool  # it was not so before
    state: ProjectState | None = None
    error: str | None = None


@dataclass(frozen=True)
class StartResult:
    pid: int
    started: bool  # False: it was running already
    socket: str
    log_file: str
    watching: list[WatchResult] = field(default_factory=list)
    cpu_cap_percent: float = 100.0


@dataclass(frozen=True)
class StopResult:
    running: bool  # False: there was no daemon to stop
    pid: int | None = None
    released: list[str] = field(default_factory=list)
