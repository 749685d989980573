"""The HTTP endpoint of `cidx serve`: health, metrics and search for other programs.

`GET /healthz` reports how current the live index is (200 when healthy, 503
when not), `GET /metrics` the owner's instruments in Prometheus text, and
`GET /search` answers one query with exactly the JSON object a
`cidx query --batch` line holds. The server is the standard library's
threaded HTTP server on a daemon thread of the owner process, so it searches
the same open engine the watcher keeps current. It listens on loopback
unless a bearer token is configured; with a token every request must carry
it. Where it listens is written to `.code-indexer/serve.json` while it runs,
so scripts can find a server started on port 0. Request logs go to the
`cidx.http` logger at DEBUG; clients only ever see JSON error messages,
never a traceback.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import parse_qs

from cidx import __version__
from cidx.errors import CidxError, LockBusyError, OwnerError, UsageError
from cidx.fsutil import write_atomic
from cidx.messages import Health, QueryAnswer, QueryMode, QueryRequest
from cidx.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from cidx.metrics import Metrics
from cidx.query import MAX_LIMIT  # checked here too, so errors name the HTTP parameter

if TYPE_CHECKING:
    from cidx.engine import Engine

log = logging.getLogger("cidx.http")

TOKEN_ENV = "CIDX_HTTP_TOKEN"
INFO_FILE_NAME = "serve.json"
JSON_CONTENT_TYPE = "application/json"
SEARCH_PARAMS = ("q", "limit", "mode", "path", "lang", "min_score")
# A client that stalls mid-request gives up its thread after this long.
REQUEST_TIMEOUT_SECONDS = 30.0
# Requests in flight at shutdown get this long before the engine closes.
DRAIN_SECONDS = 10.0
# Bodies up to this size are read (and ignored) before answering 405, so the
# client is not reset by unread data in our receive buffer.
MAX_DRAINED_BODY = 64 * 1024


class Searchable(Protocol):
    """What the endpoint needs of an engine (`cidx.engine.Engine` in practice)."""

    metrics: Metrics

    def search_batch(self, requests: list[QueryRequest]) -> list[QueryAnswer]: ...


class HealthSource(Protocol):
    """What the endpoint needs of the live keeper (`LiveSync` or `PeriodicSync`)."""

    def health(self) -> Health: ...


# -- settings ----------------------------------------------------------------


@dataclass(frozen=True)
class Listen:
    """A resolved address to listen on."""

    text: str  # as the user wrote it, for messages
    family: socket.AddressFamily
    sockaddr: tuple[Any, ...]  # what bind() takes: (host, port) or (host, port, flow, scope)
    loopback: bool


@dataclass(frozen=True)
class HttpSettings:
    listen: Listen
    token: str | None


def parse_address(text: str) -> tuple[str, int]:
    """`"127.0.0.1:8765"`, `":8765"` (loopback) or `"[::1]:8765"` → (host, port)."""
    example = "Use HOST:PORT, e.g. 127.0.0.1:8765, :8765 or [::1]:8765 (port 0 picks a free one)."
    value = text.strip()
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or not rest.startswith(":") or not host:
            raise UsageError(f"Cannot read the address {text!r}. {example}")
        port_text = rest[1:]
    else:
        host, colon, port_text = value.rpartition(":")
        if not colon:
            raise UsageError(f"The address {text!r} has no port. {example}")
        if ":" in host:
            raise UsageError(
                f"Cannot read the address {text!r}: put an IPv6 address in brackets, "
                "e.g. [::1]:8765."
            )
    if not re.fullmatch(r"[0-9]{1,5}", port_text) or int(port_text) > 65535:
        raise UsageError(
            f"The port in {text!r} must be a number from 0 to 65535, not {port_text!r}. {example}"
        )
    return host or "127.0.0.1", int(port_text)


def _is_loopback(host: str) -> bool:
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def resolve_address(text: str) -> Listen:
    host, port = parse_address(text)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UsageError(
            f"Cannot resolve the host {host!r} of the address {text!r} ({exc.strerror}). "
            "Use an IP address, e.g. 127.0.0.1:8765."
        ) from None
    # Bind the first address the resolver prefers, and judge exposure by that
    # same address: what is checked is what gets bound.
    family, _, _, _, sockaddr = infos[0]
    return Listen(
        text=text,
        family=family,
        sockaddr=tuple(sockaddr),
        loopback=_is_loopback(str(sockaddr[0])),
    )


def resolve_token(flag: str | None) -> str | None:
    """The token from `--token`, else from $CIDX_HTTP_TOKEN (empty there means unset)."""
    token = flag if flag is not None else (os.environ.get(TOKEN_ENV) or None)
    if token is None:
        return None
    source = "--token" if flag is not None else f"${TOKEN_ENV}"
    if not token or any(ch.isspace() or not ch.isprintable() for ch in token):
        raise UsageError(
            f"The token in {source} must be non-empty and hold no spaces or control "
            "characters, since clients send it in an `Authorization: Bearer` header."
        )
    return token


def http_settings(address: str, token: str | None = None) -> HttpSettings:
    """Check `--http` and the token before anything is opened; UsageError if unsafe."""
    listen = resolve_address(address)
    resolved = resolve_token(token)
    if not listen.loopback and resolved is None:
        raise UsageError(
            f"Refusing to serve the index on {address!r}, which other machines can reach, "
            f"without a token. Pass --token TOKEN (or set ${TOKEN_ENV}) so every request "
            "must send `Authorization: Bearer TOKEN`, or listen on loopback, "
            "e.g. --http 127.0.0.1:8765."
        )
    return HttpSettings(listen=listen, token=resolved)


# -- routing -----------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: HTTPStatus
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()


def json_response(
    status: HTTPStatus, data: object, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return Response(status, body, JSON_CONTENT_TYPE, headers)


def error_response(
    status: HTTPStatus, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    return json_response(status, {"error": message}, headers)


def status_for(exc: CidxError) -> HTTPStatus:
    """The HTTP status of an error cidx raised on purpose."""
    if isinstance(exc, UsageError):
        return HTTPStatus.BAD_REQUEST
    if isinstance(exc, LockBusyError | OwnerError):
        return HTTPStatus.SERVICE_UNAVAILABLE
    # Config, state, model and store errors are the server's problem, not the
    # request's; their messages say what the operator should do.
    return HTTPStatus.INTERNAL_SERVER_ERROR


Params = dict[str, list[str]]
Route = Callable[[Params], Response]


class Api:
    """Turns one request (method, target, credentials) into a response; no sockets here."""

    def __init__(
        self, engine: Searchable, keeper: HealthSource, *, token: str | None = None
    ) -> None:
        self.engine = engine
        self.keeper = keeper
        self._token = token.encode("utf-8") if token is not None else None
        self.routes: dict[str, Route] = {
            "/healthz": self.healthz,
            "/metrics": self.metrics,
            "/search": self.search,
        }

    @property
    def requires_token(self) -> bool:
        return self._token is not None

    def handle(self, method: str, target: str, authorization: str | None) -> Response:
        # Authentication comes before routing, so a client without the token
        # learns nothing, not even which paths exist. /healthz is no
        # exception: it shows the pid and the last sync error (which can name
        # files), and a probe can send a header as easily as a scraper can.
        if self._token is not None:
            denied = self._check_token(authorization)
            if denied is not None:
                return denied
        path, _, query = target.partition("?")
        route = self.routes.get(path)
        if route is None:
            return error_response(
                HTTPStatus.NOT_FOUND,
                f"There is no {path!r} here. Use /healthz, /metrics or /search?q=TEXT.",
            )
        if method != "GET":
            return error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{path} answers GET only, not {method}.",
                (("Allow", "GET"),),
            )
        try:
            return route(_parse_query(query))
        except CidxError as exc:
            status = status_for(exc)
            if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                log.error("%s %s failed: %s", method, path, exc.message)
                self.engine.metrics.errors.inc()
            return error_response(status, exc.message)
        except Exception:
            log.exception("%s %s failed", method, path)
            self.engine.metrics.errors.inc()
            return error_response(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                "The server failed to answer this request; its log "
                "(.code-indexer/logs/cidx.log) says why.",
            )

    def _check_token(self, authorization: str | None) -> Response | None:
        assert self._token is not None
        challenge = 'Bearer realm="cidx"'
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return error_response(
                HTTPStatus.UNAUTHORIZED,
                "This server needs a token: send `Authorization: Bearer TOKEN`.",
                (("WWW-Authenticate", challenge),),
            )
        # http.server decoded the header as Latin-1; undo that to compare the
        # bytes the client sent, in constant time.
        sent = credentials.strip().encode("latin-1", errors="replace")
        if not hmac.compare_digest(sent, self._token):
            return error_response(
                HTTPStatus.UNAUTHORIZED,
                "The bearer token is wrong.",
                (("WWW-Authenticate", f'{challenge}, error="invalid_token"'),),
            )
        return None

    # -- routes --------------------------------------------------------------

    def healthz(self, _params: Params) -> Response:
        health = self.keeper.health()
        status = HTTPStatus.OK if health.ok else HTTPStatus.SERVICE_UNAVAILABLE
        return json_response(status, asdict(health))

    def metrics(self, _params: Params) -> Response:
        body = self.engine.metrics.render().encode("utf-8")
        return Response(HTTPStatus.OK, body, METRICS_CONTENT_TYPE)

    def search(self, params: Params) -> Response:
        request = search_request(params)
        # The index is searched as it is: the watcher keeps it current, and a
        # pre-search sync per request would serialise every query behind the
        # write lock.
        [answer] = self.engine.search_batch([request])
        return json_response(HTTPStatus.OK, answer.as_json())


def _parse_query(query: str) -> Params:
    try:
        return parse_qs(query, keep_blank_values=True, errors="strict", max_num_fields=100)
    except UnicodeDecodeError:
        raise UsageError("The query string is not valid UTF-8 once percent-decoded.") from None
    except ValueError:
        raise UsageError("The query string has too many parameters (at most 100).") from None


def _single(params: Params, name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise UsageError(f"Give {name} once, not {len(values)} times.")
    return values[0]


def search_request(params: Params) -> QueryRequest:
    """The `QueryRequest` of `/search`'s parameters; UsageError on anything off."""
    unknown = sorted(set(params) - set(SEARCH_PARAMS))
    if unknown:
        raise UsageError(
            f"Unknown parameter {unknown[0]!r}. /search takes: {', '.join(SEARCH_PARAMS)}."
        )
    text = (_single(params, "q") or "").strip()
    if not text:
        raise UsageError("Pass the text to search for as q, e.g. /search?q=retry+failed+uploads.")
    limit_text = _single(params, "limit")
    limit = 10
    if limit_text is not None:
        if not re.fullmatch(r"[+-]?[0-9]{1,9}", limit_text.strip()):
            raise UsageError(f"limit must be a whole number, not {limit_text!r}.")
        limit = int(limit_text)
        if not 1 <= limit <= MAX_LIMIT:
            raise UsageError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}.")
    min_score_text = _single(params, "min_score")
    min_score: float | None = None
    if min_score_text is not None:
        try:
            min_score = float(min_score_text)
        except ValueError:
            min_score = math.nan
        if not math.isfinite(min_score):
            raise UsageError(f"min_score must be a number, not {min_score_text!r}.")
    for name in ("path", "lang"):
        if any(not value.strip() for value in params.get(name, [])):
            raise UsageError(f"A {name} parameter is empty; give a value or leave it out.")
    return QueryRequest(
        text=text,
        limit=limit,
        # Checked by the search itself, like every other field of a query.
        mode=cast("QueryMode", _single(params, "mode") or "hybrid"),
        paths=tuple(params.get("path", [])),
        languages=tuple(params.get("lang", [])),
        min_score=min_score,
    )


# -- the server --------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection. Scrapes and searches are far
    # apart, and it spares us keep-alive bookkeeping (draining every body).
    protocol_version = "HTTP/1.0"
    server_version = f"cidx/{__version__}"
    timeout = REQUEST_TIMEOUT_SECONDS

    def version_string(self) -> str:
        return self.server_version  # not the Python version: no need to advertise it

    def do_GET(self) -> None:
        self._answer()

    # Every other standard method is routed too, so a known path answers 405
    # (with `Allow: GET`) rather than http.server's 501.
    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_GET

    def _answer(self) -> None:
        started = time.perf_counter()
        server = cast("_Server", self.server)
        self._drain_body()
        with server.in_flight() as accepted:
            if accepted:
                response = server.api.handle(
                    self.command, self.path, self.headers.get("Authorization")
                )
            else:
                response = error_response(
                    HTTPStatus.SERVICE_UNAVAILABLE, "The server is shutting down."
                )
            self._send(response)
        log.debug(
            '%s "%s %s" %d %d %.1f ms',
            self.client_address[0],
            self.command,
            self.path,
            response.status,
            len(response.body),
            (time.perf_counter() - started) * 1000,
        )

    def _drain_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return
        if 0 < length <= MAX_DRAINED_BODY:
            self.rfile.read(length)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server answers a malformed request (bad request line, header
        # too long, unknown method) with an HTML page; clients of this API
        # read JSON.
        try:
            status = HTTPStatus(code)
        except ValueError:
            status = HTTPStatus.BAD_REQUEST
        self.close_connection = True
        log.debug('%s "%s" %d %s', self.client_address[0], self.requestline, code, message)
        self._send(error_response(status, message or status.phrase))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # `_answer` logs each request once, with its duration

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled client never holds the process up at exit

    def __init__(self, listen: Listen, api: Api) -> None:
        self.address_family = listen.family
        self.api = api
        self._guard = threading.Condition()
        self._active = 0
        self._closing = False
        super().__init__(listen.sockaddr, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up our fully qualified name, a reverse
        # DNS query that can hang on a machine without a resolver; nothing
        # here uses it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("HTTP connection from %s broke", client_address, exc_info=True)
        else:
            log.exception("HTTP connection from %s failed", client_address)

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[bool]:
        """Count a request while it runs; False once shutdown began (answer 503)."""
        with self._guard:
            if self._closing:
                accepted = False
            else:
                accepted = True
                self._active += 1
        try:
            yield accepted
        finally:
            if accepted:
                with self._guard:
                    self._active -= 1
                    self._guard.notify_all()

    def drain(self, timeout: float) -> bool:
        """Refuse new requests and wait for those in flight; False on timeout."""
        with self._guard:
            self._closing = True
            return self._guard.wait_for(lambda: self._active == 0, timeout)


def format_url(sockaddr: tuple[Any, ...]) -> str:
    host, port = str(sockaddr[0]), int(sockaddr[1])
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class HttpServer:
    """The endpoint of one owner process: `start` it when the index is open, `stop` on exit."""

    def __init__(self, api: Api, listen: Listen, *, info_file: Path | None = None) -> None:
        self.api = api
        self.listen = listen
        self.info_file = info_file
        self.url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Bind and serve on a daemon thread; the URL actually bound."""
        try:
            server = _Server(self.listen, self.api)
        except OSError as exc:
            raise UsageError(
                f"Cannot listen on {self.listen.text!r}: {exc.strerror or exc}. Pick another "
                "address or port (port 0 picks a free one)."
            ) from None
        self._server = server
        self.url = format_url(server.server_address)
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="cidx-http",
            daemon=True,
        )
        self._thread.start()
        if self.info_file is not None:
            _write_info(self.info_file, self.url)
        log.info(
            "HTTP API listening on %s%s",
            self.url,
            " (bearer token required)" if self.api.requires_token else "",
        )
        return self.url

    def stop(self, timeout: float = DRAIN_SECONDS) -> None:
        """Stop accepting, let requests in flight finish, remove serve.json."""
        server, self._server = self._server, None
        if server is None:
            return
        if self.info_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.info_file.unlink()
        server.shutdown()
        server.server_close()
        if not server.drain(timeout):
            log.warning("HTTP requests still running after %.0f s; stopping anyway", timeout)
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("HTTP API stopped")


def _write_info(path: Path, url: str) -> None:
    write_atomic(path, json.dumps({"url": url, "pid": os.getpid()}) + "\n")


def starter(settings: HttpSettings) -> Callable[[Engine, HealthSource], Callable[[], None]]:
    """An `on_ready` for `live.run_owner`: serve HTTP on its engine until it stops."""

    def start(engine: Engine, keeper: HealthSource) -> Callable[[], None]:
        server = HttpServer(
            Api(engine, keeper, token=settings.token),
            settings.listen,
            info_file=engine.paths.index_dir / INFO_FILE_NAME,
        )
        server.start()
        return server.stop

    return start
