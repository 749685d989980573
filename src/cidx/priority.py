"""How background work yields: a lower scheduling priority for its thread.

The syncs of projects a daemon watches and the dense pass of a staged
sync run this way, so that queries (answered at full priority, between
their batches) and whatever else the user runs come first.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

__all__ = ["NICENESS", "background_priority"]

# How much lower than interactive work background work runs (nice(2) steps).
NICENESS = 10


def background_priority(*, thread: bool = False) -> None:
    """Lower the priority of background work: with `thread`, of the calling
    thread only, where the kernel allows it (Linux; threads it starts
    inherit it), so that the syncs of watched projects yield to everything
    else while the daemon answers queries at full priority; otherwise (or
    without `thread`, where that is not possible) of the whole process."""
    if thread != sys.platform.startswith("linux"):
        return  # Linux: per thread, nothing to do for the process; elsewhere the reverse
    with contextlib.suppress(OSError):
        if thread:
            tid = threading.get_native_id()
            now = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, now + NICENESS))
        else:
            os.nice(NICENESS)
