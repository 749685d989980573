"""`cidx serve --http`: tokens, refusals, and failures a healthy engine cannot produce.

The token, periodic and refusal cases start `cidx serve` processes of their
own. Failures that a healthy engine cannot be made to produce (an unexpected
exception, a store error) are driven in-process through the same HTTP server
with a stub engine.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cidx import http_api
from cidx.errors import LockBusyError, StoreError, UsageError
from cidx.messages import Health, QueryAnswer, QueryRequest, SearchResult
from cidx.metrics import Metrics
from tests.conftest import run_cidx, write_files
from tests.http_kit import PROJECT, TOKEN, fetch, start_serve

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


# -- in-process: failures a healthy engine cannot produce ---------------------


class _StubEngine:
    def __init__(self) -> None:
        self.metrics = Metrics()
        self.fail: BaseException | None = None

    def search_batch(self, requests: list[QueryRequest]) -> list[QueryAnswer]:
        if self.fail is not None:
            raise self.fail
        result = SearchResult("a.py", 1, 2, 0.5, "python", "f", "function", "def f(): ...")
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


@pytest.fixture
def stub_server(tmp_path: Path) -> Iterator[tuple[http_api.HttpServer, _StubEngine, _StubKeeper]]:
    engine, keeper = _StubEngine(), _StubKeeper()
    server = http_api.HttpServer(
        http_api.Api(engine, keeper),
        http_api.resolve_address("127.0.0.1:0"),
        info_file=tmp_path / "serve.json",
    )
    server.start()
    try:
        yield server, engine, keeper
    finally:
        server.stop()
    assert not (tmp_path / "serve.json").exists()
    server.stop()  # a second stop is harmless


def test_unexpected_errors_are_500_without_details(
    stub_server: tuple[http_api.HttpServer, _StubEngine, _StubKeeper],
) -> None:
    server, engine, _ = stub_server
    records = _Records()
    logger = logging.getLogger("cidx.http")
    logger.addHandler(records)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        engine.fail = RuntimeError("boom at /home/someone/secret.py")
        reply = fetch(server.url, "/search", {"q": "x"})
        # The request line is logged once the response is sent: just after
        # the client has it.
        deadline = time.monotonic() + 10
        while not any(r.levelno == logging.DEBUG for r in records.records):
            assert time.monotonic() < deadline, "no DEBUG line for the request"
            time.sleep(0.01)
    finally:
        logger.removeHandler(records)
        logger.setLevel(old_level)
    assert reply.status == 500
    error = reply.json()["error"]
    assert "log" in error and "secret" not in error and "Traceback" not in error
    assert engine.metrics.errors.value == 1
    failed = [r for r in records.records if r.levelno == logging.ERROR]
    assert failed and failed[0].exc_info is not None  # the traceback is in the log
    assert any(r.levelno == logging.DEBUG and "/search" in r.getMessage() for r in records.records)


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
    reply = fetch(server.url, "/search", {"q": "x"})
    assert reply.status == status
    assert reply.json() == {"error": str(error)}
    assert engine.metrics.errors.value == (1 if status >= 500 else 0)


def test_an_unhealthy_keeper_is_503_and_the_info_file_is_written(
    stub_server: tuple[http_api.HttpServer, _StubEngine, _StubKeeper], tmp_path: Path
) -> None:
    server, _, keeper = stub_server
    info = json.loads((tmp_path / "serve.json").read_text(encoding="utf-8"))
    assert info == {"url": server.url, "pid": os.getpid()}
    reply = fetch(server.url, "/healthz")
    assert reply.status == 503
    assert reply.json()["ok"] is False and reply.json()["last_sync_at"] is None
    keeper.ok = True
    assert fetch(server.url, "/healthz").status == 200
    assert len(fetch(server.url, "/search", {"q": "x", "limit": 1000}).json()["results"]) == 1000


def test_addresses_and_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(http_api.TOKEN_ENV, raising=False)
    loop = http_api.http_settings(":8765")
    assert loop.listen.sockaddr[:2] == ("127.0.0.1", 8765) and loop.listen.loopback
    assert loop.token is None
    assert http_api.http_settings("localhost:0").listen.loopback
    six = http_api.http_settings("[::1]:0").listen
    assert six.family == socket.AF_INET6 and six.loopback
    assert http_api.parse_address(" [::1]:8765 ") == ("::1", 8765)
    with pytest.raises(UsageError, match="without a token"):
        http_api.http_settings("10.1.2.3:8765")
    assert not http_api.http_settings("10.1.2.3:8765", TOKEN).listen.loopback
    with pytest.raises(UsageError, match="non-empty"):
        http_api.http_settings(":0", "")
    with pytest.raises(UsageError, match="Cannot resolve"):
        http_api.http_settings("no-such-host.invalid:80")
    monkeypatch.setenv(http_api.TOKEN_ENV, TOKEN)
    assert http_api.http_settings("0.0.0.0:0").token == TOKEN
    assert http_api.http_settings("0.0.0.0:0", "flag-wins").token == "flag-wins"
    monkeypatch.setenv(http_api.TOKEN_ENV, "")  # exported but empty: unset
    assert http_api.http_settings(":0").token is None


def test_ipv6_loopback_serves(tmp_path: Path) -> None:
    try:
        listen = http_api.resolve_address("[::1]:0")
        server = http_api.HttpServer(http_api.Api(_StubEngine(), _StubKeeper()), listen)
        server.start()
    except UsageError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert server.url.startswith("http://[::1]:")
        parts = urlsplit(server.url)
        conn = http.client.HTTPConnection("::1", parts.port, timeout=30)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 503
        conn.close()
    finally:
        server.stop()
