"""What checking for pending migrations costs a command when nothing is pending.

    python benchmarks/migration_check.py [--repeat 300] [--commands 5]

Every command that opens an index first runs `cidx.migration.run_pending`.
When nothing is pending it reads the config (which opening the index needs
anyway) and makes two `stat` calls. This prints, in one run on one machine,
for a small indexed project in each storage mode:

  check          `run_pending` in process, p50/p95 over --repeat calls
  config only    `load_config`, what a command paid before the check existed
  overhead       check − config only (p50): what the check adds
  command wall   `cidx status` and `cidx query` as new processes (median of
                 --commands runs), and the check's share of each
  registry claim in global mode, noting the project's use of its collection
                 in the global store's registry (p50), paid when it opens

Target (issue 8, §6): the check costs < 5 ms per command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CIDX = [sys.executable, "-m", "cidx"]
FILES = {
    "src/uploads/retry.py": "def retry_failed_uploads(queue):\n    return queue.failed()\n",
    "src/auth/tokens.py": "def verify_token(token, secret):\n    return token == secret\n",
    "README.md": "# Demo\n\n## Deployment\n\nRun the container.\n",
}


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def wall(args: list[str], cwd: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*CIDX, *args], cwd=cwd, check=True, capture_output=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(scratch: Path, mode: str, repeat: int, commands: int) -> str:
    """One table row for a project indexed in `mode`."""
    from cidx.config import load_config
    from cidx.migration import run_pending
    from cidx.project import ProjectPaths
    from cidx.registry import Registry, claim

    root = scratch / mode
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for step in (["init", "--storage", mode], ["index"]):
        subprocess.run([*CIDX, *step], cwd=root, check=True, capture_output=True)
    paths = ProjectPaths(root)
    config = load_config(paths)
    # Warm the file cache, as a command run a second time finds it.
    timed(lambda: run_pending(paths), 20)
    check = timed(lambda: run_pending(paths), repeat)
    config_only = timed(lambda: load_config(paths), repeat)
    p50 = statistics.median(check)
    overhead = p50 - statistics.median(config_only)
    status_ms = wall(["status"], root, commands)
    query_ms = wall(["query", "retry failed uploads"], root, commands)

    def claiming() -> None:
        with Registry() as registry:
            claim(
                registry,
                config.collection,
                root=paths.root,
                project_id=config.project_id,
                model=config.embedding.model_id,
            )

    claim_ms = f"{statistics.median(timed(claiming, repeat)):.2f}" if mode == "global" else "—"
    return (
        f"| {mode} | {p50:.2f} / {pct(check, 95):.2f} ms | "
        f"{statistics.median(config_only):.2f} ms | **{overhead:.2f} ms** | "
        f"{status_ms:.0f} ms | {query_ms:.0f} ms | "
        f"{100 * p50 / status_ms:.3f} % / {100 * p50 / query_ms:.3f} % | {claim_ms} ms |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--commands", type=int, default=5)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="cidx-migration-bench-"))
    # This run's own global store.
    os.environ["CIDX_DATA_DIR"] = str(scratch / "data")
    print(
        "| mode | check p50 / p95 | config only p50 | overhead p50 | `cidx status` wall "
        "| `cidx query` wall | check's share of status / query | registry claim p50 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode in ("local", "global"):
        print(measure(scratch, mode, args.repeat, args.commands), flush=True)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
