"""The per-user daemon: one warm process holding every project a user works on.

`cidx start` launches it (`_client.start`), `cidx stop` ends it. While it
runs, a command in a project nobody owns asks it to take the index
(`adopt`, called by `cidx.service.open_index`): it holds the project's
owner lock and serves the project's socket like any owner, with one model
shared by all projects, and releases an idle project after a while.
`cidx watch` asks it to keep a project live (`keep_live`); the watched list
survives restarts. The process side is `_process` and `_projects`; the
socket's verbs are `_protocol`; its files are `_paths`.
"""

from cidx.daemon._client import (
    adopt,
    keep_live,
    release,
    run_here,
    start,
    status,
    stop,
    stop_watching,
)
from cidx.daemon._messages import (
    DaemonReport,
    DaemonState,
    HeldProject,
    StartResult,
    StopResult,
    WatchResult,
)
from cidx.daemon._paths import DaemonPaths, daemon_paths

# The kind an index's owner record names while the daemon holds it.
DAEMON_KIND = "daemon"

__all__ = [
    "DAEMON_KIND",
    "DaemonPaths",
    "DaemonReport",
    "DaemonState",
    "HeldProject",
    "StartResult",
    "StopResult",
    "WatchResult",
    "adopt",
    "daemon_paths",
    "keep_live",
    "release",
    "run_here",
    "start",
    "status",
    "stop",
    "stop_watching",
]
