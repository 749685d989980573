"""Exact search versus an HNSW graph in the embedded store, as the index grows.

    python benchmarks/store_scale.py [--sizes 25000 100000] [--queries 100]

cidx never builds HNSW (`indexing_threshold=0` in `cidx.store.edge`). This
benchmark is the figure behind that choice. For each size it fills one
shard through `EdgeStore` exactly as cidx does (dense 384-d cosine + sparse
BM25-like vectors + a code-sized payload), and prints:

  upsert          points/s writing the shard
  exact dense     p50/p95 of a top-10 dense query (the baseline)
  exact hybrid    p50/p95 of the two re-scored prefetch queries a
                  `cidx query` in hybrid mode sends (dense 50 ∪ BM25 50,
                  scored by each side)
  exact filtered  p50/p95 of a top-10 dense query under a path prefix
  HNSW build      seconds for `optimize()` to build the graph (m=16,
                  ef_construct=100, Qdrant's defaults) on the same points
  HNSW dense      p50/p95 of the same top-10 queries on the graph, their
                  ratio to exact, and recall@10 against the exact answers

Vectors are synthetic but shaped like embeddings of code: points drawn
around 2,000 unit-length centres (a project has many near-duplicates), so
the graph is neither helped nor hurt by uniform noise. Query latency in the
exact store does not depend on the vectors' values; the graph's recall does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as q

from cidx.store.base import Nearest, PointData, PointFilter, SparseVec, StoreQuery
from cidx.store.edge import EdgeStore

DIM = 384
BATCH = 256


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


class Synthetic:
    """Embedding-like vectors, sparse term vectors and payloads, reproducibly."""

    def __init__(self, seed: int = 7, centres: int = 2000) -> None:
        self.rng = np.random.default_rng(seed)
        c = self.rng.standard_normal((centres, DIM)).astype(np.float32)
        self.centres = c / np.linalg.norm(c, axis=1, keepdims=True)
        # Term ids drawn Zipf-like over a 50k vocabulary, as identifiers are.
        self.vocab = 50_000

    def dense(self, n: int) -> np.ndarray:
        picks = self.rng.integers(0, len(self.centres), n)
        v = self.centres[picks] + 0.6 * self.rng.standard_normal((n, DIM)).astype(np.float32) / (
            DIM**0.5
        )
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def sparse(self) -> SparseVec:
        terms = np.unique(np.minimum(self.rng.zipf(1.3, 40), self.vocab) - 1)
        return SparseVec(
            [int(t) for t in terms], [1.0 + float(x) for x in self.rng.random(len(terms))]
        )

    def points(self, start: int, n: int) -> list[PointData]:
        vectors = self.dense(n)
        out = []
        for i in range(n):
            k = start + i
            out.append(
                PointData(
                    id=str(uuid.UUID(int=k + 1)),
                    dense=vectors[i].tolist(),
                    sparse=self.sparse(),
                    payload={
                        "path": f"pkg{k % 40}/mod{k % 900}.py",
                        "language": "python",
                        "kind": "function",
                        "symbol": f"Thing{k % 300}.method_{k}",
                        "start_line": 1 + k % 500,
                        "end_line": 20 + k % 500,
                        "text": "    value = compute(item)\n" * 24,
                    },
                )
            )
        return out


@contextlib.contextmanager
def hnsw_shards() -> Iterator[None]:
    """Collections created inside this block build an HNSW graph on `optimize()`."""
    real = q.EdgeConfig

    def with_graph(**kwargs: Any) -> Any:
        kwargs["optimizers"] = q.EdgeOptimizersConfig(indexing_threshold=1)
        kwargs["hnsw_config"] = q.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10)
        return real(**kwargs)

    q.EdgeConfig = with_graph
    try:
        yield
    finally:
        q.EdgeConfig = real


def fill(store: EdgeStore, name: str, data: Synthetic, n: int) -> float:
    store.create_collection(name, DIM)
    seconds = 0.0
    for start in range(0, n, BATCH):
        batch = data.points(start, min(BATCH, n - start))
        t = time.perf_counter()
        store.upsert(name, batch)
        seconds += time.perf_counter() - t
    store.flush()
    return n / seconds


def timed(
    store: EdgeStore, name: str, queries: list[list[StoreQuery]]
) -> tuple[list[float], list[list[str]]]:
    times, answers = [], []
    for group in queries:
        t = time.perf_counter()
        hits = [store.query(name, sq) for sq in group]
        times.append((time.perf_counter() - t) * 1000)
        answers.append([h.id for h in hits[0]])
    return times, answers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[25_000, 100_000])
    ap.add_argument("--queries", type=int, default=100)
    a = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, qdrant-edge-py {version('qdrant-edge-py')}")

    for n in a.sizes:
        work = Path(tempfile.mkdtemp(prefix="cidx-scale-"))
        data = Synthetic()
        exact = EdgeStore(work / "exact")
        rate = fill(exact, "c", data, n)
        probe = Synthetic(seed=99)
        qv = probe.dense(a.queries)
        dense = [[StoreQuery((Nearest("dense", v.tolist(), 10),), 10)] for v in qv]
        hybrid = []
        for v in qv:
            searches = (Nearest("dense", v.tolist(), 50), Nearest("sparse", probe.sparse(), 50))
            hybrid.append(
                [
                    StoreQuery(searches, 100, rescore=searches[0]),
                    StoreQuery(searches, 100, rescore=searches[1]),
                ]
            )
        under = PointFilter(path_prefixes=("pkg7/",))
        filtered = [[StoreQuery((Nearest("dense", v.tolist(), 10),), 10, filter=under)] for v in qv]

        timed(exact, "c", dense[:5])  # warm the page cache
        d_t, d_ids = timed(exact, "c", dense)
        h_t, _ = timed(exact, "c", hybrid)
        f_t, _ = timed(exact, "c", filtered)
        print(f"\n{n:,} points: upsert {rate:,.0f} points/s")
        print(
            f"  exact dense      p50 {pct(d_t, 50):6.2f} ms  p95 {pct(d_t, 95):6.2f} ms  (baseline)"
        )
        print(f"  exact hybrid     p50 {pct(h_t, 50):6.2f} ms  p95 {pct(h_t, 95):6.2f} ms")
        print(f"  exact filtered   p50 {pct(f_t, 50):6.2f} ms  p95 {pct(f_t, 95):6.2f} ms")
        exact.close()

        with hnsw_shards():
            graph = EdgeStore(work / "hnsw")
            graph_rate = fill(graph, "c", Synthetic(), n)
        t = time.perf_counter()
        graph.optimize("c")
        build = time.perf_counter() - t
        timed(graph, "c", dense[:5])
        g_t, g_ids = timed(graph, "c", dense)
        recall = statistics.mean(
            len(set(g) & set(e)) / max(1, len(e)) for g, e in zip(g_ids, d_ids, strict=True)
        )
        print(f"  HNSW build       {build:6.1f} s  (after upserting at {graph_rate:,.0f} points/s)")
        print(
            f"  HNSW dense       p50 {pct(g_t, 50):6.2f} ms  p95 {pct(g_t, 95):6.2f} ms  "
            f"({pct(g_t, 50) / pct(d_t, 50):.2f} × exact p50), recall@10 {recall:.3f}"
        )
        graph.close()


if __name__ == "__main__":
    sys.exit(main())
