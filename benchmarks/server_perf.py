"""The server store beside the embedded store: index and query throughput, batch sizes.

    python benchmarks/server_perf.py [--points 20000] [--queries 100]
    python benchmarks/server_perf.py --sizing 100000     # RAM and disk per 100k points

No Qdrant server can be installed here, so "server" is the server store
(`cidx.store.server.ServerStore`, the real qdrant-client code path) on
qdrant-client's in-process local mode, on disk (`local:` URL) and in memory.
The figures compare the store layers, not a networked server: local mode
searches by brute force in NumPy and persists to SQLite, while a real server
adds a network round trip per request and searches with its own Rust engine
(docs/server.md). Points are the synthetic, embedding-shaped points of
benchmarks/store_scale.py (384-d dense around 2,000 centres, Zipf sparse
vectors, code-sized payloads). Prints:

  upsert          points/s filling a collection in batches of 256
  hybrid query    p50 / p95 ms of the query pair `cidx query` sends in hybrid
                  mode (dense 50 ∪ BM25 50, re-scored by each side), one
                  `query_batch` call, and queries/s
  batch sizes     upsert points/s on the server store for each
                  `upsert_batch` (points per request), in memory
                  (`--batch-points`) and on disk (a tenth as many)
  agreement       the share of hybrid top-10s identical on both backends

`--sizing N` fills the embedded store with N points in a fresh process and
prints its resident memory (RSS, before and after a round of queries) and
its size on disk, per 100k points: the figure docs/server.md extrapolates
from.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_scale import DIM, Synthetic, pct

from cidx.fsutil import disk_usage
from cidx.store import Nearest, StoreQuery, VectorStore
from cidx.store.edge import EdgeStore
from cidx.store.server import ServerStore
from cidx.store.server_settings import ServerSettings

BATCH = 256
BATCH_SIZES = (32, 128, 256, 1024, 4096)


def _open(kind: str, work: Path, batch: int = BATCH) -> VectorStore:
    if kind == "embedded":
        return EdgeStore(work / "edge")
    if kind == "server (local mode, disk)":
        return ServerStore.connect(
            ServerSettings(url=f"local:{work / f'local-{batch}'}", upsert_batch=batch)
        )
    return ServerStore.in_memory(ServerSettings(url="local:/memory", upsert_batch=batch))


def fill(store: VectorStore, n: int, chunk: int = 2048) -> float:
    """Points/s writing `n` points, `chunk` points per `upsert` call (the
    store splits them into its own batches)."""
    data = Synthetic()
    store.create_collection("c", DIM)
    seconds = 0.0
    for start in range(0, n, chunk):
        points = data.points(start, min(chunk, n - start))
        t = time.perf_counter()
        store.upsert("c", points)
        seconds += time.perf_counter() - t
    t = time.perf_counter()
    store.flush()
    seconds += time.perf_counter() - t
    return n / seconds


def hybrid_queries(n: int) -> list[list[StoreQuery]]:
    probe = Synthetic(seed=99)
    out = []
    for v in probe.dense(n):
        searches = (Nearest("dense", v.tolist(), 50), Nearest("sparse", probe.sparse(), 50))
        out.append(
            [
                StoreQuery(searches, 100, rescore=Nearest("dense", v.tolist(), 100)),
                StoreQuery(searches, 100, rescore=searches[1]),
            ]
        )
    return out


def timed(
    store: VectorStore, queries: list[list[StoreQuery]]
) -> tuple[list[float], list[list[str]]]:
    times, tops = [], []
    for pair in queries:
        t = time.perf_counter()
        answers = store.query_batch("c", pair)
        times.append((time.perf_counter() - t) * 1000)
        tops.append([h.id for h in answers[0][:10]])
    return times, tops


def compare(a: argparse.Namespace) -> None:
    print(
        f"{os.cpu_count()} CPUs, qdrant-edge-py {version('qdrant-edge-py')}, "
        f"qdrant-client {version('qdrant-client')}; {a.points:,} points, {a.queries} queries"
    )
    work = Path(tempfile.mkdtemp(prefix="cidx-server-perf-"))
    if a.only_batches:
        batch_sizes(a, work)
        return
    queries = hybrid_queries(a.queries)
    tops: dict[str, list[list[str]]] = {}
    try:
        print("\n| backend | upsert | hybrid query p50 / p95 | queries/s |")
        print("|---|---:|---:|---:|")
        for kind in ("embedded", "server (local mode, disk)", "server (local mode, memory)"):
            store = _open(kind, work)
            rate = fill(store, a.points)
            timed(store, queries[:3])  # warm caches
            times, tops[kind] = timed(store, queries)
            print(
                f"| {kind} | {rate:,.0f} points/s | {pct(times, 50):.1f} / {pct(times, 95):.1f} ms"
                f" | {1000 * len(times) / sum(times):,.1f} |"
            )
            store.close()
        ref = tops["embedded"]
        for kind, got in tops.items():
            if kind != "embedded":
                same = sum(g == r for g, r in zip(got, ref, strict=True)) / len(ref)
                print(
                    f"\nagreement with the embedded store, {kind}: {same:.0%} of top-10s identical"
                )

        batch_sizes(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def batch_sizes(a: argparse.Namespace, work: Path) -> None:
    """Upsert points/s per `upsert_batch`, in memory (the client's cost per
    request) and on disk (local mode commits every point on its own)."""
    for kind, n in (
        ("server (local mode, memory)", a.batch_points),
        ("server (local mode, disk)", a.batch_points // 10),
    ):
        print(f"\nUpsert batch size on the {kind}, {n:,} points:\n")
        print("| upsert_batch | points/s | requests |")
        print("|---:|---:|---:|")
        for size in BATCH_SIZES:
            store = _open(kind, work, size)
            rate = fill(store, n)
            print(f"| {size:,} | {rate:,.0f} | {-(-n // size):,} |", flush=True)
            store.close()


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def sizing_child(n: int, folder: Path) -> None:
    """Runs in its own process: fill, query, report memory and disk."""
    base = _rss_mib()
    store = EdgeStore(folder)
    rate = fill(store, n)
    store.close()
    # Reopened as cidx opens an index; the memory a long-lived owner holds.
    store = EdgeStore(folder)
    opened = _rss_mib()
    timed(store, hybrid_queries(50))
    queried = _rss_mib()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    disk = disk_usage(folder)
    per = 100_000 / n
    print(f"{n:,} points in the embedded store (upsert {rate:,.0f} points/s)")
    print(f"  RSS of the process before: {base:,.0f} MiB")
    print(
        f"  RSS after reopening:       {opened:,.0f} MiB (+{(opened - base) * per:,.0f} MiB per 100k)"
    )
    print(
        f"  RSS after 50 hybrid queries: {queried:,.0f} MiB (+{(queried - base) * per:,.0f} MiB per 100k)"
    )
    print(f"  peak RSS while filling:    {peak:,.0f} MiB")
    print(
        f"  on disk:                   {disk / 2**20:,.0f} MiB ({disk / 2**20 * per:,.0f} MiB per 100k)"
    )
    print(f"  raw vectors: dense {n * DIM * 4 / 2**20:,.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--batch-points", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--only-batches", action="store_true")
    ap.add_argument("--sizing", type=int, default=None, metavar="N")
    ap.add_argument("--sizing-child", type=str, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sizing_child:
        sizing_child(a.sizing, Path(a.sizing_child))
        return
    if a.sizing:
        folder = Path(tempfile.mkdtemp(prefix="cidx-sizing-"))
        try:
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--sizing",
                    str(a.sizing),
                    "--sizing-child",
                    str(folder / "s"),
                ],
                check=True,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    compare(a)


if __name__ == "__main__":
    main()
