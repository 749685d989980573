"""A cap on the CPU a process's background work takes, on average.

`CpuCap.pace` is called by bulk work between two of its batches (the
embedder does, between model batches): it compares the CPU time the whole
process used since the last call with what the cap allows for the wall
time that passed, and sleeps off any excess, so background indexing
averages at most `percent` of the machine (all cores together). Credit
saved while idle is kept for at most `BURST_SECONDS`, so a sync after a
quiet hour does not run flat out for long.

Only threads marked with `background()` are ever paced: a sync a query
asked for (a project the daemon holds without watching it) runs at full
speed, and a query's own embedding never passes through here at all. CPU
a query uses still counts against the cap, so background work yields it
back afterwards.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

DEFAULT_PERCENT = 50.0
# The most CPU time, in seconds of the cap's full rate, that idle time banks.
BURST_SECONDS = 2.0


class CpuCap:
    """At most `percent` of the machine's CPU, on average, for background work."""

    def __init__(
        self,
        percent: float = DEFAULT_PERCENT,
        *,
        cpus: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.percent = percent
        # CPU seconds the process may use per wall second.
        self.rate = percent / 100 * (cpus or os.cpu_count() or 1)
        self._clock, self._cpu_clock, self._sleep = clock, cpu_clock, sleep
        self._lock = threading.Lock()
        self._local = threading.local()
        # CPU used before the first pause counts too (loading the model, say).
        self._mark = (clock(), cpu_clock())
        self._credit = 0.0
        self.slept = 0.0  # seconds of pauses so far, for logs and tests

    @property
    def off(self) -> bool:
        return self.percent >= 100

    @contextlib.contextmanager
    def background(self) -> Iterator[None]:
        """Mark the calling thread's work as background (paced) while inside."""
        before = getattr(self._local, "on", False)
        self._local.on = True
        try:
            yield
        finally:
            self._local.on = before

    def pace(self) -> float:
        """Sleep as long as this process is over the cap (background threads
        only); the seconds slept."""
        if self.off or not getattr(self._local, "on", False):
            return 0.0
        with self._lock:
            now, cpu = self._clock(), self._cpu_clock()
            then, cpu_then = self._mark
            self._mark = (now, cpu)
            earned = (now - then) * self.rate - (cpu - cpu_then)
            self._credit = min(self._credit + earned, BURST_SECONDS * self.rate)
            wait = -self._credit / self.rate if self._credit < 0 else 0.0
            self.slept += wait
        if wait:
            # The sleep itself earns back the debt: the next call sees its wall time.
            self._sleep(wait)
        return wait
