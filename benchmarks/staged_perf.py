"""Staged indexing: how soon a fresh project answers, and what the dense pass costs.

    python benchmarks/staged_perf.py [--sample 2000] [--probes 6] [--window SECONDS]

On a fresh copy of the benchmark corpus (Django's source), in a private
home folder, starts `cidx watch` (an owner that keeps running, so its
first index is staged) and prints, in one run on one machine:

  raw model throughput   chunks/s embedding a random sample of the corpus's
                         own chunk texts with the bundled model in one call,
                         loaded as owners load it, from a thread at the
                         dense pass's priority (the baseline)
  first keyword answer   seconds from starting `cidx watch` until keyword
                         queries through its socket find each of --probes
                         definitions spread over the tree (every file's BM25
                         vectors are in), marked partial; until the catch-up
                         sync returned, and the CPU seconds the owner used
                         by then (what a busy shared machine does not change)
  dense pass             its chunks/s (the owner's log line when it ends, or
                         the embedded share's rise over --window seconds)
                         ÷ raw, measured before and after (their mean)
  queries meanwhile      hybrid queries through the socket during the dense
                         pass, against the same queries once it ended
  whole index            seconds until every chunk has its dense vector

Targets (issue 9): first keyword answer < 15 s (before: the whole cold
index, ~390 s); dense pass >= 0.9 x raw.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "src"))

from _corpus import chunk_texts, private_home, queries as corpus_queries, unpack
from _proc import cpu_seconds

from cidx.embedding import Embedder
from cidx.messages import NoArgs, QueryAnswer, QueryRequest, SearchRequest
from cidx.owner import protocol
from cidx.owner.client import OwnerClient, OwnerUnavailable
from cidx.priority import background_priority
from cidx.project import ProjectPaths

# Seconds between the hybrid queries sent during the dense pass (each
# embeds its query, which the pass yields to).
QUERY_EVERY = 5.0
_SCRIPT = Path(sys.executable).parent / "cidx"
CIDX = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cidx"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def raw_throughput(texts: list[str], sample: int) -> float:
    """chunks/s of the model alone (one call, as benchmarks/index_perf.py
    measures it), loaded as an owner loads it, at the dense pass's priority."""
    picked = random.Random(1).sample(texts, min(sample, len(texts)))
    rate: list[float] = []

    def measure() -> None:
        background_priority(thread=True)  # its model threads inherit it
        embedder = Embedder(long_lived=True)
        embedder.embed(picked[:64])  # warm-up
        started = time.perf_counter()
        embedder.embed(picked)
        rate.append(len(picked) / (time.perf_counter() - started))

    thread = threading.Thread(target=measure)
    thread.start()
    thread.join()
    return rate[0]


def probes(root: Path, n: int) -> list[tuple[str, str]]:
    """(function name, its file) for `n` functions spread over the tree, each
    named in no other file: a keyword query for the name finds its file first
    once that file's BM25 vectors are in."""
    sources = sorted((root / "django").rglob("*.py"))
    texts = {path: path.read_text(encoding="utf-8", errors="replace") for path in sources}
    files_naming: dict[str, int] = {}
    for text in texts.values():
        for word in set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)):
            files_naming[word] = files_naming.get(word, 0) + 1
    found: list[tuple[str, str]] = []
    for path, text in texts.items():
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        names = [
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
            and len(node.name) > 12
            and files_naming.get(node.name) == 1
        ]
        if names:
            found.append((names[0], str(path.relative_to(root))))
    step = max(1, len(found) // n)
    return found[::step][:n]


def events(log: Path) -> list[dict[str, Any]]:
    out = []
    for row in log.read_text().splitlines():
        if row.startswith("{"):
            out.append(json.loads(row))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=2000, help="chunks for the raw baseline")
    parser.add_argument("--probes", type=int, default=6, help="keyword probes")
    parser.add_argument(
        "--window",
        type=float,
        default=0,
        help="measure the dense pass over this many seconds (0: until it ends)",
    )
    a = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="cidx-staged-bench-"))
    env = private_home(scratch)
    watch: subprocess.Popen[bytes] | None = None
    try:
        corpus = unpack(scratch / "corpus")
        texts = chunk_texts(corpus)
        raw_before = raw_throughput(texts, a.sample)
        print(f"machine: {os.cpu_count()} cores; corpus: {len(texts):,} chunks")
        wanted = probes(corpus, a.probes)
        hybrid = corpus_queries(corpus, n=20)

        log = scratch / "watch.log"
        with open(log, "w") as fh:
            began = time.monotonic()
            watch = subprocess.Popen(
                [*CIDX, "watch", "--log-format", "json"], cwd=corpus, env=env, stderr=fh
            )
        client = OwnerClient(ProjectPaths(corpus).socket_path)
        found: dict[str, float] = {}
        partial = False
        answered: float | None = None
        while len(found) < len(wanted):
            if watch.poll() is not None:
                raise SystemExit(f"cidx watch exited:\n{log.read_text()}")
            try:
                outcome = client.call(
                    protocol.SEARCH,
                    SearchRequest(
                        [QueryRequest(name, limit=3, mode="keyword") for name, _ in wanted]
                    ),
                )
            except OwnerUnavailable:
                time.sleep(0.1)
                continue
            now = time.monotonic() - began
            if answered is None and any(answer.results for answer in outcome.answers):
                answered = now
            for (name, path), answer in zip(wanted, outcome.answers, strict=True):
                if name not in found and any(r.path == path for r in answer.results):
                    found[name] = now
                    partial = partial or answer.partial
            time.sleep(0.1)
        first = max(found.values())
        while not any("catch-up sync" in e["message"] for e in events(log)):
            time.sleep(0.1)
        synced = time.monotonic() - began
        cpu = cpu_seconds(watch.pid)
        print(
            f"first keyword answer: {first:.1f} s (all {len(wanted)} probes found, partial "
            f"answer: {partial}; the first results of any: {answered or 0:.1f} s); the "
            f"catch-up sync returned after {synced:.1f} s, the owner having used {cpu:.1f} s "
            f"of CPU (start, imports, walk, chunking, BM25, writes; load average "
            f"{os.getloadavg()[0]:.1f})"
        )

        total = client.call(protocol.STATUS, NoArgs()).chunks_pending
        during: list[float] = []
        shares: list[tuple[float, float]] = []  # (when, embedded share)

        def ask() -> tuple[float, QueryAnswer]:
            t0 = time.perf_counter()
            out = client.call(
                protocol.SEARCH, SearchRequest([QueryRequest(hybrid[len(during) % 20], limit=5)])
            )
            return time.perf_counter() - t0, out.answers[0]

        ended = False
        window_start = time.monotonic()
        while True:
            ended = any(e["message"].startswith("dense pass:") for e in events(log))
            if ended or (a.window and time.monotonic() - window_start >= a.window):
                break
            seconds, answer = ask()
            if answer.partial:
                during.append(seconds)
                shares.append((time.monotonic(), answer.embedded_share))
            time.sleep(QUERY_EVERY)
        if ended:
            whole = time.monotonic() - began
            done = next(e["message"] for e in events(log) if e["message"].startswith("dense pass:"))
            rate = float(done.split("(")[1].split()[0])
            after = [ask()[0] for _ in range(20)]
            how = f"the whole pass: {done.removeprefix('dense pass: ')}"
        else:
            (t0, s0), (t1, s1) = shares[0], shares[-1]
            rate = (s1 - s0) * total / (t1 - t0)
            how = f"{(s1 - s0) * total:,.0f} chunks embedded in a {t1 - t0:.0f} s window"
        watch.terminate()
        watch.wait(timeout=120)
        watch = None
        raw_after = raw_throughput(texts, a.sample)
        raw = (raw_before + raw_after) / 2
        print(
            f"raw model throughput: {raw_before:.1f} chunks/s before, {raw_after:.1f} after "
            f"({a.sample} chunks each): {raw:.1f} chunks/s"
        )
        print(f"dense pass: {rate:.1f} chunks/s ({how}) = {rate / raw:.2f} x raw")
        if ended:
            print(f"whole index (every chunk embedded): {whole:.1f} s after start")
        if during:
            tail = f"; after it: p50 {statistics.median(after) * 1000:.0f} ms" if ended else ""
            print(
                f"hybrid query through the socket during the dense pass ({len(during)} queries, "
                f"embedded share {shares[0][1]:.0%} -> {shares[-1][1]:.0%}): p50 "
                f"{statistics.median(during) * 1000:.0f} ms, p95 {pct(during, 95) * 1000:.0f} ms"
                + tail
            )
    finally:
        if watch is not None:
            watch.terminate()
            watch.wait(timeout=120)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
