"""Waiting in the main thread without missing SIGINT or SIGTERM.

Python runs a signal handler only in the main thread, between two bytecodes.
The kernel may deliver a signal sent to the process to any of its threads;
when it picks another one, a main thread blocked in `Event.wait(timeout)` is
not woken, and the handler (which sets the event a long-lived owner waits
for) runs only when that wait times out — minutes later, or never. So a
main thread that waits for a stop request waits in short slices
(`wait_for`), and a handler runs within one slice of its signal.
"""

from __future__ import annotations

import threading
import time

__all__ = ["SLICE_SECONDS", "wait_for"]

SLICE_SECONDS = 0.25


def wait_for(event: threading.Event, timeout: float | None = None) -> bool:
    """`event.wait(timeout)`, letting signal handlers run meanwhile: True once
    `event` is set, False when `timeout` seconds pass first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = (
            SLICE_SECONDS if deadline is None else min(SLICE_SECONDS, deadline - time.monotonic())
        )
        if left <= 0:
            return event.is_set()
        if event.wait(left):
            return True
