"""An owner's background dense pass: the thread that finishes a staged sync.

An owner that keeps running (`cidx watch`, the daemon, `cidx serve`, the
MCP server) syncs in stages: a sync with much to embed returns once the
BM25 vectors are stored, and this worker then runs the dense pass
(`cidx.indexer.DensePass`) one batch at a time, at low priority
(`cidx.priority`): each batch is planned and written under the owner's
write lock, and embedded without it, so a sync, a pause or a close never
waits for the model (at most for a batch's reads or writes); searches
never wait at all (the embedder serves a query before the next bulk batch).
A batch that fails is tried again after a pause; the work it left stays
marked in the manifest, so an owner that stops (or is killed) leaves it to
the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from cidx.errors import CidxError
from cidx.holds import Stopping
from cidx.indexer import DensePass, DenseStep
from cidx.priority import background_priority

log = logging.getLogger("cidx.indexer")

__all__ = ["DenseWorker"]

# After a failed batch, the worker waits this long before trying again.
RETRY_SECONDS = 30.0


class DenseWorker:
    """Runs batches of the dense pass `dense()` gives, planning and writing
    each under `writing`, until nothing is pending; `wake` starts it again
    after a sync left more."""

    def __init__(
        self,
        dense: Callable[[], DensePass],
        writing: Callable[[], AbstractContextManager[None]],
        on_step: Callable[[DenseStep], None],
    ) -> None:
        self._dense = dense
        self._writing = writing
        self._on_step = on_step
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """Whether the worker has (or may have) dense vectors left to make."""
        return not self._idle.is_set()

    def wake(self) -> None:
        """Look for pending work (a sync just left some), starting the thread if needed."""
        with self._lock:
            if self._stop.is_set():
                return
            self._idle.clear()
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cidx-dense", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """End the thread after the batch in progress; what is left stays pending."""
        with self._lock:
            self._stop.set()
            self._wake.set()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=120)

    def _batch(self) -> DenseStep | None:
        """One batch: None when nothing is pending (or the worker is stopping)."""
        with self._writing():
            if self._stop.is_set():
                return None
            dense = self._dense()
            batch = dense.plan()
        if batch is None:
            return None
        dense.embed(batch)  # the lock is free meanwhile
        with self._writing():
            if self._stop.is_set():
                return None  # planned work stays marked: the next owner does it
            step = dense.apply(batch)
            self._on_step(step)
        return step

    def _run(self) -> None:
        background_priority(thread=True)
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            started, chunks = time.monotonic(), 0
            while not self._stop.is_set():
                try:
                    step = self._batch()
                except Stopping:
                    return
                except Exception as exc:
                    what = exc.message if isinstance(exc, CidxError) else repr(exc)
                    log.warning("the dense pass failed (%s); trying again later", what)
                    self._stop.wait(RETRY_SECONDS)
                    continue
                if step is None:
                    break
                chunks += step.chunks
            if chunks:
                seconds = time.monotonic() - started
                log.info(
                    "dense pass: %d chunks in %.1f s (%.1f chunks/s)",
                    chunks,
                    seconds,
                    chunks / seconds if seconds > 0 else 0.0,
                )
            with self._lock:  # a `wake` meanwhile means more work: not idle
                if not self._wake.is_set():
                    self._idle.set()
