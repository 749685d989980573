"""The per-user daemon: `cidx query` through it, its memory, and queries during background work.

    python benchmarks/daemon_perf.py [--files 40] [--queries 30] [--caps 100 25] [--quiet-index]

Builds six projects from the benchmark corpus (Django's source: five of
--files Python files each from different packages, and a sixth, larger one
left unindexed), in a private home folder so that no daemon of the user's
is touched. Prints, in one run on one machine:

  query, no owner        `cidx query` as a new process with nothing running
                         (opens the shard, loads the model): the baseline
  query, `cidx watch`    the same, answered by a `cidx watch` on the project
  query, daemon          the same, answered by the daemon (human and --json)
  RSS                    one `cidx watch` on one project, then one daemon
                         watching five (both after queries loaded the model):
                         in all, the process's own memory, and mapped files
  background work        the daemon indexes a fresh copy of the sixth project,
                         under its default CPU cap, then restarted with each
                         cap of --caps (100: none, the baseline): its CPU
                         share meanwhile, and queries on another project
                         answered through the daemon's socket during that
                         index against the same queries idle (with
                         --quiet-index, no queries: the CPU share is then
                         the sync's alone, not the queries' too)

Targets: daemon query p50 < 120 ms (human and --json); daemon RSS with 5
projects < 1.5 x one `cidx watch`; background indexing under 50 % of the
machine on average (the default cap).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _corpus import private_home, queries as corpus_queries, unpack
from _proc import cpu_seconds

# The `cidx` command as installed (what a person or an agent runs), else the module.
_SCRIPT = Path(sys.executable).parent / "cidx"
CIDX = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cidx"]
PACKAGES = ["db/models", "contrib/admin", "forms", "template", "utils"]
BIG_PACKAGE = "core"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def rss_mb(pid: int) -> dict[str, float]:
    """Resident memory: all of it, the process's own (anonymous), and mapped files
    (the index shards' write-ahead logs: page cache the kernel can reclaim)."""
    wanted = {"VmRSS:": "total", "RssAnon:": "own", "RssFile:": "files"}
    out = {}
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = row.split()[0] if row else ""
        if key in wanted:
            out[wanted[key]] = int(row.split()[1]) / 1024
    return out


def cidx(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CIDX, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )


def timed_queries(root: Path, env: dict[str, str], texts: list[str], *extra: str) -> list[float]:
    walls = []
    for text in texts:
        started = time.perf_counter()
        cidx(["query", text, "-n", "5", *extra], root, env)
        walls.append(time.perf_counter() - started)
    return walls


def caught_up(root: Path, env: dict[str, str], pid: int) -> bool:
    status = json.loads(cidx(["status", "--json"], root, env).stdout)
    return bool(status["owner_pid"] == pid and sum(status["pending"].values()) == 0)


def wait_for(check: Any, what: str, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def import_ms(cwd: Path, env: dict[str, str], command: list[str]) -> float:
    """What a command's imports cost (`python -X importtime`: the top-level
    imports' cumulative times, summed)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for row in proc.stderr.splitlines():
        parts = row.split("|")
        # One space before the name: imported by the program itself, not by a module.
        top = len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  ")
        if row.startswith("import time:") and top:
            total += int(parts[1])
    return total / 1000


def make_project(corpus: Path, package: str, dest: Path, files: int) -> Path:
    sources = sorted((corpus / "django" / package).rglob("*.py"))[:files]
    for src in sources:
        target = dest / src.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    return dest


def line(label: str, walls: list[float], base: float | None = None) -> str:
    p50 = statistics.median(walls) * 1000
    ratio = f"  ({p50 / base:.2f} x no owner)" if base else ""
    return f"{label:<34} p50 {p50:7.1f} ms  p95 {pct(walls, 95) * 1000:7.1f} ms{ratio}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=40, help="Python files per project")
    parser.add_argument("--queries", type=int, default=30, help="queries per figure")
    parser.add_argument(
        "--caps",
        nargs="*",
        default=["100", "25"],
        help="CPU caps (percent) to index the background project under, after the default",
    )
    parser.add_argument(
        "--quiet-index",
        action="store_true",
        help="no queries during the background index: its CPU share is the sync's alone",
    )
    a = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="cidx-daemon-bench-"))
    env = private_home(scratch)
    try:
        corpus = unpack(scratch / "corpus")
        texts = corpus_queries(corpus, n=a.queries)
        roots = [
            make_project(corpus, pkg, scratch / f"p{i}", a.files) for i, pkg in enumerate(PACKAGES)
        ]
        big = make_project(corpus, BIG_PACKAGE, scratch / "big", a.files * 4)
        first = roots[0]
        for root in roots:
            cidx(["index"], root, env)
        print(f"machine: {os.cpu_count()} cores; {len(roots)} projects of {a.files} files")

        no_owner = timed_queries(first, env, texts[: max(5, a.queries // 3)])
        base = statistics.median(no_owner) * 1000
        print(line("query, no owner", no_owner))

        watch = subprocess.Popen([*CIDX, "watch"], cwd=first, env=env, stderr=subprocess.DEVNULL)
        wait_for(lambda: caught_up(first, env, watch.pid), "the watcher")
        via_watch = timed_queries(first, env, texts)
        watch_rss = rss_mb(watch.pid)
        watch.terminate()
        watch.wait(timeout=60)
        print(line("query, `cidx watch`", via_watch, base))

        started = json.loads(
            cidx(["start", "--json", *[f"--watch={r}" for r in roots]], scratch, env).stdout
        )
        pid = int(started["pid"])
        for root in roots:
            wait_for(lambda r=root: caught_up(r, env, pid), f"the daemon on {root.name}")
        via_daemon = timed_queries(first, env, texts)
        via_daemon_json = timed_queries(first, env, texts, "--json")
        for root in roots[1:]:
            timed_queries(root, env, texts[:2])  # every project used once
        daemon_rss = rss_mb(pid)
        query = ["query", texts[0], "-n", "5"]
        full_cli = ["-c", "from cidx.cli.app import main; main()"]
        imports = {
            (path, out): statistics.median(
                import_ms(first, env, [*head, *query, *extra]) for _ in range(5)
            )
            for path, head in (
                ("thin", ["-c", "from cidx.cli.thin import main; main()"]),
                ("full", full_cli),
            )
            for out, extra in (("human", []), ("json", ["--json"]))
        }
        print(line("query, daemon", via_daemon, base))
        print(line("query, daemon, --json", via_daemon_json, base))
        for out in ("human", "json"):
            thin, full = imports[("thin", out)], imports[("full", out)]
            print(
                f"imports of `cidx query` ({out}) answered by an owner: thin path "
                f"{thin:.0f} ms, full command line {full:.0f} ms ({thin / full:.2f} x)"
            )
        for kind in ("total", "own", "files"):
            one, five = watch_rss[kind], daemon_rss[kind]
            print(
                f"RSS {kind:<5}: one `cidx watch` on 1 project {one:4.0f} MB; daemon with "
                f"{len(roots)} projects {five:4.0f} MB = {five / one:.2f} x"
            )

        # Queries through the socket, idle, then while the daemon indexes a
        # fresh copy of `big` in the background: under the default CPU cap
        # (this daemon), then restarted with each other cap of --caps.
        sys.path.insert(0, str(Path(__file__).parents[1] / "src"))
        from cidx.messages import QueryRequest, SearchRequest
        from cidx.owner import protocol
        from cidx.owner.client import OwnerClient
        from cidx.project import ProjectPaths

        client = OwnerClient(ProjectPaths(first).socket_path)

        def ask(text: str) -> float:
            began = time.perf_counter()
            client.call(protocol.SEARCH, SearchRequest([QueryRequest(text, limit=5)]))
            return time.perf_counter() - began

        idle = [ask(t) for t in texts]
        print(line("socket query, daemon idle", idle))
        shares: dict[str, float] = {}
        for n, cap in enumerate(["default", *a.caps]):
            if cap != "default":
                cidx(["stop"], scratch, env)
                pid = int(
                    json.loads(cidx(["start", "--json", f"--cpu-cap={cap}"], scratch, env).stdout)[
                        "pid"
                    ]
                )
                for root in roots:
                    wait_for(
                        lambda r=root, p=pid: caught_up(r, env, p), f"the daemon on {root.name}"
                    )
            state = json.loads(cidx(["status", "--daemon", "--json"], scratch, env).stdout)[
                "daemon"
            ]
            label = f"cap {state['cpu_cap_percent']:g} %" + (
                " (default)" if cap == "default" else ""
            )
            copy = scratch / f"big{n}"
            shutil.copytree(big, copy)
            cpu0, wall0 = cpu_seconds(pid), time.monotonic()
            cidx(["watch"], copy, env)
            busy: list[float] = []
            while not caught_up(copy, env, pid):
                if a.quiet_index:
                    time.sleep(0.25)  # polling only: the daemon's CPU is the sync's alone
                else:
                    busy.extend(ask(t) for t in texts[:5])
            seconds = time.monotonic() - wall0
            share = (cpu_seconds(pid) - cpu0) / seconds / (os.cpu_count() or 1)
            shares[label] = share
            if busy:
                print(
                    line(f"socket query, indexing, {label}", busy)
                    + f"  ({statistics.median(busy) / statistics.median(idle):.2f} x idle)"
                )
            print(
                f"background index of {a.files * 4} files, {label}: {seconds:.1f} s, daemon CPU "
                f"{share * 100:.0f} % of the machine"
            )
            cidx(["watch", "--stop"], copy, env)
        base = next((v for k, v in shares.items() if k.startswith("cap 100")), None)
        if base:
            for label, share in shares.items():
                print(f"daemon CPU, {label}: {share / base:.2f} x the uncapped run")
        cidx(["stop"], scratch, env)
    except BaseException:
        # What the daemon logged is what explains a failure: keep it.
        for log in Path(env["HOME"]).rglob("daemon.log*"):
            kept = Path(tempfile.gettempdir()) / f"{scratch.name}-{log.name}"
            shutil.copy2(log, kept)
            print(f"daemon log kept: {kept}", file=sys.stderr)
        raise
    finally:
        subprocess.run([*CIDX, "stop"], cwd=scratch, env=env, capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
