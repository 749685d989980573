"""Reaching the owner of a project's index through its Unix socket.

One connection per request. `OwnerUnavailable` means nobody answered (no
socket, or a stale one): the caller may then become the owner itself.
`OwnerError` means the owner answered and then failed or vanished.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cidx.answers import NoArgs, OwnerState, Progress
from cidx.errors import ERROR_CLASSES, OwnerError
from cidx.owner import wire
from cidx.owner.address import socket_address
from cidx.owner.wire import Verb

T = TypeVar("T")


class OwnerUnavailable(Exception):
    """No owner is listening on the socket."""


class OwnerClient:
    def __init__(self, socket_path: Path, *, connect_timeout: float = 2.0) -> None:
        self.socket_path = socket_path
        self.connect_timeout = connect_timeout

    def _connect(self) -> socket.socket:
        if not self.socket_path.exists():
            raise OwnerUnavailable(str(self.socket_path))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.connect_timeout)
        try:
            with socket_address(self.socket_path) as address:
                sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError, TimeoutError) as exc:
            sock.close()
            raise OwnerUnavailable(str(self.socket_path)) from exc
        except OSError:
            sock.close()
            raise
        # Requests such as a full index can run for a long time.
        sock.settimeout(None)
        return sock

    def call(
        self,
        verb: Verb[Any, T],
        args: Any,
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> T:
        sock = self._connect()
        with sock, sock.makefile("rb") as reader:
            try:
                sock.sendall(wire.request(verb.name, args))
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise OwnerUnavailable(str(self.socket_path)) from exc
            while True:
                try:
                    line = reader.readline(wire.MAX_LINE)
                except ConnectionResetError:
                    line = b""
                if not line:
                    raise OwnerError(
                        "The process that owns this index stopped while answering. "
                        "Run the command again."
                    )
                message = wire.decode(line)
                kind = message.get("type")
                if kind == "progress":
                    if on_progress is not None:
                        on_progress(wire.from_jsonable(Progress, message["data"]))
                elif kind == "result":
                    return wire.from_jsonable(verb.result, message["data"])
                elif kind == "error":
                    cls = ERROR_CLASSES.get(str(message.get("class")), OwnerError)
                    raise cls(str(message.get("message")))
                else:
                    raise OwnerError(f"The owner sent an unknown reply type {kind!r}.")

    def ping(self) -> OwnerState:
        return self.call(wire.PING, NoArgs())
