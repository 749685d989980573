"""The endpoint's routes as a Starlette app: /healthz, /metrics and /search, GET only.

`GET /healthz` reports how current the live index is (200 when healthy, 503
when not), `GET /metrics` the owner's instruments for Prometheus, and `GET
/search` answers one query with exactly the JSON object a `cidx query
--batch` line holds. Every request must carry the bearer token, checked in
constant time before routing, so a client without it learns nothing, not
even which paths exist; /healthz is no exception, since it shows the pid
and the last sync error, which can name files. Other standard methods get
405 with `Allow: GET`, unknown ones 501. Every answer but a scrape is JSON,
errors included: never a traceback or an HTML page. Handlers run on worker
threads (a search blocks); each request is logged once, at DEBUG, to the
`cidx.http` logger.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from http import HTTPStatus
from typing import Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cidx.errors import CidxError, InvalidQuery, LockBusyError, OwnerError, UsageError
from cidx.http_api._collector import exposition
from cidx.http_api._request import SEARCH_LABELS, parse_query, search_request
from cidx.messages import QueryAnswer, QueryRequest
from cidx.metrics import Counter, Metrics
from cidx.served import Freshness as HealthSource

log = logging.getLogger("cidx.http")

JSON_CONTENT_TYPE = "application/json"
PATHS_HINT = "Use /healthz, /metrics or /search?q=TEXT."
# Methods HTTP defines: these get 405 on our paths; anything else is 501.
STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


class Searchable(Protocol):
    """What the endpoint needs of an engine (`cidx.engine.Engine` in practice)."""

    metrics: Metrics

    def search_batch(self, requests: list[QueryRequest]) -> list[QueryAnswer]: ...


def json_response(
    status: HTTPStatus, data: object, headers: Mapping[str, str] | None = None
) -> Response:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return Response(body, status_code=status, media_type=JSON_CONTENT_TYPE, headers=headers)


def error_response(
    status: HTTPStatus, message: str, headers: Mapping[str, str] | None = None
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


def token_denial(authorization: bytes | None, token: bytes) -> Response | None:
    """The 401 for a request without the right bearer token; None when it has it."""
    challenge = 'Bearer realm="cidx"'
    scheme, _, credentials = (authorization or b"").strip().partition(b" ")
    credentials = credentials.strip()
    if scheme.lower() != b"bearer" or not credentials:
        return error_response(
            HTTPStatus.UNAUTHORIZED,
            "This server needs a token: send `Authorization: Bearer TOKEN`. Its owner "
            "finds it in .code-indexer/serve.json.",
            {"WWW-Authenticate": challenge},
        )
    # The bytes the client sent, compared in constant time.
    if not hmac.compare_digest(credentials, token):
        return error_response(
            HTTPStatus.UNAUTHORIZED,
            "The bearer token is wrong.",
            {"WWW-Authenticate": f'{challenge}, error="invalid_token"'},
        )
    return None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class _RequireToken:
    """Answers 401 before routing unless the request carries the token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            denied = token_denial(_header(scope, b"authorization"), self.token)
            if denied is not None:
                await denied(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _LogAndNoStore:
    """Logs each request once with its duration, and marks every answer uncacheable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, size = 0, 0

        async def send_marked(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"cache-control", b"no-store")]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_marked)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            client = scope.get("client")
            log.debug(
                '%s "%s %s" %d %d %.1f ms',
                client[0] if client else "-",
                scope["method"],
                scope["path"] + (f"?{query}" if query else ""),
                status,
                size,
                (time.perf_counter() - started) * 1000,
            )


Handler = Callable[[Request], Response]


class _GetOnly:
    """One path's ASGI app: GET runs the handler on a worker thread; failures become JSON."""

    def __init__(self, path: str, handler: Handler, errors: Counter) -> None:
        self.path = path
        self.handler = handler
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._respond(Request(scope, receive))
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        method = request.method
        if method not in STANDARD_METHODS:
            return error_response(
                HTTPStatus.NOT_IMPLEMENTED, f"{method} is not a method this server knows."
            )
        if method != "GET":
            return error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{self.path} answers GET only, not {method}.",
                {"Allow": "GET"},
            )
        try:
            return await run_in_threadpool(self.handler, request)
        except CidxError as exc:
            status = status_for(exc)
            if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                log.error("%s %s failed: %s", method, self.path, exc.message)
                self.errors.inc()
            return error_response(status, exc.message)
        except Exception:
            log.exception("%s %s failed", method, self.path)
            self.errors.inc()
            return _failed()


def _failed() -> Response:
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "The server failed to answer this request; its log (.code-indexer/logs/cidx.log) says why.",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    # The router's only HTTPException: no route has a method list.
    assert isinstance(exc, HTTPException)
    if exc.status_code == HTTPStatus.NOT_FOUND:
        message = f"There is no {request.url.path!r} here. {PATHS_HINT}"
    else:
        message = f"{exc.detail}."
    return error_response(HTTPStatus(exc.status_code), message, exc.headers)


async def _crashed(request: Request, exc: Exception) -> Response:
    # A bug outside the handlers (they catch their own): Starlette re-raises
    # it after this answer, and the server logs the traceback.
    return _failed()


def create_app(engine: Searchable, keeper: HealthSource, *, token: str, root: str) -> Starlette:
    """The endpoint of one owner: `engine` answers searches of the project at `root`,
    `keeper` health."""

    def healthz(_request: Request) -> Response:
        health = keeper.health()
        status = HTTPStatus.OK if health.ok else HTTPStatus.SERVICE_UNAVAILABLE
        return json_response(status, asdict(health))

    def metrics(request: Request) -> Response:
        body, content_type = exposition(engine.metrics, request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    def search(request: Request) -> Response:
        query = request.scope["query_string"].decode("latin-1")
        search = search_request(parse_query(query))
        # The index is searched as it is: the watcher keeps it current, and a
        # pre-search sync per request would serialise every query behind the
        # write lock.
        try:
            [answer] = engine.search_batch([search])
        except InvalidQuery as exc:
            raise exc.relabel(SEARCH_LABELS) from None
        return json_response(HTTPStatus.OK, answer.as_json(root))

    handlers: dict[str, Handler] = {"/healthz": healthz, "/metrics": metrics, "/search": search}
    app = Starlette(
        routes=[
            Route(path, _GetOnly(path, handler, engine.metrics.errors))
            for path, handler in handlers.items()
        ],
        # Outermost first: every answer is logged and marked, a 401 included.
        middleware=[Middleware(_LogAndNoStore), Middleware(_RequireToken, token=token)],
        exception_handlers={HTTPException: _http_error, Exception: _crashed},
    )
    # `/search/` is not `/search`: a 404, not a redirect.
    app.router.redirect_slashes = False
    return app
