"""Requests to one Qdrant server: checked once, bounded, retried, explained.

Every request of the server backend goes through `ServerCalls`: the server
is checked on first use (that it answers, accepts the API key and runs a
supported version, `check_version`); a request that fails transiently (a
refused or reset connection, a timeout, 429, 502, 503, 504: `transient`) is
retried with exponential backoff and jitter, up to the settings' `retries`;
any other failure is raised at once as the `StoreError` that names the
server and the next step (`describe`). Local mode is not thread-safe, so
its requests are serialised here; a server client is.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cidx.errors import StoreError
from cidx.store.server_connect import Connection, check_version
from cidx.store.server_faults import Failure, describe, quiet, reason, transient
from cidx.store.server_settings import ServerSettings, local_path

__all__ = ["BACKOFF_FIRST", "BACKOFF_MAX", "ServerCalls"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Backoff between attempts: 0.25 s, doubling, at most 8 s, with jitter.
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 8.0


class ServerCalls:
    """Calls of one client to its server (or to qdrant-client's local mode)."""

    def __init__(self, connection: Connection, settings: ServerSettings) -> None:
        self.client = connection.client
        self.settings = settings
        self.url = settings.url
        self.local = connection.local
        # Where the API key came from, for messages (never the key).
        self._key_source = connection.key_source
        self._checked = connection.local
        self._check_lock = threading.Lock()
        # Local mode is not thread-safe; a server client is.
        self.guard: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.local else contextlib.nullcontext()
        )

    def check(self) -> None:
        """Once: that the server answers, accepts the key and runs a usable version."""
        if self._checked:
            return
        with self._check_lock:
            if self._checked:
                return
            info = self.attempts("reach", self.client.info, None)
            check_version(self.url, str(getattr(info, "version", "") or ""))
            self._checked = True

    def call(self, what: str, fn: Callable[[], T], collection: str | None = None) -> T:
        """`fn`'s answer, the server checked first; `what` names it in errors."""
        self.check()
        return self.attempts(what, fn, collection)

    def attempts(self, what: str, fn: Callable[[], T], collection: str | None) -> T:
        """`fn`'s answer, retried while it fails transiently."""
        attempt = 0
        while True:
            try:
                with self.guard, quiet(self.local):
                    return fn()
            except Exception as exc:
                wait = transient(exc)
                if wait is None or attempt >= self.settings.retries:
                    log.debug("qdrant request failed: %s", what, exc_info=True)
                    raise self._error(what, collection, exc, attempt + 1) from None
                delay = wait or min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt)
                delay *= random.uniform(0.5, 1.0)
                attempt += 1
                log.info(
                    "qdrant server %s: %s failed (%s); attempt %d in %.2f s",
                    self.url,
                    what,
                    reason(exc),
                    attempt + 1,
                    delay,
                )
                time.sleep(delay)

    def _error(self, what: str, collection: str | None, exc: Exception, tries: int) -> StoreError:
        where = f"the Qdrant server at {self.url}"
        if self.local:
            where = f"the local-mode Qdrant in {local_path(self.settings)}"
        failure = Failure(
            what, collection, where, tries, self._key_source, self.settings.timeout, self.local
        )
        return describe(failure, exc)
