"""HTTP endpoint performance: `cidx serve --http` over a real corpus (Django's `db` package).

    python benchmarks/http_perf.py [--queries 200] [--subset django/db] [--runs 1]

Prints, in one run on one machine:
  startup      `cidx serve --http 127.0.0.1:0` from spawn to serve.json, to the
               first 200 from /healthz, and to the first /search answer (the
               index exists and is current: a catch-up that changes nothing)
  /search      round trip of a hybrid query, a new connection per request as
               curl makes it, p50/p95 over --queries queries, and the owner's
               own mean time per query (from /metrics)
  /healthz     round trip, p50/p95: the HTTP layer's own cost
  /metrics     one scrape's round trip, p50
  stop         SIGTERM to exit
The project and its index are kept in benchmarks/.cache/http-project, so a
second run (another version of cidx, the same machine) measures the same index:
`PYTHONPATH=/path/to/other/src python benchmarks/http_perf.py` runs that version.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).parent))

from _corpus import CACHE, queries as corpus_queries, unpack

CIDX = [sys.executable, "-m", "cidx"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def project(subset: str) -> Path:
    """The corpus subset, indexed once; later runs reuse it as it is."""
    root = CACHE / "http-project"
    marker = root / ".subset"
    if marker.exists() and marker.read_text() == subset:
        return root
    if root.exists():
        shutil.rmtree(root)
    full = unpack(CACHE / "http-django")
    shutil.copytree(full / subset, root / subset)
    shutil.rmtree(full)
    # Its own repository: the project root, not the checkout around the cache.
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    started = time.perf_counter()
    subprocess.run([*CIDX, "index"], cwd=root, check=True, capture_output=True)
    print(f"indexed {subset} in {time.perf_counter() - started:.0f} s")
    marker.write_text(subset)
    return root


class Client:
    def __init__(self, info: dict[str, Any]) -> None:
        parts = urlsplit(info["url"])
        assert parts.hostname is not None and parts.port is not None
        self.host, self.port = parts.hostname, parts.port
        # Older servers had no token on loopback and wrote none.
        token = info.get("token")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            target = path + ("?" + urlencode(params) if params else "")
            conn.request("GET", target, headers=self.headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def run(root: Path, texts: list[str], log: Path) -> None:
    info_file = root / ".code-indexer" / "serve.json"
    with log.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*CIDX, "serve", "--http", "127.0.0.1:0"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={k: v for k, v in os.environ.items() if k != "CIDX_HTTP_TOKEN"},
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                info = json.loads(info_file.read_text())
                if info.get("pid") == proc.pid:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.005)
        listening = time.perf_counter() - started
        client = Client(info)
        while client.get("/healthz")[0] != 200:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.005)
        healthy = time.perf_counter() - started
        status, _ = client.get("/search", {"q": texts[0]})
        assert status == 200
        first_search = time.perf_counter() - started
        print(
            f"startup: serve.json {listening * 1000:.0f} ms, first /healthz 200 "
            f"{healthy * 1000:.0f} ms, first /search answer {first_search * 1000:.0f} ms"
        )

        before = client.get("/metrics")[1].decode()
        rounds = []
        for text in texts:
            t0 = time.perf_counter()
            status, body = client.get("/search", {"q": text, "mode": "hybrid"})
            rounds.append(time.perf_counter() - t0)
            assert status == 200 and json.loads(body)["results"], body[:200]
        after = client.get("/metrics")[1].decode()
        name = "cidx_query_duration_seconds"
        count = metric(after, f"{name}_count") - metric(before, f"{name}_count")
        server = (metric(after, f"{name}_sum") - metric(before, f"{name}_sum")) / count
        print(
            f"/search (hybrid, {len(texts)} queries, new connection each): round trip "
            f"p50 {pct(rounds, 50) * 1000:.1f} ms, p95 {pct(rounds, 95) * 1000:.1f} ms "
            f"(the owner's own search: mean {server * 1000:.1f} ms)"
        )
        # /healthz does next to no work: its round trip is the HTTP layer's cost.
        pings = []
        for _ in range(len(texts)):
            t0 = time.perf_counter()
            assert client.get("/healthz")[0] == 200
            pings.append(time.perf_counter() - t0)
        print(
            f"/healthz round trip (the HTTP layer alone): p50 {pct(pings, 50) * 1000:.2f} ms, "
            f"p95 {pct(pings, 95) * 1000:.2f} ms"
        )
        scrapes = []
        for _ in range(50):
            t0 = time.perf_counter()
            assert client.get("/metrics")[0] == 200
            scrapes.append(time.perf_counter() - t0)
        print(f"/metrics scrape: p50 {pct(scrapes, 50) * 1000:.1f} ms")
    finally:
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        print(f"stop: SIGTERM → exit {code} in {(time.perf_counter() - t0) * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--subset", default="django/db")
    ap.add_argument("--runs", type=int, default=1, help="servers started one after another")
    a = ap.parse_args()
    root = project(a.subset)
    files = sum(1 for p in (root / a.subset).rglob("*") if p.is_file())
    texts = corpus_queries(root, a.queries)
    print(f"corpus: Django 5.2.19 {a.subset}, {files:,} files, {len(texts)} queries")
    for _ in range(a.runs):
        run(root, texts, CACHE / "http-serve.log")


if __name__ == "__main__":
    main()
