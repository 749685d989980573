"""`cidx serve --http`: a real owner process answering real HTTP on a real socket.

Most tests share one server (started once per module, on port 0, found
through `.code-indexer/serve.json`) over a small project; the token,
periodic and refusal cases start their own. Failures that a healthy engine
cannot be made to produce (an unexpected exception, a store error) are
driven in-process through the same HTTP server with a stub engine.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cidx import http_api
from cidx.errors import LockBusyError, StoreError, UsageError
from cidx.messages import Health, QueryAnswer, QueryRequest, SearchResult
from cidx.metrics import CONTENT_TYPE, Metrics
from cidx.project import ProjectPaths
from tests.conftest import cidx_cmd, run_cidx, write_files

PROJECT: dict[str, str | bytes] = {
    "src/uploads/retry.py": '''
        import time


        def retry_failed_uploads(queue, attempts=3):
            """Send every failed upload again, backing off between tries."""
            for item in queue.failed():
                for n in range(attempts):
                    if item.send():
                        break
                    time.sleep(2 ** n)
        ''',
    "src/auth/tokens.py": """
        import hmac


        def verify_token(token, secret):
            expected = hmac.new(secret, token.payload, "sha256").hexdigest()
            return hmac.compare_digest(expected, token.signature)
        """,
    "web/app.ts": """
        export function renderDashboard(user: User): string {
          return `<h1>Welcome ${user.name}</h1>`;
        }

        export function retryRequest(url: string, tries: number): Promise<Response> {
          return fetch(url).catch(() => retryRequest(url, tries - 1));
        }
        """,
    "README.md": """
        # Demo

        ## Deployment

        Run the container behind the load balancer; uploads retry on failure.
        """,
}

START_TIMEOUT = 90.0  # generous: two shared cores, other suites running
TOKEN = "s3cret-Token_42"


# -- a tiny HTTP client and a served project -----------------------------------


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json", self.headers
        return json.loads(self.body)


def fetch(
    url: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    parts = urlsplit(url)
    host = "127.0.0.1" if parts.hostname == "0.0.0.0" else parts.hostname
    assert host is not None and parts.port is not None
    conn = http.client.HTTPConnection(host, parts.port, timeout=60)
    try:
        target = path + ("?" + urlencode(params, doseq=True) if params else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


class Served:
    """One `cidx serve` process and where it listens."""

    def __init__(self, root: Path, proc: subprocess.Popen[bytes], log: Path, token: str | None):
        self.root = root
        self.paths = ProjectPaths(root)
        self.proc = proc
        self.log_path = log
        self.token = token
        self.url = ""

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Reply:
        headers = dict(kw.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return fetch(self.url, path, params, headers=headers, **kw)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        info = self.paths.index_dir / "serve.json"
        while True:
            assert self.proc.poll() is None, (
                f"cidx serve exited {self.proc.returncode}:\n{self.log()}"
            )
            assert time.monotonic() < deadline, f"cidx serve never became healthy:\n{self.log()}"
            if not self.url:
                try:
                    data = json.loads(info.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    time.sleep(0.05)
                    continue
                if data.get("pid") == self.proc.pid:
                    self.url = data["url"]
                continue
            if self.get("/healthz").status == 200:
                return
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, as a service manager would; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"cidx serve ignored SIGTERM:\n{self.log()}") from None

    def assert_stopped_cleanly(self) -> None:
        code = self.stop()
        assert code == 0, self.log()
        assert not (self.paths.index_dir / "serve.json").exists()
        assert not self.paths.socket_path.exists()
        assert not self.paths.owner_info.exists()
        assert "Traceback" not in self.log(), self.log()


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(home)}
    for name in (http_api.TOKEN_ENV, "CIDX_FAILPOINT"):
        env.pop(name, None)
    return env


def start_serve(
    root: Path, home: Path, *args: str, token: str | None = None, env: dict[str, str] | None = None
) -> Served:
    log = root.parent / f"serve-{root.name}.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [*cidx_cmd(), "serve", *args],
            cwd=root,
            env={**_env(home), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    served = Served(root, proc, log, token)
    try:
        served.wait_ready()
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    return served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("http")
    root = base / "proj"
    write_files(root, PROJECT)
    server = start_serve(root, base, "--http", "127.0.0.1:0")
    try:
        yield server
    finally:
        server.assert_stopped_cleanly()


def _metrics(served: Served) -> dict[str, float]:
    reply = served.get("/metrics")
    assert reply.status == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(reply.body.decode("utf-8")):
        for s in family.samples:
            key = s.name + (f"{{le={s.labels['le']}}}" if "le" in s.labels else "")
            samples[key] = s.value
    return samples


def _batch(root: Path, queries: list[str], *flags: str) -> list[dict[str, Any]]:
    out = run_cidx(["query", "--batch", "-", "--no-sync", *flags], root, input="\n".join(queries))
    return [json.loads(line) for line in out.stdout.splitlines()]


# -- the shared server ---------------------------------------------------------


def test_serve_json_names_the_bound_url(served: Served) -> None:
    data = json.loads((served.paths.index_dir / "serve.json").read_text(encoding="utf-8"))
    assert data["pid"] == served.proc.pid
    assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*", data["url"])
    assert f"HTTP API listening on {data['url']}" in served.log()


def test_healthz_reports_a_healthy_watcher(served: Served) -> None:
    reply = served.get("/healthz")
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    health = reply.json()
    assert set(health) == {
        "ok",
        "mode",
        "pid",
        "freshness_seconds",
        "lag_seconds",
        "queue_depth",
        "last_error",
        "last_sync_at",
    }
    assert health["ok"] is True
    assert health["mode"] == "watch"
    assert health["pid"] == served.proc.pid
    assert isinstance(health["freshness_seconds"], float) and health["freshness_seconds"] >= 0
    assert isinstance(health["lag_seconds"], float) and health["lag_seconds"] >= 0
    assert isinstance(health["queue_depth"], int) and health["queue_depth"] >= 0
    assert health["last_error"] is None
    assert datetime.fromisoformat(health["last_sync_at"]).tzinfo is not None


def _check_exposition(text: str) -> set[str]:
    """The 0.0.4 text format, checked line by line; the family names."""
    assert text.endswith("\n")
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    sample_names: set[str] = set()
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, doc = line[7:].partition(" ")
            assert name not in helps, f"two HELP lines for {name}"
            assert doc.strip(), f"empty HELP for {name}"
            helps[name] = doc
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current, f"TYPE {name} does not follow its HELP"
            assert name not in types, f"two TYPE lines for {name}"
            assert kind in ("counter", "gauge", "histogram"), line
            types[name] = kind
        else:
            match = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{le="([^"]+)"\})? (\S+)', line)
            assert match, f"not a sample line: {line!r}"
            name, value = match.group(1), match.group(4)
            assert current is not None and current in types, f"{name} before its TYPE"
            allowed = (
                {f"{current}_bucket", f"{current}_sum", f"{current}_count"}
                if types[current] == "histogram"
                else {current}
            )
            assert name in allowed, f"{name} inside the family {current}"
            assert (match.group(2) is not None) == (name.endswith("_bucket")), line
            key = line.rpartition(" ")[0]
            assert key not in sample_names, f"duplicate sample {key}"
            sample_names.add(key)
            number = float(value)
            assert math.isfinite(number) and number >= 0, line
    assert set(helps) == set(types)
    return set(types)


def test_metrics_are_strict_prometheus_text(served: Served) -> None:
    reply = served.get("/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == CONTENT_TYPE
    text = reply.body.decode("utf-8")
    declared = _check_exposition(text)
    assert declared == {i.name for i in Metrics().instruments()}

    families = list(text_string_to_metric_families(text))
    histograms = 0
    for family in families:
        assert family.type in ("counter", "gauge", "histogram"), family.name
        assert family.documentation, family.name
        if family.type != "histogram":
            continue
        histograms += 1
        buckets = [s for s in family.samples if s.name.endswith("_bucket")]
        bounds = [float(s.labels["le"]) for s in buckets]
        assert bounds == sorted(bounds) and bounds[-1] == math.inf
        counts = [s.value for s in buckets]
        assert counts == sorted(counts), f"{family.name} buckets are not cumulative"
        (count,) = [s.value for s in family.samples if s.name == f"{family.name}_count"]
        (total,) = [s.value for s in family.samples if s.name == f"{family.name}_sum"]
        assert counts[-1] == count and total >= 0
    assert histograms == 2

    before = _metrics(served)
    assert served.get("/search", {"q": "retry failed uploads"}).status == 200
    after = _metrics(served)
    assert (
        after["cidx_query_duration_seconds_count"]
        == before["cidx_query_duration_seconds_count"] + 1
    )
    assert after["cidx_queries_total"] == before["cidx_queries_total"] + 1
    assert (
        after["cidx_query_duration_seconds_bucket{le=+Inf}"]
        == (after["cidx_query_duration_seconds_count"])
    )
    assert after["cidx_syncs_total"] >= 1


def test_metrics_agree_with_status(served: Served) -> None:
    assert served.get("/healthz").json()["queue_depth"] == 0
    status = run_cidx(["status", "--json"], served.root).json()
    samples = _metrics(served)
    assert status["owner_pid"] == served.proc.pid and status["owner_kind"] == "serve"
    assert samples["cidx_files"] == status["files"] == len(PROJECT)
    assert samples["cidx_points"] == status["points"] > 0
    assert samples["cidx_chunks"] == status["chunks"]


def test_search_answers_exactly_like_a_batch_line(served: Served) -> None:
    queries = ["where do we retry failed uploads", "verify token signature", "dashboard"]
    expected = _batch(served.root, queries)
    got = []
    for q in queries:
        reply = served.get("/search", {"q": q})
        assert reply.status == 200
        got.append(reply.json())
    assert got == expected
    assert got[0]["results"][0]["path"] == "src/uploads/retry.py"
    assert list(got[0]["results"][0]) == [
        "path",
        "start_line",
        "end_line",
        "score",
        "language",
        "symbol",
        "kind",
        "text",
    ]

    # The same with every filter and a limit.
    flags = ["--mode", "keyword", "--path", "src/", "--path", "*.ts", "--limit", "2"]
    expected = _batch(served.root, ["retry"], *flags)
    params = {"q": "retry", "mode": "keyword", "path": ["src/", "*.ts"], "limit": "2"}
    assert [served.get("/search", params).json()] == expected


def test_search_filters(served: Served) -> None:
    def paths(**params: Any) -> list[str]:
        reply = served.get("/search", {"q": "retry", "limit": 20, **params})
        assert reply.status == 200, reply.body
        return [r["path"] for r in reply.json()["results"]]

    everything = paths()
    assert {"src/uploads/retry.py", "web/app.ts"} <= set(everything)
    assert set(paths(path="src/")) <= {"src/uploads/retry.py", "src/auth/tokens.py"}
    assert "src/uploads/retry.py" in paths(path="src/")
    assert set(paths(path=["*.ts", "*.md"])) == {"web/app.ts", "README.md"}
    assert set(paths(lang="typescript")) == {"web/app.ts"}
    assert set(paths(lang=["ts", "python"])) <= {
        "web/app.ts",
        "src/uploads/retry.py",
        "src/auth/tokens.py",
    }
    assert paths(path="nowhere/") == []
    assert len(paths(limit=1)) == 1

    for mode in ("semantic", "keyword", "hybrid"):
        reply = served.get("/search", {"q": "retry_failed_uploads", "mode": mode, "limit": 1})
        assert reply.json()["results"][0]["symbol"] == "retry_failed_uploads", mode
    # A keyword search for a word no file holds finds nothing; a semantic one
    # always finds its nearest neighbours.
    assert served.get("/search", {"q": "zyxwvut", "mode": "keyword"}).json()["results"] == []
    assert served.get("/search", {"q": "zyxwvut", "mode": "semantic"}).json()["results"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Pass the text to search for as q"),
        ({"q": "   "}, "Pass the text to search for as q"),
        ({"q": "x", "limit": "ten"}, "limit must be a whole number, not 'ten'"),
        ({"q": "x", "limit": "1.5"}, "limit must be a whole number"),
        ({"q": "x", "limit": "0"}, "limit must be between 1 and 1000, not 0"),
        ({"q": "x", "limit": "5000"}, "limit must be between 1 and 1000, not 5000"),
        ({"q": "x", "mode": "fuzzy"}, "Unknown mode 'fuzzy'. Use one of: hybrid, semantic"),
        ({"q": "x", "lang": "cobol"}, "No indexed file is in language 'cobol'"),
        ({"q": "x", "path": ""}, "A path parameter is empty"),
        ({"q": "x", "min_score": "high"}, "min_score must be a number"),
        ({"q": "x", "query": "y"}, "Unknown parameter 'query'"),
        ({"q": ["a", "b"]}, "Give q once"),
    ],
)
def test_bad_search_parameters_get_400(
    served: Served, params: dict[str, Any], message: str
) -> None:
    errors_before = _metrics(served)["cidx_errors_total"]
    reply = served.get("/search", params)
    assert reply.status == 400
    assert message in reply.json()["error"]
    assert set(reply.json()) == {"error"}
    # A client's mistake is not a server error.
    assert _metrics(served)["cidx_errors_total"] == errors_before


def test_unknown_paths_and_methods(served: Served) -> None:
    for path in ("/", "/nope", "/search/", "/healthz/x"):
        reply = served.get(path)
        assert reply.status == 404, path
        assert "/healthz, /metrics or /search" in reply.json()["error"]
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        reply = served.get("/search", {"q": "x"}, method=method, body=b'{"q": "x"}')
        assert reply.status == 405, method
        assert reply.headers["Allow"] == "GET"
        assert "GET only" in reply.json()["error"]
    head = served.get("/healthz", method="HEAD")
    assert head.status == 405 and head.body == b""
    # A malformed request gets JSON too, not http.server's HTML page.
    reply = served.get("/healthz", method="BREW")
    assert reply.status == 501 and "error" in reply.json()
    # The server survived all of it.
    assert served.get("/healthz").status == 200


def test_an_edit_is_searchable_within_seconds(served: Served) -> None:
    # Last on the shared server: it changes the index other tests compare.
    target = served.root / "src/uploads/retry.py"
    started = time.monotonic()
    with target.open("a", encoding="utf-8") as f:
        f.write("\n\ndef quarantine_poisoned_parcels(batch):\n    return [p for p in batch]\n")
    deadline = started + 30
    while True:
        results = served.get(
            "/search", {"q": "quarantine_poisoned_parcels", "mode": "keyword", "limit": 1}
        ).json()["results"]
        if results and results[0]["symbol"] == "quarantine_poisoned_parcels":
            break
        assert time.monotonic() < deadline, f"the edit never became searchable:\n{served.log()}"
        time.sleep(0.1)
    assert results[0]["path"] == "src/uploads/retry.py"
    elapsed = time.monotonic() - started
    print(f"edit searchable after {elapsed:.2f} s")
    health = served.get("/healthz").json()
    assert health["ok"] is True and health["freshness_seconds"] < 30


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
