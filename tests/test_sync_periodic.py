"""`cidx sync --interval`: periodic rescans with retries, logs and flat memory."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cidx import failpoints
from cidx.engine import Engine
from cidx.live import PeriodicSync
from cidx.owner.lock import OwnerLock
from cidx.project import ProjectPaths
from tests.conftest import cidx_cmd, run_cidx, write_files
from tests.helpers import clean_rebuild, full_snapshot, generated_module


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write_files(root, {f"src/m{i}.py": generated_module(i, 2) for i in range(6)})
    return root


def test_once_logs_one_cycle_with_its_figures(proj: Path) -> None:
    out = run_cidx(["sync", "--once", "--log-format", "json"], proj)
    cycles = [e for e in _json_lines(out.stderr) if e["message"].startswith("cycle")]
    assert len(cycles) == 1
    assert cycles[0]["summary"] == {
        "scanned": 6,
        "added": 6,
        "modified": 0,
        "deleted": 0,
        "embedded": cycles[0]["summary"]["embedded"],
        "reused": 0,
        "seconds": cycles[0]["summary"]["seconds"],
    }
    assert cycles[0]["summary"]["embedded"] > 0
    log_file = proj / ".code-indexer" / "logs" / "cidx.log"
    assert "cycle 1:" in log_file.read_text()
    human = run_cidx(["sync", "--once"], proj)
    assert (
        "cycle 1: 6 files scanned: 6 indexed, 0 empty, 0 skipped, 0 failed; 0 added, 0 modified, "
        "0 deleted; chunks: 0 embedded, 0 from cache" in human.stderr
    )


def test_interval_picks_up_changes_each_cycle(proj: Path, tmp_path: Path) -> None:
    log = tmp_path / "sync.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*cidx_cmd(), "sync", "--interval", "0.3", "--log-format", "json"],
            cwd=proj,
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )
        try:
            _wait_for(lambda: len(_cycles(log)) >= 1, proc, log)
            write_files(proj, {"src/late.py": "def arrived_late():\n    return 1\n"})
            (proj / "src/m0.py").unlink()
            _wait_for(
                lambda: any(c["added"] == 1 and c["deleted"] == 1 for c in _cycles(log)), proc, log
            )
            # Queries through the periodic owner sync first, so they are fresh too.
            write_files(proj, {"src/later.py": "def arrived_even_later():\n    return 2\n"})
            hits = run_cidx(["query", "arrived even later", "--json", "-n", "1"], proj).results()
            assert hits[0]["path"] == "src/later.py"
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
    assert full_snapshot(proj) == clean_rebuild(proj, tmp_path)


def test_store_failures_are_retried_with_backoff(proj: Path, tmp_path: Path) -> None:
    out = run_cidx(
        ["sync", "--once", "--log-format", "json"],
        proj,
        env={"CIDX_FAILPOINT_RAISE": "after_upsert:2"},
    )
    events = _json_lines(out.stderr)
    failures = [e for e in events if e["level"] == "error"]
    assert [f["message"].split(":")[0] for f in failures] == [
        "sync failed (attempt 1 of 5)",
        "sync failed (attempt 2 of 5)",
    ]
    assert "injected failure" in failures[0]["message"]
    # Backoff: 1 s, then 2 s.
    times = [time.mktime(time.strptime(e["ts"][:19], "%Y-%m-%dT%H:%M:%S")) for e in events]
    assert times[-1] - times[0] >= 3
    assert any(e["message"].startswith("cycle 1:") for e in events)
    assert full_snapshot(proj) == clean_rebuild(proj, tmp_path)


def test_exhausted_retries_report_failure(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(failpoints, "_RAISE", ("after_upsert", 100))
    monkeypatch.setattr(failpoints, "_hits", {})
    paths = ProjectPaths(proj)
    with OwnerLock(paths, "test"):
        engine, _ = Engine.open(paths)
        try:
            keeper = PeriodicSync(engine, 0.01, max_retries=3, backoff=0.01)
            assert keeper.run(threading.Event(), once=True) is False
            health = keeper.health()
            assert not health.ok and "injected failure" in (health.last_error or "")
            assert failpoints._hits["after_upsert"] == 3
            assert engine.metrics.errors.value == 3
        finally:
            engine.close()


@pytest.mark.slow
def test_memory_stays_flat_over_many_cycles(proj: Path, tmp_path: Path) -> None:
    log = tmp_path / "sync.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*cidx_cmd(), "sync", "--interval", "0.02", "--log-format", "json"],
            cwd=proj,
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )
        stop = threading.Event()

        def edit() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                (proj / "src/churn.py").write_text(f"def churn_{n % 7}():\n    return {n % 7}\n")
                time.sleep(0.05)

        editor = threading.Thread(target=edit)
        editor.start()
        try:
            _wait_for(lambda: len(_cycles(log)) >= 40, proc, log)
            early = _rss_kib(proc.pid)
            start = len(_cycles(log))
            _wait_for(lambda: len(_cycles(log)) >= start + 200, proc, log, timeout=120)
            late = _rss_kib(proc.pid)
        finally:
            stop.set()
            editor.join()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert late <= early * 1.10, (early, late)


def _cycles(log: Path) -> list[dict[str, Any]]:
    return [e["summary"] for e in _json_lines(log.read_text()) if e["message"].startswith("cycle")]


def _wait_for(cond: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(log.read_text()[-3000:])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
