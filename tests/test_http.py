"""`cidx serve --http`: one real owner process answering real HTTP.

The tests here share one server (started once per module on loopback, port
0, with no token given: URL and the token it made are read from
`.code-indexer/serve.json`, as clients do) over a small project; a given
token, periodic mode, refusals, and the in-process cases (failures, slow
clients, drain on stop) are in `test_http_guard.py`.
"""

from __future__ import annotations

import json
import math
import re
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from cidx import http_api
from cidx.metrics import Metrics
from tests.conftest import run_cidx, write_files
from tests.http_kit import PROJECT, Served, fetch, start_serve

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


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


def test_serve_json_names_the_url_and_the_token_for_the_owner_only(served: Served) -> None:
    info_file = served.info_file
    data = json.loads(info_file.read_text(encoding="utf-8"))
    assert set(data) == {"url", "pid", "token"}
    assert data["pid"] == served.proc.pid
    assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*", data["url"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", data["token"])  # 256 bits, URL-safe
    assert info_file.stat().st_mode & 0o777 == http_api.INFO_FILE_MODE == 0o600
    assert not list(info_file.parent.glob(".serve.json.*"))  # no temporary file left
    # The owner's log shows a ready-to-use command with the token it made.
    hint = (
        f"HTTP API listening on {data['url']} with a token made for this run (also in "
        f"{info_file}): curl -H 'Authorization: Bearer {data['token']}' "
        f"'{data['url']}/search?q=TEXT'"
    )
    assert hint in served.log()


def test_loopback_needs_the_token_too(served: Served) -> None:
    # Any local user can reach loopback: without the token from serve.json
    # (which only the owner can read) nothing is answered, not even a 404.
    for path in ("/healthz", "/metrics", "/search?q=retry", "/nope"):
        reply = fetch(served.url, path)
        assert reply.status == 401, path
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="cidx"'
        assert "serve.json" in reply.json()["error"]
        wrong = fetch(served.url, path, headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status == 401, path
        assert "wrong" in wrong.json()["error"]
    # With the token from serve.json, the same requests are answered.
    token = json.loads(served.info_file.read_text(encoding="utf-8"))["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert fetch(served.url, "/healthz", headers=headers).status == 200
    assert fetch(served.url, "/search", {"q": "retry"}, headers=headers).json()["results"]


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
    # Prometheus text unless the scraper asks for OpenMetrics (below).
    assert reply.headers["Content-Type"] == PROMETHEUS_TEXT
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


def test_metrics_in_openmetrics_when_asked(served: Served) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    reply = served.get("/metrics", headers={"Accept": accept})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = reply.body.decode("utf-8")
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    # OpenMetrics names a counter's family without `_total`; its sample keeps it.
    names = {
        i.name.removesuffix("_total") if i.name.endswith("_total") else i.name
        for i in Metrics().instruments()
    }
    assert set(families) == names
    (sample,) = families["cidx_syncs"].samples
    assert sample.name == "cidx_syncs_total" and sample.value >= 1


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
    assert got[0]["root"] == str(served.root)
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
        "also",
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
        ({"q": "x", "mode": "fuzzy"}, "mode must be one of hybrid, semantic, keyword, not 'fuzzy'"),
        ({"q": "x", "lang": "cobol"}, "Unknown language 'cobol'. Languages in this index:"),
        ({"q": "x", "path": ""}, "path has an empty glob"),
        ({"q": "x", "lang": " "}, "lang has an empty value"),
        ({"q": "x", "min_score": "nan"}, "min_score must be a number, not nan"),
        # Checked by the search, named as /search names the parameter.
        ({"q": "x", "path": "["}, "path has a glob that cannot be used, '['"),
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
    assert head.status == 405 and head.body == b"" and head.headers["Allow"] == "GET"
    # A method HTTP does not define is 501, in JSON too.
    reply = served.get("/healthz", method="BREW")
    assert reply.status == 501 and "BREW" in reply.json()["error"]
    # So is an answer to bytes that are not HTTP at all, never plain text or HTML.
    for garbage in (b"NOT HTTP\r\n\r\n", b"GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n"):
        status, headers, body = _raw(served, garbage)
        assert status == 400, body
        assert headers["content-type"] == "application/json"
        assert "error" in json.loads(body)
    # The server survived all of it.
    assert served.get("/healthz").status == 200
    assert "Traceback" not in served.log()


def _raw(served: Served, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, headers and body of the answer."""
    parts = urlsplit(served.url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, body


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
