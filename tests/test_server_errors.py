"""The server store's failures: each one a clear message, and its next step works.

A Qdrant server cannot be installed here, so the answers a server gives when
it cannot be used — refusing the API key, reporting an old version, failing
for a while — come from a small HTTP server in this file that answers the
two requests the store makes first (`GET /` for the version, `GET
/collections`) as Qdrant does. It exercises the real client, the real HTTP
and TLS stack and cidx's handling of them; everything else the store does
is tested against qdrant-client's local mode and, when
$CIDX_TEST_QDRANT_URL is set, a real server (test_store_contract.py).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cidx.errors import ConfigError, ServerError
from cidx.store.server import ServerStore
from cidx.store.server_settings import API_KEY_ENV, ServerSettings, api_key_file
from tests.conftest import run_cidx, write_files

KEY = "s3cret-key-for-tests-7f1c"


@dataclass
class Answers:
    """How the stand-in answers, and what it was asked."""

    version: str | None = "1.19.1"  # None: not a Qdrant server (an HTML page)
    key: str | None = None  # the API key it wants
    fail_first: int = 0  # answer this many requests with 503 first
    delay: float = 0.0  # seconds before answering GET /
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    answers: Answers

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: object, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        a = self.answers
        a.requests.append((self.path, self.headers.get("api-key")))
        if len(a.requests) <= a.fail_first:
            self._send(503, {"status": {"error": "Service Unavailable: starting up"}})
            return
        if a.key is not None:
            given = self.headers.get("api-key")
            if given is None:
                self._send(401, {"status": {"error": "Must provide an API key"}})
                return
            if given != a.key:
                self._send(403, {"status": {"error": "Invalid api-key"}})
                return
        if self.path == "/":
            if a.delay:
                time.sleep(a.delay)  # the stand-in being slow, not the test waiting
            if a.version is None:
                self._send(200, "<html>not qdrant</html>", "text/html")
            else:
                self._send(200, {"title": "qdrant - vector search engine", "version": a.version})
        elif self.path == "/collections":
            self._send(200, {"result": {"collections": []}, "status": "ok", "time": 0.0})
        else:
            self._send(404, {"status": {"error": f"Not found: {self.path}"}})


@dataclass
class Stub:
    url: str
    answers: Answers
    cert: Path | None = None


def _serve(answers: Answers, tls: Path | None = None, port: int = 0) -> Iterator[Stub]:
    handler = type("Handler", (_Handler,), {"answers": answers})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    scheme = "http"
    cert: Path | None = None
    if tls is not None:
        cert, key = tls / "cert.pem", tls / "key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Stub(f"{scheme}://127.0.0.1:{server.server_address[1]}", answers, cert)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stub() -> Iterator[Stub]:
    yield from _serve(Answers())


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)


def _store(url: str, **settings: object) -> ServerStore:
    return ServerStore.connect(ServerSettings(url=url, **settings))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_named_and_retried(tmp_path: Path) -> None:
    port = _closed_port()
    store = _store(f"http://127.0.0.1:{port}", retries=2)
    with pytest.raises(ServerError) as err:
        store.list_collections()
    assert f"Cannot reach the Qdrant server at http://127.0.0.1:{port}" in err.value.message
    assert "3 attempts" in err.value.message
    # The next step: once the server runs there, the same store works.
    for _ in _serve(Answers(), port=port):
        assert store.list_collections() == []
    store.close()


def test_init_on_an_unreachable_server_writes_nothing(tmp_path: Path) -> None:
    port = _closed_port()
    write_files(tmp_path, {"a.py": "def a():\n    return 1\n"})
    result = run_cidx(
        ["init", "--storage", "server", "--qdrant-url", f"http://127.0.0.1:{port}"],
        tmp_path,
        check=False,
    )
    assert result.returncode == 6, result.stderr
    assert f"Cannot reach the Qdrant server at http://127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / ".code-indexer" / "config.json").exists()


def test_transient_failures_are_retried(stub: Stub) -> None:
    stub.answers.fail_first = 2
    store = _store(stub.url, retries=3)
    assert store.list_collections() == []
    assert [path for path, _ in stub.answers.requests] == ["/", "/", "/", "/collections"]
    store.close()


def test_a_server_that_stays_unavailable_fails_after_the_retries(stub: Stub) -> None:
    stub.answers.fail_first = 10
    store = _store(stub.url, retries=1)
    with pytest.raises(ServerError, match=r"overloaded or unavailable .*starting up.*2 attempts"):
        store.list_collections()
    assert len(stub.answers.requests) == 2
    store.close()


def test_a_slow_server_times_out(stub: Stub) -> None:
    stub.answers.delay = 3.0
    store = _store(stub.url, retries=0, timeout=1)
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"did not answer within 1 s"):
        store.list_collections()
    assert time.monotonic() - started < 2.9
    store.close()


def test_a_refused_key_is_named_by_its_source_never_shown(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.answers.key = KEY
    with pytest.raises(
        ServerError, match=r"refused the request: no API key was given \(HTTP 401\)"
    ):
        _store(stub.url).list_collections()
    monkeypatch.setenv(API_KEY_ENV, "wrong-" + KEY)
    with pytest.raises(ServerError) as err:
        _store(stub.url).list_collections()
    assert f"refused the API key from ${API_KEY_ENV} (HTTP 403)" in err.value.message
    assert KEY not in err.value.message and "wrong-" not in err.value.message
    # The next step: the right key.
    monkeypatch.setenv(API_KEY_ENV, KEY)
    assert _store(stub.url).list_collections() == []
    assert stub.answers.requests[-1] == ("/collections", KEY)


def test_the_key_file_must_be_private(stub: Stub) -> None:
    stub.answers.key = KEY
    path = api_key_file()
    path.parent.mkdir(parents=True)
    path.write_text(KEY + "\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=rf"may be read by other users.*chmod 600 {path}"):
        _store(stub.url)
    path.chmod(0o600)  # the advised step
    assert _store(stub.url).list_collections() == []
    path.write_text("wrong\n")
    with pytest.raises(ServerError, match=rf"refused the API key in {path} \(HTTP 403\)"):
        _store(stub.url).list_collections()


def test_no_key_over_plain_http_beyond_this_machine() -> None:
    with pytest.raises(ServerError, match=r"Refusing to send the Qdrant API key over plain HTTP"):
        ServerStore.connect(ServerSettings(url="http://qdrant.example:6333"), api_key=KEY)
    # Loopback (a server on this machine) is allowed, and TLS anywhere.
    ServerStore.connect(ServerSettings(url="http://localhost:6333"), api_key=KEY).close()
    ServerStore.connect(ServerSettings(url="https://qdrant.example:6333"), api_key=KEY).close()


@pytest.mark.parametrize("version", ["1.12.4", "2.0.0", "banana"])
def test_an_unsupported_version_is_refused(stub: Stub, version: str) -> None:
    stub.answers.version = version
    with pytest.raises(ServerError) as err:
        _store(stub.url).list_collections()
    assert f"runs version {version}, which this cidx cannot use" in err.value.message
    assert "needs Qdrant 1.19 or newer, below 2.0" in err.value.message
    # After an upgrade the same store works.
    stub.answers.version = "1.20.0"
    assert _store(stub.url).list_collections() == []


def test_something_else_than_qdrant(stub: Stub) -> None:
    stub.answers.version = None
    with pytest.raises(ServerError, match="did not answer like a Qdrant server"):
        _store(stub.url).list_collections()


def test_tls_is_verified(tmp_path: Path) -> None:
    for stub in _serve(Answers(), tls=tmp_path):
        with pytest.raises(ServerError) as err:
            _store(stub.url, retries=3).list_collections()
        assert f"The TLS certificate of the Qdrant server at {stub.url}" in err.value.message
        assert "--qdrant-ca-file" in err.value.message
        assert len(stub.answers.requests) == 0  # never retried, never sent
        # The advised step: trust the server's certificate authority.
        assert stub.cert is not None
        assert _store(stub.url, ca_file=str(stub.cert)).list_collections() == []


def test_init_reports_a_refused_key_without_printing_it(tmp_path: Path) -> None:
    for stub in _serve(Answers(key=KEY)):
        project = tmp_path / "p"
        write_files(project, {"a.py": "def a():\n    return 1\n"})
        env = {API_KEY_ENV: "not-" + KEY}
        result = run_cidx(
            ["init", "--storage", "server", "--qdrant-url", stub.url], project, env=env, check=False
        )
        assert result.returncode == 6
        assert f"refused the API key from ${API_KEY_ENV} (HTTP 403)" in result.stderr
        assert KEY not in result.stderr + result.stdout
        assert not (project / ".code-indexer" / "config.json").exists()


def test_cli_usage_errors(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.py": "x = 1\n"})
    for args, message in [
        (["--storage", "server"], "--storage server needs --qdrant-url"),
        (["--storage", "cloud"], "Unknown --storage 'cloud'"),
        (["--storage", "local", "--qdrant-url", "http://h:6333"], "--qdrant-url goes with"),
        (["--qdrant-url", "ftp://h"], "is not a Qdrant server URL"),
        (["--qdrant-url", "https://user:pw@h:6333"], "must not carry credentials"),
        (["--qdrant-url", "https://h:6333", "--qdrant-ca-file", "none.pem"], "is not a file"),
    ]:
        result = run_cidx(["init", *args], tmp_path, check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "pw" not in result.stderr
    assert not (tmp_path / ".code-indexer").exists()


def test_key_file_location_follows_the_user_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIDX_CONFIG_DIR", str(tmp_path / "conf"))
    assert api_key_file() == tmp_path / "conf" / "qdrant-api-key"
    monkeypatch.delenv("CIDX_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert api_key_file() == tmp_path / "xdg" / "cidx" / "qdrant-api-key"
    assert os.environ["HOME"] not in str(api_key_file())


def test_a_bad_ca_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=rf"Cannot read the certificate authorities in {bad}"):
        _store("https://127.0.0.1:6333", ca_file=str(bad))
