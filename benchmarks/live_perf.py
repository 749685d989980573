"""Live sync performance: a `cidx watch` owner on a real corpus (Django's source).

    python benchmarks/live_perf.py [--edits 60] [--idle-seconds 60] [--soak-minutes 30]

Prints, in one run on one machine:
  save → searchable   per edit: from a file's write to the moment a keyword
                      query through the owner's socket finds the new symbol
                      (p50/p95 over --edits edits)
  query via socket    the owner's own search time (server-side) and the
                      client's round trip, p50/p95; and `cidx query` as a new
                      process through the socket (CLI wall), p50/p95
  idle CPU            the watcher's CPU share over --idle-seconds with no edits
  branch switch       chunks embedded by `git checkout` to a branch, back, and
                      to the branch again (the last two should be 0: cache)
  soak                the watcher's RSS after warm-up and after
                      --soak-minutes of steady edits (one every 2 s), and the growth
Targets (issue "Live sync"): save→searchable p95 < 1 s; server-side p50 < 30 ms;
CLI wall p50 < 400 ms; idle CPU < 1 %; RSS growth < 10 %; switch back re-embeds 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _corpus import queries as corpus_queries, unpack

from cidx.messages import NoArgs, QueryRequest, SearchOutcome, SearchRequest
from cidx.owner import protocol
from cidx.owner.client import OwnerClient
from cidx.project import ProjectPaths

CIDX = [sys.executable, "-m", "cidx"]
TICK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.email=b@b", "-c", "user.name=b", *args],
        check=True,
        capture_output=True,
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Watch:
    def __init__(self, root: Path, log: Path) -> None:
        self.log = log
        self.fh = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*CIDX, "watch", "--log-format", "json"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=self.fh,
        )
        self.client = OwnerClient(ProjectPaths(root).socket_path)
        while not any("catch-up" in e["message"] for e in self.events()):
            assert self.proc.poll() is None, log.read_text()
            time.sleep(0.1)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.log.read_text().splitlines() if x.startswith("{")]

    def search(self, text: str, mode: str = "keyword") -> SearchOutcome:
        request = SearchRequest([QueryRequest(text, limit=1, mode=mode)], sync=False)  # type: ignore[arg-type]
        return self.client.call(protocol.SEARCH, request)

    def settle(self) -> None:
        while True:
            status = self.client.call(protocol.STATUS, NoArgs())
            if status.pending.total == 0:
                return
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)
        self.fh.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=60)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--cli-queries", type=int, default=30)
    ap.add_argument("--idle-seconds", type=float, default=60)
    ap.add_argument("--soak-minutes", type=float, default=30)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cidx-live-"))
    root = unpack(work / "django")
    files = sum(1 for p in root.rglob("*") if p.is_file())
    print(f"corpus: Django 5.2.19, {files:,} files, {os.cpu_count()} CPUs")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "corpus")
    subprocess.run([*CIDX, "index"], cwd=root, check=True, capture_output=True)
    watch = Watch(root, work / "watch.log")
    try:
        # -- save → searchable ------------------------------------------------
        targets = sorted((root / "django" / "utils").glob("*.py"))[:10]
        originals = {t: t.read_text() for t in targets}
        latencies = []
        for i in range(a.edits):
            target = targets[i % len(targets)]
            token = f"cidxbench_marker_{i}_{int(time.time() * 1000) % 100000}"
            target.write_text(originals[target] + f"\n\ndef {token}(value):\n    return value\n")
            written = time.perf_counter()
            rel = target.relative_to(root).as_posix()
            while True:
                results = watch.search(token).answers[0].results
                if results and results[0].path == rel and token in results[0].text:
                    break
                time.sleep(0.005)
            latencies.append(time.perf_counter() - written)
            time.sleep(0.2)
        for t, text in originals.items():
            t.write_text(text)
        watch.settle()
        print(
            f"save → searchable: p50 {pct(latencies, 50) * 1000:.0f} ms, "
            f"p95 {pct(latencies, 95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
            f"({len(latencies)} edits)"
        )

        # -- queries through the socket -------------------------------------
        texts = corpus_queries(root, a.queries)
        server, client = [], []
        watch.search(texts[0], "hybrid")
        for text in texts:
            start = time.perf_counter()
            outcome = watch.search(text, "hybrid")
            client.append(time.perf_counter() - start)
            server.append(outcome.search_seconds)
        print(
            f"query via socket (hybrid): server-side p50 {pct(server, 50) * 1000:.1f} ms, "
            f"p95 {pct(server, 95) * 1000:.1f} ms; client round trip p50 "
            f"{pct(client, 50) * 1000:.1f} ms, p95 {pct(client, 95) * 1000:.1f} ms"
        )
        cli = []
        for text in texts[: a.cli_queries]:
            start = time.perf_counter()
            subprocess.run(
                [*CIDX, "query", text, "--json"], cwd=root, check=True, capture_output=True
            )
            cli.append(time.perf_counter() - start)
        print(
            f"`cidx query` through the owner: CLI wall p50 {pct(cli, 50) * 1000:.0f} ms, p95 {pct(cli, 95) * 1000:.0f} ms"
        )

        # -- idle CPU ---------------------------------------------------------
        time.sleep(5)
        before, start = cpu_seconds(watch.proc.pid), time.monotonic()
        time.sleep(a.idle_seconds)
        share = (cpu_seconds(watch.proc.pid) - before) / (time.monotonic() - start)
        print(f"idle watcher CPU: {share * 100:.2f} % over {a.idle_seconds:.0f} s")

        # -- branch switch ------------------------------------------------------
        git(root, "checkout", "-q", "-b", "bench-branch")
        for i, path in enumerate(sorted((root / "django" / "db").rglob("*.py"))[:150]):
            path.write_text(path.read_text() + f"\n\ndef branch_only_{i}():\n    return {i}\n")
        git(root, "commit", "-qam", "branch changes")
        git(root, "checkout", "-q", "main")
        watch.settle()
        embedded = []
        for branch in ("bench-branch", "main", "bench-branch"):
            mark = len(watch.events())
            git(root, "checkout", "-q", branch)
            time.sleep(1.5)
            watch.settle()
            embedded.append(
                sum(e["summary"]["embedded"] for e in watch.events()[mark:] if "summary" in e)
            )
        print(
            f"branch switch: embedded {embedded[0]:,} (there), {embedded[1]:,} (back), {embedded[2]:,} (there again)"
        )
        git(root, "checkout", "-q", "main")
        watch.settle()

        # -- soak ---------------------------------------------------------------
        deadline = time.monotonic() + a.soak_minutes * 60
        warm_at = time.monotonic() + 60
        first: float | None = None
        samples = []
        i = 0
        target = targets[0]
        while time.monotonic() < deadline:
            i += 1
            target.write_text(originals[target] + f"\n\ndef soak_{i % 50}():\n    return {i}\n")
            time.sleep(2)
            if first is None and time.monotonic() >= warm_at:
                first = rss_mb(watch.proc.pid)
            samples.append(rss_mb(watch.proc.pid))
        target.write_text(originals[target])
        if first is not None:
            last = samples[-1]
            print(
                f"soak: RSS {first:.0f} MB after warm-up, {last:.0f} MB after {a.soak_minutes:g} min "
                f"({i} edits), growth {(last - first) / first * 100:+.1f} %, peak {max(samples):.0f} MB"
            )
    finally:
        watch.stop()


if __name__ == "__main__":
    main()
