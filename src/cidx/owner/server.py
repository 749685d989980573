"""The owner's Unix socket: how other cidx processes reach an open index.

Whichever process holds the owner lock serves `.code-indexer/owner.sock`
(mode 0600) for as long as it holds it, one thread per connection, and
answers each request through the index's `Operations` (`cidx.operations`).
A socket file found at start-up is stale by definition (we hold the lock,
so its server is gone) and is replaced. The per-user daemon
(`cidx.daemon`) serves its own socket with this class too, with its own
verbs and a check of each peer's user id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cidx.errors import CidxError, UsageError, wire_name
from cidx.failpoints import failpoint
from cidx.messages import Progress
from cidx.owner import protocol, wire
from cidx.owner.address import socket_address
from cidx.owner.wire import Verb

R = TypeVar("R")


class Handles(Protocol):
    """What answers the requests of a socket (`cidx.operations.Operations`)."""

    def handle(self, verb: Verb[Any, R], args: Any, progress: Callable[[Progress], None]) -> R: ...


log = logging.getLogger(__name__)

_PROGRESS_INTERVAL = 0.1


# macOS: getsockopt(SOL_LOCAL, LOCAL_PEERCRED) gives a `struct xucred`, whose
# first two fields are its version and the peer's uid.
_SOL_LOCAL = 0
_LOCAL_PEERCRED = 1


def peer_uid(conn: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket."""
    if hasattr(socket, "SO_PEERCRED"):
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return int(uid)
    creds = conn.getsockopt(_SOL_LOCAL, _LOCAL_PEERCRED, 64)
    _version, uid = struct.unpack_from("2I", creds)
    return int(uid)


class OwnerServer:
    """Serves requests against one engine (or the daemon) until `stop`.

    `verbs` are the requests it knows (the index's by default); with
    `same_user_only`, a connection from another user is refused whatever
    the socket's mode lets through (root, a leaked descriptor).
    """

    def __init__(
        self,
        operations: Handles,
        socket_path: Path,
        *,
        verbs: dict[str, Verb[Any, Any]] | None = None,
        same_user_only: bool = False,
    ) -> None:
        self.operations = operations
        self.socket_path = socket_path
        self.verbs = protocol.VERBS if verbs is None else verbs
        self.same_user_only = same_user_only
        # When the last request ended (monotonic), for releasing idle indexes.
        self.last_request = time.monotonic()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._active: set[threading.Thread] = set()
        self._guard = threading.Lock()
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            with socket_address(self.socket_path) as address:
                listener.bind(address)
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o600)
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(
            target=self._accept_loop, name="cidx-owner-accept", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, let requests in flight finish, remove the socket."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        if self._thread is not None:
            self._thread.join(timeout=5)
        deadline = time.monotonic() + timeout
        while True:
            with self._guard:
                active = list(self._active)
            if not active or time.monotonic() > deadline:
                break
            active[0].join(timeout=max(0.0, deadline - time.monotonic()))

    def idle_seconds(self) -> float:
        """How long no request has been in flight (0 while one is)."""
        with self._guard:
            if self._active:
                return 0.0
            return time.monotonic() - self.last_request

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            thread = threading.Thread(
                target=self._serve, args=(conn,), name="cidx-owner-conn", daemon=True
            )
            with self._guard:
                self._active.add(thread)
                self.last_request = time.monotonic()
            thread.start()

    # -- one connection ----------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rb") as reader:
                if self.same_user_only and peer_uid(conn) != os.getuid():
                    log.warning("refused a connection from another user")
                    with contextlib.suppress(OSError):
                        conn.sendall(
                            wire.error("AccessError", "This cidx socket serves its own user only.")
                        )
                    return
                line = reader.readline(wire.MAX_LINE)
                if not line:
                    return
                try:
                    message = wire.decode(line)
                    reply = self._dispatch(message, conn)
                except CidxError as exc:
                    reply = wire.error(wire_name(exc), exc.message)
                except Exception as exc:
                    log.exception("owner request failed")
                    reply = wire.error("OwnerError", f"The owner process failed: {exc!r}.")
                with contextlib.suppress(OSError):
                    conn.sendall(reply)
        finally:
            with self._guard:
                self._active.discard(threading.current_thread())
                self.last_request = time.monotonic()

    def _dispatch(self, message: dict[str, Any], conn: socket.socket) -> bytes:
        if message.get("v") != wire.PROTOCOL_VERSION:
            raise UsageError(
                f"This owner speaks protocol {wire.PROTOCOL_VERSION}, the client "
                f"{message.get('v')!r}. Use the same cidx version for all commands."
            )
        op = str(message.get("op"))
        verb = self.verbs.get(op)
        if verb is None:
            raise UsageError(f"The owner does not know the request {op!r}.")
        # Lets a test stop the owner exactly while a client waits on it.
        failpoint(f"owner_request_{op}")
        args = wire.from_jsonable(verb.args, message.get("args") or {})
        last = 0.0

        def send_progress(p: Progress) -> None:
            nonlocal last
            now = time.monotonic()
            if p.phase in ("index", "migrate") and now - last < _PROGRESS_INTERVAL:
                return
            last = now
            with contextlib.suppress(OSError):
                conn.sendall(wire.progress(p))

        return wire.result(self.operations.handle(verb, args, send_progress))
