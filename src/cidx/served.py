"""`cidx serve`: keep a project live and answer HTTP, in the daemon's process when one runs.

With the user's daemon running (`cidx start`), `serve` neither opens the
index nor loads the model: it asks the daemon to keep the project live
(`cidx.daemon.keep_live`), and its HTTP endpoint answers through the
project's owner socket as `OwnerView` — searches, the keeper's freshness
(`health`) and the owner's instruments (`metrics`). On the way out the
daemon is left as it was found: a project it did not watch before is no
longer watched. Without a daemon, with `--interval` (the daemon follows
file events only), or when the daemon cannot hold the project, `serve`
owns the index itself as before (`cidx.live.run_owner`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cidx import daemon
from cidx.errors import CidxError, OwnerError
from cidx.interrupts import wait_for
from cidx.live import run_owner, stop_on_signals
from cidx.logs import LogFormat, setup_logging
from cidx.messages import Health, NoArgs, QueryAnswer, QueryRequest, SearchRequest
from cidx.metrics import Metrics, load
from cidx.owner import protocol
from cidx.owner.client import OwnerClient, OwnerUnavailable
from cidx.owner.wire import Verb
from cidx.project import ProjectPaths, project_paths
from cidx.service import WAIT_FOREVER, WaitPolicy

log = logging.getLogger("cidx.live")

R = TypeVar("R")


class ServedIndex(Protocol):
    """What an endpoint needs of the index it serves (an `Engine`, or an `OwnerView`)."""

    paths: ProjectPaths
    metrics: Metrics

    def search_batch(self, requests: list[QueryRequest]) -> list[QueryAnswer]: ...


class Freshness(Protocol):
    """What an endpoint needs of the keeper (`LiveSync`, `PeriodicSync`, an `OwnerView`);
    `cidx.http_api` calls it `HealthSource`."""

    def health(self) -> Health: ...


OnReady = Callable[[ServedIndex, Freshness], Callable[[], None] | None]


class OwnerView:
    """The index another process (the daemon) owns and keeps live, seen through its socket."""

    def __init__(self, paths: ProjectPaths, client: OwnerClient) -> None:
        self.paths = paths
        self._client = client
        # The owner's instruments, read at each scrape; errors this process
        # counts itself (failed HTTP requests) are added to the owner's.
        self.metrics = Metrics()
        self.metrics.on_scrape = self._read_metrics
        self._owner_errors = 0.0

    def search_batch(self, requests: list[QueryRequest]) -> list[QueryAnswer]:
        # As searched as it is: the owner keeps it current.
        return self._call(protocol.SEARCH, SearchRequest(list(requests), sync=False)).answers

    def health(self) -> Health:
        return self._call(protocol.HEALTH, NoArgs())

    def _read_metrics(self) -> None:
        taken = self._call(protocol.METRICS, NoArgs())
        errors = self.metrics.errors
        own = errors.current() - self._owner_errors
        load(self.metrics, taken)
        self._owner_errors = errors.current()
        errors.inc(own)

    def _call(self, verb: Verb[Any, R], args: Any) -> R:
        try:
            return self._client.call(verb, args)
        except OwnerUnavailable:
            raise OwnerError(
                f"The cidx daemon no longer answers for {self.paths.root} (was it stopped?). "
                "Run `cidx start`, or restart `cidx serve`."
            ) from None


def serve(
    start: Path | None = None,
    *,
    interval: float | None = None,
    log_format: LogFormat = "human",
    wait: WaitPolicy = WAIT_FOREVER,
    on_ready: OnReady | None = None,
) -> bool:
    """Keep the project live until SIGINT/SIGTERM, in the daemon if it runs and
    can hold the project, else in this process; `on_ready(index, keeper)` runs
    once it is (the HTTP endpoint starts there). False if the last sync failed."""
    if interval is None:
        done = _through_daemon(start, log_format, on_ready)
        if done is not None:
            return done
    return run_owner(
        start, kind="serve", interval=interval, log_format=log_format, wait=wait, on_ready=on_ready
    )


def _through_daemon(
    start: Path | None, log_format: LogFormat, on_ready: OnReady | None
) -> bool | None:
    """Serve with the daemon keeping the project live; None when it cannot."""
    paths = project_paths(start)
    result = daemon.keep_live(paths.root)
    if result is None:
        return None
    if result.state != "watched":
        # Another process owns it, or the daemon could not open it: this
        # process finds out and says what, as without a daemon.
        if result.changed:
            daemon.stop_watching(paths.root)
        return None
    setup_logging(paths, fmt=log_format)
    stop = threading.Event()
    restore = stop_on_signals(stop)
    view = OwnerView(paths, OwnerClient(paths.socket_path))
    cleanup: Callable[[], None] | None = None
    try:
        cleanup = on_ready(view, view) if on_ready is not None else None
        log.info(
            "cidx serve: %s kept live by the cidx daemon (pid %d); answering through it",
            paths.root,
            result.pid,
        )
        wait_for(stop)
        return view.health().last_error is None
    except OwnerError as exc:
        log.error("cidx serve: %s", exc.message)
        return False
    finally:
        if cleanup is not None:
            cleanup()
        restore()
        if result.changed:
            with contextlib.suppress(CidxError):  # the daemon stopped meanwhile
                daemon.stop_watching(paths.root)
        log.info("cidx serve: stopping (the daemon keeps the index)")
