"""Indexing and query performance on a real corpus (Django's source).

    python benchmarks/index_perf.py [--sample 4000] [--queries 200] [--cli-queries 20]

Prints, in one run on one machine:
  raw model throughput  chunks/s embedding a random sample of the corpus's
                        own chunk texts with the bundled model (the baseline)
  cold index            files/s, chunks/s, and chunks/s ÷ raw throughput
  no-op re-index        wall time of `cidx index` with nothing changed
  one edited file       wall time of `cidx index` after editing one file
  query latency         p50/p95 in-process (Engine.search) per mode, with the
                        model loaded as an owner loads it (graph passes) and as
                        a one-shot command does; and through the CLI (`cidx
                        query`, a new process each time, no owner running)
  peak RSS              of the `cidx index` process
Targets (issue "Core"): cold ≥ 0.9 × raw, no-op < 1 s, one edit < 1 s,
in-process p50 < 30 ms, peak RSS < 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _corpus import chunk_texts, queries as corpus_queries, unpack

from cidx.embedding import Embedder
from cidx.messages import QueryRequest

CIDX = [sys.executable, "-m", "cidx"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def run(args: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([*CIDX, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout


def raw_throughput(root: Path, sample: int) -> tuple[float, int]:
    texts = chunk_texts(root)
    picked = random.Random(1).sample(texts, min(sample, len(texts)))
    embedder = Embedder()
    embedder.embed(picked[:64])  # warm-up
    start = time.perf_counter()
    embedder.embed(picked)
    return len(picked) / (time.perf_counter() - start), len(texts)


def in_process_latency(
    root: Path, texts: list[str], *, long_lived: bool = True
) -> dict[str, tuple[float, float]]:
    """p50/p95 ms per mode; `long_lived` loads the model as owners do."""
    from cidx.engine import Engine
    from cidx.owner.lock import OwnerLock
    from cidx.project import ProjectPaths

    paths = ProjectPaths(root)
    figures: dict[str, tuple[float, float]] = {}
    with OwnerLock(paths, "bench"):
        engine, _ = Engine.open(paths)
        engine.long_lived = long_lived
        try:
            engine.search(QueryRequest(texts[0]))  # loads the model
            for mode in ("hybrid", "semantic", "keyword"):
                times = []
                for text in texts:
                    start = time.perf_counter()
                    engine.search(QueryRequest(text, mode=mode))  # type: ignore[arg-type]
                    times.append(time.perf_counter() - start)
                figures[mode] = (pct(times, 50) * 1000, pct(times, 95) * 1000)
        finally:
            engine.close()
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--sample", type=int, default=4000, help="chunks for the raw-throughput baseline"
    )
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--cli-queries", type=int, default=20)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cidx-bench-"))
    root = unpack(work / "django")
    files = sum(1 for p in root.rglob("*") if p.is_file())
    print(f"corpus: Django 5.2.19, {files:,} files, {os.cpu_count()} CPUs")

    raw, total_chunks = raw_throughput(root, a.sample)
    print(
        f"raw model throughput: {raw:,.1f} chunks/s (sample of {a.sample:,} of {total_chunks:,} chunks)"
    )

    cold, out = run(["index", "--json"], root)
    summary = json.loads(out)
    chunks = summary["chunks_embedded"] + summary["chunks_reused"]
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"cold index: {cold:.1f} s wall, {summary['files_scanned']:,} files "
        f"({summary['files_scanned'] / cold:,.1f} files/s), {chunks:,} chunks "
        f"({chunks / cold:,.1f} chunks/s) = {chunks / cold / raw:.2f} × raw; "
        f"{summary['files_skipped']:,} skipped"
    )
    print(f"peak RSS of `cidx index`: {rss_mb:,.0f} MB")

    noop = [run(["index", "--json"], root)[0] for _ in range(5)]
    print(f"no-op re-index: median {statistics.median(noop):.3f} s wall (5 runs)")

    edit = []
    target = root / "django" / "utils" / "text.py"
    original = target.read_text()
    for i in range(5):
        target.write_text(original + f"\n\ndef bench_added_{i}(value):\n    return value * {i}\n")
        edit.append(run(["index", "--json"], root)[0])
    target.write_text(original)
    run(["index"], root)
    print(f"one edited file: median {statistics.median(edit):.3f} s wall (5 runs)")

    texts = corpus_queries(root, a.queries)
    for long_lived, model in ((True, "owner's model"), (False, "one-shot model")):
        for mode, (p50, p95) in in_process_latency(root, texts, long_lived=long_lived).items():
            print(
                f"query in-process ({mode}, {model}): p50 {p50:.1f} ms, p95 {p95:.1f} ms "
                f"({len(texts)} queries)"
            )

    cli = []
    for text in texts[: a.cli_queries]:
        cli.append(run(["query", text, "--json"], root)[0])
    print(
        f"query through the CLI (new process, no owner): p50 {pct(cli, 50) * 1000:.0f} ms, "
        f"p95 {pct(cli, 95) * 1000:.0f} ms ({len(cli)} queries)"
    )
    du = subprocess.run(["du", "-sh", str(root / ".code-indexer")], capture_output=True, text=True)
    print(f"index size on disk: {du.stdout.split()[0]}")


if __name__ == "__main__":
    main()
