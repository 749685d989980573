"""`cidx serve --http`: tokens, refusals, slow clients, drain, and failures a healthy engine cannot produce.

The token, periodic and refusal cases start `cidx serve` processes of their
own. What a real engine cannot be made to do on cue (raise an unexpected
exception or a store error, take its time over a search, answer with
megabytes) is driven in-process through the same HTTP server, on a real
socket, with a stub engine.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from cidx import http_api
from cidx.errors import LockBusyError, StoreError, UsageError
from cidx.messages import Health, QueryAnswer, QueryRequest, SearchResult
from cidx.metrics import Metrics
from tests.conftest import run_cidx, write_files
from tests.http_kit import PROJECT, TOKEN, Reply, fetch, start_serve

# -- servers of their own ------------------------------------------------------


def test_a_token_guards_every_request_on_any_address(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, PROJECT)
    server = start_serve(root, tmp_path, "--http", "0.0.0.0:0", "--token", TOKEN, token=TOKEN)
    try:
        assert re.fullmatch(r"http://0\.0\.0\.0:[1-9][0-9]*", server.url)
        assert "(bearer token required)" in server.log()
        for path in ("/healthz", "/metrics", "/search?q=retry", "/nope"):
            for headers in (
                {"Authorization": ""},
                {"Authorization": "Bearer wrong"},
                {"Authorization": f"Basic {TOKEN}"},
                {"Authorization": f"Bearer {TOKEN}x"},
            ):
                reply = server.get(path, headers=headers)
                assert reply.status == 401, (path, headers)
                assert reply.headers["WWW-Authenticate"].startswith("Bearer")
                assert TOKEN not in reply.body.decode()
                assert "error" in reply.json()
        # A token of the user's own is stored for local clients but never printed.
        info = json.loads(server.info_file.read_text(encoding="utf-8"))
        assert info["token"] == TOKEN and info["url"] == server.url
        assert server.info_file.stat().st_mode & 0o777 == 0o600
        assert TOKEN not in server.log()
        assert server.get("/healthz").json()["ok"] is True
        assert server.get("/metrics").status == 200
        assert server.get("/search", {"q": "retry"}).json()["results"]
        lower = server.get("/healthz", headers={"Authorization": f"bearer {TOKEN}"})
        assert lower.status == 200
        assert server.get("/nope").status == 404
    finally:
        server.assert_stopped_cleanly()


def test_periodic_mode_reports_itself(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, PROJECT)
    server = start_serve(root, tmp_path, "--http", "127.0.0.1:0", "--interval", "0.5")
    try:
        health = server.get("/healthz").json()
        assert health["mode"] == "periodic" and health["ok"] is True
        assert server.get("/search", {"q": "verify token"}).json()["results"]
    finally:
        server.assert_stopped_cleanly()
    assert "rescan every 0.5 s" in server.log()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http", "0.0.0.0:0"], "without a token"),
        (["--http", "[::]:0"], "without a token"),
        (["--http", "8765"], "has no port"),
        (["--http", "127.0.0.1:99999"], "must be a number from 0 to 65535"),
        (["--http", "::1:8765"], "in brackets"),
        (["--token", TOKEN], "--token only applies with --http"),
        (["--http", ":0", "--token", "two words"], "no spaces"),
    ],
)
def test_unsafe_or_malformed_options_are_refused(
    tmp_path: Path, args: list[str], message: str
) -> None:
    root = tmp_path / "proj"
    write_files(root, {"a.py": "x = 1\n"})
    out = run_cidx(["serve", *args], root, check=False, timeout=120)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    # Refused before anything was opened or created.
    assert not (root / ".code-indexer").exists()


# -- in-process: what a healthy engine cannot be made to do on cue ------------


class _StubEngine:
    def __init__(self) -> None:
        self.metrics = Metrics()
        self.fail: BaseException | None = None
        self.text = "def f(): ..."
        # Set, a search waits for `gate` after setting `entered`.
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def search_batch(self, requests: list[QueryRequest]) -> list[QueryAnswer]:
        if self.gate is not None:
            self.entered.set()
            self.gate.wait(60)
        if self.fail is not None:
            raise self.fail
        result = SearchResult("a.py", 1, 2, 0.5, "python", "f", "function", self.text)
        return [QueryAnswer(r.text, [result] * r.limit) for r in requests]


class _StubKeeper:
    def __init__(self) -> None:
        self.ok = False

    def health(self) -> Health:
        return Health(
            ok=self.ok,
            mode="watch",
            pid=os.getpid(),
            freshness_seconds=None,
            lag_seconds=0.0,
            queue_depth=3,
            last_error=None if self.ok else "StoreError: the disk is full.",
            last_sync_at=None,
        )


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def wait_for(self, found: Any, what: str) -> logging.LogRecord:
        deadline = time.monotonic() + 10
        while True:
            for record in list(self.records):
                if found(record):
                    return record
            assert time.monotonic() < deadline, f"no log record: {what}"
            time.sleep(0.01)


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger("cidx.http")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _start(
    engine: _StubEngine,
    keeper: _StubKeeper,
    *,
    address: str = "127.0.0.1:0",
    info_file: Path | None = None,
    **changes: Any,
) -> http_api.HttpServer:
    settings = dataclasses.replace(http_api.http_settings(address), **changes)
    server = http_api.HttpServer(engine, keeper, settings, root=Path("/proj"), info_file=info_file)
    server.start()
    return server


def _get(server: http_api.HttpServer, path: str, params: dict[str, Any] | None = None) -> Reply:
    headers = {"Authorization": f"Bearer {server.settings.token}"}
    return fetch(server.url, path, params, headers=headers)


def _address(server: http_api.HttpServer) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _closed_by_server(sock: socket.socket, wait: float) -> bool:
    """True once the server closed or reset the connection; False if still open after `wait`."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def stub_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[http_api.HttpServer, _StubEngine, _StubKeeper]]:
    monkeypatch.delenv(http_api.TOKEN_ENV, raising=False)
    engine, keeper = _StubEngine(), _StubKeeper()
    server = _start(engine, keeper, info_file=tmp_path / "serve.json")
    try:
        yield server, engine, keeper
    finally:
        server.stop()
    assert not (tmp_path / "serve.json").exists()
    server.stop()  # a second stop is harmless


def test_unexpected_errors_are_500_without_details(
    stub_server: tuple[http_api.HttpServer, _StubEngine, _StubKeeper], records: _Records
) -> None:
    server, engine, _ = stub_server
    engine.fail = RuntimeError("boom at /home/someone/secret.py")
    reply = _get(server, "/search", {"q": "x"})
    # The request line is logged once the response is sent: just after the
    # client has it.
    records.wait_for(
        lambda r: r.levelno == logging.DEBUG and "/search" in r.getMessage(), "request line"
    )
    assert reply.status == 500
    error = reply.json()["error"]
    assert "log" in error and "secret" not in error and "Traceback" not in error
    assert engine.metrics.errors.value == 1
    failed = [r for r in records.records if r.levelno == logging.ERROR]
    assert failed and failed[0].exc_info is not None  # the traceback is in the log


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (StoreError("The vector store refused the query. Run `cidx doctor`."), 500),
        (LockBusyError("The index is busy. Try again."), 503),
        (UsageError("That makes no sense."), 400),
    ],
)
def test_cidx_errors_get_their_status_and_message(
    stub_server: tuple[http_api.HttpServer, _StubEngine, _StubKeeper],
    error: Exception,
    status: int,
) -> None:
    server, engine, _ = stub_server
    engine.fail = error
    reply = _get(server, "/search", {"q": "x"})
    assert reply.status == status
    assert reply.json() == {"error": str(error)}
    assert engine.metrics.errors.value == (1 if status >= 500 else 0)


def test_an_unhealthy_keeper_is_503_and_the_info_file_is_written(
    stub_server: tuple[http_api.HttpServer, _StubEngine, _StubKeeper], tmp_path: Path
) -> None:
    server, _, keeper = stub_server
    info_file = tmp_path / "serve.json"
    info = json.loads(info_file.read_text(encoding="utf-8"))
    assert info == {"url": server.url, "pid": os.getpid(), "token": server.settings.token}
    assert info_file.stat().st_mode & 0o777 == 0o600
    reply = _get(server, "/healthz")
    assert reply.status == 503
    assert reply.json()["ok"] is False and reply.json()["last_sync_at"] is None
    keeper.ok = True
    assert _get(server, "/healthz").status == 200
    assert len(_get(server, "/search", {"q": "x", "limit": 1000}).json()["results"]) == 1000


def test_a_client_that_trickles_its_request_is_dropped(
    monkeypatch: pytest.MonkeyPatch, records: _Records
) -> None:
    monkeypatch.delenv(http_api.TOKEN_ENV, raising=False)
    server = _start(_StubEngine(), _StubKeeper(), request_timeout=0.5)
    try:
        with socket.create_connection(_address(server), timeout=30) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            # One header byte every 50 ms: always progress, never a whole request.
            dropped = False
            for byte in b"X-Slow: " + b"y" * 1000:
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    dropped = True
                if dropped or _closed_by_server(sock, 0.05):
                    break
                assert time.monotonic() - started < 20, "the trickling client was never dropped"
            elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 10, elapsed
        records.wait_for(lambda r: "Dropped the connection" in r.getMessage(), "the drop")
        # Others are still served.
        assert _get(server, "/healthz").status == 503
    finally:
        server.stop()


def test_a_client_that_stops_reading_is_dropped(
    monkeypatch: pytest.MonkeyPatch, records: _Records
) -> None:
    monkeypatch.delenv(http_api.TOKEN_ENV, raising=False)
    engine = _StubEngine()
    engine.text = "x" * 20_000  # 1,000 results: a 20 MB answer, far beyond socket buffers
    server = _start(engine, _StubKeeper(), request_timeout=0.5)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(_address(server))
        with sock:
            sock.sendall(
                b"GET /search?q=x&limit=1000 HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {server.settings.token}\r\n\r\n".encode()
            )
            # The client reads nothing until the server has given up on it.
            records.wait_for(lambda r: "Dropped the connection" in r.getMessage(), "the drop")
            received = b""
            try:
                while chunk := sock.recv(1 << 20):
                    received += chunk
            except ConnectionResetError:
                pass
        assert received.startswith(b"HTTP/1.1 200 ")
        assert len(received) < 20_000_000
        started = time.monotonic()
    finally:
        server.stop()
    # No request was left running.
    assert time.monotonic() - started < 5


def test_stop_lets_requests_in_flight_finish(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(http_api.TOKEN_ENV, raising=False)
    engine = _StubEngine()
    engine.gate = threading.Event()
    info_file = tmp_path / "serve.json"
    server = _start(engine, _StubKeeper(), info_file=info_file)
    replies: list[Reply] = []
    client = threading.Thread(target=lambda: replies.append(_get(server, "/search", {"q": "x"})))
    client.start()
    assert engine.entered.wait(30), "the search never started"
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    # While the search runs: serve.json is gone and new connections are refused...
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(_address(server), timeout=5).close()
        except ConnectionRefusedError:
            break
        assert time.monotonic() < deadline, "the server kept accepting after stop"
        time.sleep(0.01)
    assert not info_file.exists()
    assert stopper.is_alive() and client.is_alive()
    # ...and the request in flight still gets its whole answer.
    engine.gate.set()
    stopper.join(30)
    client.join(30)
    assert not stopper.is_alive() and not client.is_alive()
    [reply] = replies
    assert reply.status == 200 and len(reply.json()["results"]) == 10


def test_stop_gives_up_after_the_drain_timeout(
    monkeypatch: pytest.MonkeyPatch, records: _Records
) -> None:
    monkeypatch.delenv(http_api.TOKEN_ENV, raising=False)
    engine = _StubEngine()
    engine.gate = threading.Event()
    server = _start(engine, _StubKeeper())
    client = threading.Thread(target=lambda: _get(server, "/search", {"q": "x"}), daemon=True)
    client.start()
    try:
        assert engine.entered.wait(30), "the search never started"
        started = time.monotonic()
        server.stop(timeout=0.5)
        assert time.monotonic() - started < 5
        records.wait_for(lambda r: "still running after" in r.getMessage(), "the warning")
    finally:
        engine.gate.set()
        client.join(30)


def test_addresses_and_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(http_api.TOKEN_ENV, raising=False)
    loop = http_api.http_settings(":8765")
    assert loop.listen.sockaddr[:2] == ("127.0.0.1", 8765) and loop.listen.loopback
    # No token given on loopback: one is made, different every time.
    assert loop.generated and re.fullmatch(r"[A-Za-z0-9_-]{43}", loop.token)
    assert http_api.http_settings(":8765").token != loop.token
    assert http_api.http_settings("localhost:0").listen.loopback
    six = http_api.http_settings("[::1]:0").listen
    assert six.family == socket.AF_INET6 and six.loopback
    assert http_api.parse_address(" [::1]:8765 ") == ("::1", 8765)
    with pytest.raises(UsageError, match="without a token"):
        http_api.http_settings("10.1.2.3:8765")
    beyond = http_api.http_settings("10.1.2.3:8765", TOKEN)
    assert not beyond.listen.loopback and beyond.token == TOKEN and not beyond.generated
    with pytest.raises(UsageError, match="non-empty"):
        http_api.http_settings(":0", "")
    with pytest.raises(UsageError, match="Cannot resolve"):
        http_api.http_settings("no-such-host.invalid:80")
    monkeypatch.setenv(http_api.TOKEN_ENV, TOKEN)
    assert http_api.http_settings("0.0.0.0:0").token == TOKEN
    assert http_api.http_settings("0.0.0.0:0", "flag-wins").token == "flag-wins"
    monkeypatch.setenv(http_api.TOKEN_ENV, "")  # exported but empty: unset
    assert http_api.http_settings(":0").generated


def test_ipv6_loopback_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(http_api.TOKEN_ENV, raising=False)
    try:
        server = _start(_StubEngine(), _StubKeeper(), address="[::1]:0")
    except UsageError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert server.url.startswith("http://[::1]:")
        parts = urlsplit(server.url)
        conn = http.client.HTTPConnection("::1", parts.port, timeout=30)
        conn.request(
            "GET", "/healthz", headers={"Authorization": f"Bearer {server.settings.token}"}
        )
        assert conn.getresponse().status == 503
        conn.close()
    finally:
        server.stop()


def test_query_loads_no_http_stack(tmp_path: Path) -> None:
    # Only `cidx serve` needs Starlette, uvicorn and prometheus-client; every
    # other command starts without paying for their imports.
    root = tmp_path / "proj"
    write_files(root, {"a.py": "def ping():\n    return 1\n"})
    out = run_cidx(["query", "ping", "--json"], root, env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {
        line.rpartition("|")[2].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "cidx.search" in imported  # the list holds the query's own imports
    heavy = {"starlette", "uvicorn", "prometheus_client", "h11", "cidx.http_api"}
    assert not {name for name in imported if name.split(".")[0] in heavy or name in heavy}
