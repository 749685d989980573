"""The endpoint's server: uvicorn on a daemon thread of the owner process.

The server shares the owner's open engine, which the watcher keeps current.
`HttpServer.start` binds the address itself (a bad one is a usage error
before anything runs, and no reverse DNS lookup is made), serves the app on
uvicorn's event loop, and writes `serve.json` once connections are
accepted. `stop` removes the file, stops accepting, and lets requests in
flight finish (for up to `DRAIN_SECONDS`) before the owner closes the engine.

The protocol is uvicorn's h11 one with two additions: a deadline while the
server waits on a client, to send its whole request or to read its answer
(uvicorn has none: a client trickling bytes would hold a connection
forever), and a JSON answer to a malformed request instead of plain text.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from cidx import __version__
from cidx.errors import CidxError, UsageError
from cidx.http_api._app import Searchable, create_app, log
from cidx.http_api._info import INFO_FILE_NAME, ServeInfo, remove_info, write_info
from cidx.http_api._settings import HttpSettings
from cidx.served import Freshness, ServedIndex

if TYPE_CHECKING:
    from uvicorn.server import ServerState


# Requests in flight at shutdown get this long before the engine closes.
DRAIN_SECONDS = 10.0
# How long `start` waits for the event loop to accept connections.
START_SECONDS = 30.0
# An idle connection between two requests is closed after this long.
KEEP_ALIVE_SECONDS = 5


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on a waiting client and a JSON 400."""

    request_timeout: ClassVar[float]

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # What uvicorn says of a connection (a malformed request) joins cidx's
        # log; each request is logged by the app.
        self.logger = log
        self.access_log = False
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch()

    def resume_writing(self) -> None:
        super().resume_writing()
        # The client read part of the answer: progress, so a fresh deadline.
        self._cancel_deadline()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _watch(self) -> None:
        # The server waits on the client while the client leaves the answer
        # unread (even once the connection is closing: a close waits for the
        # unread bytes to go) or while its request has not arrived whole
        # (h11's IDLE: not begun or headers incomplete; SEND_BODY: body
        # incomplete). The deadline runs from the start of the wait and is
        # not reset by each byte, so trickling does not extend it.
        waiting = self.flow.write_paused or (
            not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
        )
        if waiting and self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout, self._expire)
        elif not waiting:
            self._cancel_deadline()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.debug(
            "Dropped the connection of %s after %g s waiting for it", client, self.request_timeout
        )
        # Not close(): that would wait for a client that stopped reading.
        self.transport.abort()

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": "The request is not valid HTTP/1.1."}).encode("utf-8")
        headers = [
            *self.server_state.default_headers,  # date and server, as on every answer
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"cache-control", b"no-store"),
            (b"connection", b"close"),
        ]
        try:
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
        except h11.LocalProtocolError:
            pass  # an answer had already begun on this connection: just close it
        finally:
            self.transport.close()


def _protocol(request_timeout: float) -> type[_Protocol]:
    # uvicorn makes the protocol from its class: the setting rides on a subclass.
    return type("CidxHttpProtocol", (_Protocol,), {"request_timeout": request_timeout})


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, telling the thread that started it once it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.accepting = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.accepting.set()


def _bind(settings: HttpSettings) -> socket.socket:
    listen = settings.listen
    sock = socket.socket(listen.family, socket.SOCK_STREAM)
    try:
        # A restarted server may bind the port its predecessor left in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(listen.sockaddr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"Cannot listen on {listen.text!r}: {exc.strerror or exc}. Pick another "
            "address or port (port 0 picks a free one)."
        ) from None
    return sock


def format_url(sockaddr: tuple[Any, ...]) -> str:
    host, port = str(sockaddr[0]), int(sockaddr[1])
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class HttpServer:
    """The endpoint of one owner process: `start` it when the index is open, `stop` on exit."""

    def __init__(
        self,
        engine: Searchable,
        keeper: Freshness,
        settings: HttpSettings,
        *,
        root: Path,
        info_file: Path | None = None,
    ) -> None:
        self.settings = settings
        self.app = create_app(engine, keeper, token=settings.token, root=str(root))
        self.info_file = info_file
        self.url = ""
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Bind, serve on a daemon thread, write serve.json; the URL actually bound."""
        sock = _bind(self.settings)
        self.url = format_url(sock.getsockname())
        config = uvicorn.Config(
            self.app,
            http=_protocol(self.settings.request_timeout),
            loop="asyncio",
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,  # the process's logging is cidx's
            access_log=False,
            proxy_headers=False,  # nothing fronts this server: trust no X-Forwarded-For
            server_header=False,
            headers=[("server", f"cidx/{__version__}")],
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=None,  # `stop` bounds the drain itself
        )
        server = _Uvicorn(config)
        thread = threading.Thread(target=_serve, args=(server, sock), name="cidx-http", daemon=True)
        thread.start()
        if not server.accepting.wait(START_SECONDS) or not server.started:
            server.should_exit = True
            raise CidxError(
                f"The HTTP endpoint on {self.url} did not start; "
                ".code-indexer/logs/cidx.log says why."
            )
        self._server, self._thread = server, thread
        token = self.settings.token
        if self.info_file is not None:
            write_info(self.info_file, ServeInfo(url=self.url, pid=os.getpid(), token=token))
        if self.settings.generated:
            # The owner's own terminal and log: the token is theirs, like the index.
            where = self.info_file if self.info_file is not None else INFO_FILE_NAME
            log.info(
                "HTTP API listening on %s with a token made for this run (also in %s): "
                "curl -H 'Authorization: Bearer %s' '%s/search?q=TEXT'",
                self.url,
                where,
                token,
                self.url,
            )
        else:
            log.info("HTTP API listening on %s (bearer token required)", self.url)
        return self.url

    def stop(self, timeout: float = DRAIN_SECONDS) -> None:
        """Stop accepting, let requests in flight finish, remove serve.json."""
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is None or thread is None:
            return
        if self.info_file is not None:
            remove_info(self.info_file)
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("HTTP requests still running after %.0f s; stopping anyway", timeout)
            server.force_exit = True
            thread.join(1.0)
        log.info("HTTP API stopped")


def _serve(server: _Uvicorn, sock: socket.socket) -> None:
    try:
        server.run(sockets=[sock])
    except BaseException:  # a thread's end: nothing above it would report this
        log.exception("The HTTP server failed")
    finally:
        sock.close()
        server.accepting.set()  # a failed start wakes `start` too


def starter(settings: HttpSettings) -> Callable[[ServedIndex, Freshness], Callable[[], None]]:
    """An `on_ready` for `cidx.served.serve`: answer HTTP for its index until it stops
    (the engine of this process, or the daemon's through its socket)."""

    def start(index: ServedIndex, keeper: Freshness) -> Callable[[], None]:
        paths = index.paths
        server = HttpServer(
            index, keeper, settings, root=paths.root, info_file=paths.index_dir / INFO_FILE_NAME
        )
        server.start()
        return server.stop

    return start
