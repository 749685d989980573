"""Keeping an owned index live: from file events (`watch`) or by rescanning (`sync`).

`LiveSync` runs a catch-up sync, then turns each batch of file events into a
sync of just those paths, and rescans everything every `rescan_interval`
seconds to recover any event the kernel dropped. `PeriodicSync` rescans
every `interval` seconds, for file systems without events (network mounts,
some containers). Both retry a failed sync with exponential backoff (a sync
is idempotent and crash-safe, so repeating one is always right), log one
line per batch or cycle, and report their state for `/healthz`. While the
index is paused (`cidx pause`) a sync waits for the pause to end, and the
file events that come meanwhile wait in the queue; a stop request ends the
wait.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cidx.errors import LockBusyError
from cidx.formatting import sync_counts
from cidx.holds import Stopping
from cidx.interrupts import wait_for
from cidx.logs import LogFormat
from cidx.messages import Health, IndexSummary
from cidx.owner.lock import read_owner
from cidx.project import project_paths, refuse_broad_root, require_writable
from cidx.service import WAIT_FOREVER, LocalIndex, WaitPolicy

if TYPE_CHECKING:
    from cidx.engine import Engine
    from cidx.watcher import FileWatcher

log = logging.getLogger("cidx.live")

DEFAULT_RESCAN_SECONDS = 600.0
MAX_BACKOFF_SECONDS = 60.0


def _extra(summary: IndexSummary) -> dict[str, object]:
    """Fields JSON log lines carry, so scripts need not parse the message."""
    return {
        "summary": {
            "scanned": summary.files_scanned,
            "added": summary.files_added,
            "modified": summary.files_modified,
            "deleted": summary.files_deleted,
            "embedded": summary.chunks_embedded,
            "reused": summary.chunks_reused,
            "seconds": round(summary.seconds, 4),
        }
    }


def _log_summary(summary: IndexSummary | None, label: str) -> None:
    """The one log line per sync, if it ran: `label: counts`, figures as fields."""
    if summary is not None:
        log.info("%s: %s", label, sync_counts(summary), extra=_extra(summary))


class _Keeper:
    """What both modes share: syncing with retries, and health."""

    mode = "none"

    def __init__(self, engine: Engine, *, max_retries: int = 5, backoff: float = 1.0) -> None:
        self.engine = engine
        self.max_retries = max_retries
        self.backoff = backoff
        self.last_error: str | None = None
        self.last_sync_at: float | None = None
        self._pending: dict[str, float] = {}  # path → when its first event came
        self._pending_lock = threading.Lock()
        engine.metrics.sync_lag.read = self.lag_seconds
        engine.metrics.queue_depth.read = lambda: float(self.queue_depth())

    def queue_depth(self) -> int:
        with self._pending_lock:
            return len(self._pending)

    def lag_seconds(self) -> float:
        with self._pending_lock:
            oldest = min(self._pending.values(), default=None)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def health(self) -> Health:
        now = time.time()
        return Health(
            ok=self.last_error is None and self.last_sync_at is not None,
            mode=self.mode,
            pid=os.getpid(),
            freshness_seconds=None if self.last_sync_at is None else now - self.last_sync_at,
            lag_seconds=self.lag_seconds(),
            queue_depth=self.queue_depth(),
            last_error=self.last_error,
            last_sync_at=(
                datetime.fromtimestamp(self.last_sync_at, UTC).isoformat(timespec="seconds")
                if self.last_sync_at
                else None
            ),
        )

    def sync_with_retries(
        self, stop: threading.Event, paths: Sequence[str] | None = None
    ) -> IndexSummary | None:
        """Sync, retrying with backoff; None if it kept failing or `stop` was set."""
        delay = self.backoff
        for attempt in range(1, self.max_retries + 1):
            try:
                summary = self._sync(paths)
            except Stopping:
                return None  # stopped while the index was paused
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
                log.error(
                    "sync failed (attempt %d of %d): %s", attempt, self.max_retries, self.last_error
                )
                if attempt == self.max_retries or wait_for(stop, delay):
                    return None
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
                continue
            self.last_error = None
            self.last_sync_at = time.time()
            return summary
        return None

    def _sync(self, paths: Sequence[str] | None) -> IndexSummary:
        return self.engine.sync(paths=paths)


class LiveSync(_Keeper):
    """Follows file events; the owner of a `cidx watch` or `cidx serve`."""

    mode = "watch"

    def __init__(
        self,
        engine: Engine,
        watcher: FileWatcher,
        *,
        rescan_interval: float = DEFAULT_RESCAN_SECONDS,
        max_retries: int = 5,
        backoff: float = 1.0,
    ) -> None:
        super().__init__(engine, max_retries=max_retries, backoff=backoff)
        self.watcher = watcher
        self.rescan_interval = rescan_interval
        self._wake = threading.Event()
        self.watch_error: BaseException | None = None

    def run(self, stop: threading.Event) -> None:
        thread = threading.Thread(target=self._watch, args=(stop,), name="cidx-watch", daemon=True)
        thread.start()
        # The loop below sleeps on `_wake`; a stop request must wake it too.
        threading.Thread(target=self._wake_on, args=(stop,), name="cidx-stop", daemon=True).start()
        _log_summary(self.sync_with_retries(stop), "catch-up sync")
        next_rescan = time.monotonic() + self.rescan_interval
        while not stop.is_set():
            woke = wait_for(self._wake, max(0.0, next_rescan - time.monotonic()))
            if stop.is_set():
                break
            if self.watch_error is not None:
                raise self.watch_error
            if woke:
                self._wake.clear()
                self._run_batch(stop)
            if time.monotonic() >= next_rescan:
                _log_summary(self.sync_with_retries(stop), "periodic rescan")
                next_rescan = time.monotonic() + self.rescan_interval
        thread.join(timeout=5)

    def _wake_on(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()

    def _watch(self, stop: threading.Event) -> None:
        try:
            for batch in self.watcher.batches(stop):
                now = time.time()
                with self._pending_lock:
                    for path in batch:
                        self._pending.setdefault(path, now)
                self._wake.set()
        except BaseException as exc:  # surfaced in the main loop
            self.watch_error = exc
            self._wake.set()

    def _run_batch(self, stop: threading.Event) -> None:
        with self._pending_lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        summary = self.sync_with_retries(stop, sorted(batch))
        if summary is None:
            # Keep the paths (and how long they have waited) for the next try.
            with self._pending_lock:
                for path, seen in batch.items():
                    self._pending.setdefault(path, seen)
            self._wake.set()
            return
        _log_summary(summary, f"{len(batch)} changed paths")


class PeriodicSync(_Keeper):
    """Rescans every `interval` seconds; the owner of a `cidx sync --interval`."""

    mode = "periodic"

    def __init__(
        self, engine: Engine, interval: float, *, max_retries: int = 5, backoff: float = 1.0
    ) -> None:
        super().__init__(engine, max_retries=max_retries, backoff=backoff)
        self.interval = interval
        self.cycles = 0

    def run(self, stop: threading.Event, *, once: bool = False) -> bool:
        """Run cycles until `stop` (or one, with `once`); False if the last one failed."""
        ok = True
        while not stop.is_set():
            self.cycles += 1
            started = time.monotonic()
            summary = self.sync_with_retries(stop)
            ok = summary is not None
            _log_summary(summary, f"cycle {self.cycles}")
            if once or wait_for(stop, max(0.0, self.interval - (time.monotonic() - started))):
                break
        return ok


LIVE_KINDS = frozenset({"watch", "sync", "serve"})


def run_owner(
    start: Path | None = None,
    *,
    kind: str,
    interval: float | None = None,
    once: bool = False,
    rescan_interval: float = DEFAULT_RESCAN_SECONDS,
    log_format: LogFormat = "human",
    wait: WaitPolicy = WAIT_FOREVER,
    on_ready: Callable[[Engine, _Keeper], Callable[[], None] | None] | None = None,
    force_polling: bool | None = None,
) -> bool:
    """Own the project's index and keep it live until SIGINT/SIGTERM.

    With `interval` the index is rescanned every `interval` seconds,
    otherwise it follows file events. `on_ready(engine, keeper)` runs once
    the index is open (the HTTP endpoint starts there) and may return a
    function to call on the way out. Returns False if the last sync failed.
    """
    from cidx.logs import setup_logging
    from cidx.service import open_index
    from cidx.watcher import FileWatcher

    paths = project_paths(start)
    current = read_owner(paths)
    if current is not None and current.kind in LIVE_KINDS:
        raise LockBusyError(
            f"{paths.root} is already kept live by {current.describe()}. Stop it first, "
            "or use that one: every cidx command on this project reaches it."
        )
    if not paths.exists():
        refuse_broad_root(paths.root)
    require_writable(paths)
    paths.create_index_dir()
    setup_logging(paths, fmt=log_format)
    stop = threading.Event()
    restore = stop_on_signals(stop)
    # What opening the index finds (a moved project) goes to this owner's log,
    # which is on stderr already.
    wait = dataclasses.replace(wait, on_notice=None)
    try:
        with open_index(
            paths.root, kind=kind, wait=wait, remote=False, live=interval is None
        ) as handle:
            assert isinstance(handle, LocalIndex)
            engine = handle.engine
            engine.long_lived = True  # it answers queries until stopped
            engine.staged = not once  # ...and has time to embed in the background
            threading.Thread(
                target=_end_waits_on, args=(stop, engine), name="cidx-stop-waits", daemon=True
            ).start()
            keeper: LiveSync | PeriodicSync
            if interval is None:
                watcher = FileWatcher(paths.root, force_polling=force_polling)
                keeper = LiveSync(engine, watcher, rescan_interval=rescan_interval)
            else:
                keeper = PeriodicSync(engine, interval)
            handle.operations.health = keeper.health
            cleanup = on_ready(engine, keeper) if on_ready is not None else None
            log.info(
                "cidx %s: owning %s (pid %d, %s)",
                kind,
                paths.root,
                os.getpid(),
                _how(interval, once=once, polling=bool(force_polling)),
            )
            try:
                if isinstance(keeper, PeriodicSync):
                    return keeper.run(stop, once=once)
                keeper.run(stop)
                return keeper.last_error is None
            finally:
                if cleanup is not None:
                    cleanup()
                log.info("cidx %s: stopping, index flushed", kind)
    finally:
        stop.set()
        restore()


def _end_waits_on(stop: threading.Event, engine: Engine) -> None:
    """Once `stop` is set, a sync waiting for a pause to end gives up."""
    stop.wait()
    engine.holds.stop_waiting()


def _how(interval: float | None, *, once: bool, polling: bool) -> str:
    """How an owner follows changes, for its first log line."""
    if interval is not None:
        return "one rescan" if once else f"rescan every {interval:g} s"
    return "polling the disk for changes" if polling else "file events"


def stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGINT and SIGTERM set `stop` (the owner then flushes and closes)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
