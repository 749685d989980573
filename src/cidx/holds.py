"""Holds on an open index's writes: who paused it, and until when.

`cidx pause` and `cidx clone` ask the process that owns an index to stop
writing for a while. Each such request is a hold with a deadline: while any
hold is in effect the engine starts no write (a sync waits for the holds to
end, see `Engine.writing`), searches are answered from the index as it is,
and a live owner's file events wait in its queue. A hold ends when its
holder releases it (`cidx resume`, or the end of a clone) or at its
deadline, so a pause that is forgotten, or whose holder died, never blocks
indexing for longer than its timeout.

Holds live in the owner's memory only: when the owner exits, its lock is
released and nothing is held any more.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cidx.formatting import duration
from cidx.messages import PauseHold

__all__ = ["Hold", "Holds", "Stopping"]

log = logging.getLogger(__name__)


class Stopping(Exception):
    """The index is closing: a write that waited for the holds to end will not run."""


@dataclass(frozen=True)
class Hold:
    """One request to keep an index from being written."""

    token: str
    by: str  # the command that holds it: "cidx pause", "cidx clone"
    pid: int  # the process that asked
    since: float  # unix time
    until: float  # unix time
    deadline: float  # time.monotonic() at `until`

    def view(self) -> PauseHold:
        """How the hold is reported (status, pause and resume answers)."""
        return PauseHold(
            by=self.by,
            pid=self.pid,
            since=_iso(self.since),
            until=_iso(self.until),
            seconds_left=max(0.0, self.deadline - time.monotonic()),
        )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class Holds:
    """The holds on one open index; thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holds: dict[str, Hold] = {}
        self._listeners: list[Callable[[], None]] = []
        self._timer: threading.Timer | None = None
        self._stopping = False

    # -- holding and releasing ---------------------------------------------

    def add(self, by: str, pid: int, seconds: float, token: str | None = None) -> tuple[Hold, bool]:
        """Hold writes for `seconds`: (the hold, whether it is new).

        With the `token` of a hold still in effect, that hold is renewed
        for `seconds` from now instead (a long copy keeps its pause so).
        """
        now, mono = time.time(), time.monotonic()
        with self._cond:
            self._prune()
            current = self._holds.get(token) if token else None
            if current is not None:
                hold = replace(current, until=now + seconds, deadline=mono + seconds)
            else:
                hold = Hold(secrets.token_hex(8), by, pid, now, now + seconds, mono + seconds)
            self._holds[hold.token] = hold
            self._arm()
        return hold, current is None

    def release(self, token: str | None = None) -> tuple[list[Hold], bool]:
        """End the hold `token` (every hold when None): (the holds ended, and
        whether `token`'s hold was still in effect)."""
        with self._cond:
            self._prune()
            if token is None:
                ended = list(self._holds.values())
                self._holds.clear()
            else:
                hold = self._holds.pop(token, None)
                ended = [hold] if hold is not None else []
            found = bool(ended) if token is not None else True
            self._arm()
            opened = not self._holds and bool(ended)
            self._cond.notify_all()
        if opened:
            self._tell()
        return ended, found

    def active(self) -> list[Hold]:
        """The holds in effect now, the longest first."""
        with self._cond:
            self._prune()
            return sorted(self._holds.values(), key=lambda h: -h.deadline)

    @property
    def closed(self) -> bool:
        """Whether writes are held now."""
        with self._cond:
            self._prune()
            return bool(self._holds)

    def seconds_left(self) -> float | None:
        """How long writes stay held unless released sooner (None: not held)."""
        holds = self.active()
        return holds[0].view().seconds_left if holds else None

    # -- waiting -----------------------------------------------------------

    def wait_open(self) -> None:
        """Return once no hold is in effect; `Stopping` if the index closes first."""
        with self._cond:
            while True:
                if self._stopping:
                    raise Stopping
                self._prune()
                if not self._holds:
                    return
                nearest = min(h.deadline for h in self._holds.values())
                self._cond.wait(max(0.0, nearest - time.monotonic()))

    def on_open(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever the last hold ends (released or expired)."""
        with self._cond:
            self._listeners.append(listener)

    def stop_waiting(self) -> None:
        """Make every write waiting for the holds (and every later one) give up."""
        with self._cond:
            self._stopping = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._cond.notify_all()

    # -- expiry ------------------------------------------------------------

    def _prune(self) -> None:
        """Drop the holds whose deadline passed (caller holds the condition)."""
        now = time.monotonic()
        for token, hold in list(self._holds.items()):
            if hold.deadline <= now:
                del self._holds[token]
                log.warning(
                    "the pause by %s (pid %d) expired after %s: writes resume",
                    hold.by,
                    hold.pid,
                    duration(hold.until - hold.since),
                )

    def _arm(self) -> None:
        """Wake waiters and listeners at the nearest deadline (caller holds the condition)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._holds or self._stopping:
            return
        nearest = min(h.deadline for h in self._holds.values())
        timer = threading.Timer(max(0.0, nearest - time.monotonic()) + 0.01, self._expire)
        timer.daemon = True
        timer.name = "cidx-hold-expiry"
        self._timer = timer
        timer.start()

    def _expire(self) -> None:
        with self._cond:
            had = bool(self._holds)
            self._prune()
            opened = had and not self._holds
            self._arm()
            self._cond.notify_all()
        if opened:
            self._tell()

    def _tell(self) -> None:
        with self._cond:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
