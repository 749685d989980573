"""Where cidx keeps what belongs to a user rather than to one project.

Per project, everything lives in the project's `.code-indexer/`. Per user:

    data     the global store (projects in `global` storage mode) and its
             registry                        $CIDX_DATA_DIR, else $XDG_DATA_HOME/cidx,
                                             else ~/.local/share/cidx
    state    daemon state, the watched-projects list
                                             $CIDX_STATE_DIR, else $XDG_STATE_HOME/cidx,
                                             else ~/.local/state/cidx
    logs     logs of failures outside any project, the daemon's log
                                             $CIDX_LOG_DIR, else <state>/logs
    cache    what can be rebuilt at any time (read-only snapshots)
                                             $CIDX_CACHE_DIR, else $XDG_CACHE_HOME/cidx,
                                             else ~/.cache/cidx
    runtime  sockets                         $XDG_RUNTIME_DIR/cidx, else <cache>/run

The `CIDX_*` variables let cidx run in a container with its data on named
volumes. Folders are created private to the user (0700) when first needed.
"""

from __future__ import annotations

import os
from pathlib import Path

from cidx.fsutil import private_dir

__all__ = ["cache_dir", "data_dir", "log_dir", "runtime_dir", "state_dir"]


def _base(own: str, xdg: str, default: str) -> Path:
    explicit = os.environ.get(own)
    if explicit:
        return Path(explicit).expanduser()
    xdg_value = os.environ.get(xdg)
    root = Path(xdg_value) if xdg_value and Path(xdg_value).is_absolute() else Path.home() / default
    return root / "cidx"


def data_dir() -> Path:
    return _base("CIDX_DATA_DIR", "XDG_DATA_HOME", ".local/share")


def state_dir() -> Path:
    return _base("CIDX_STATE_DIR", "XDG_STATE_HOME", ".local/state")


def cache_dir() -> Path:
    return _base("CIDX_CACHE_DIR", "XDG_CACHE_HOME", ".cache")


def log_dir() -> Path:
    explicit = os.environ.get("CIDX_LOG_DIR")
    return Path(explicit).expanduser() if explicit else state_dir() / "logs"


def runtime_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_absolute():
        return Path(runtime) / "cidx"
    return cache_dir() / "run"


def ensure(folder: Path) -> Path:
    """`folder`, created private to this user if missing."""
    private_dir(folder)
    return folder
