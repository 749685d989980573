"""Moving an index between the embedded store and a server: real stores, real processes, SIGKILL.

`tests.storagemove_kit` moves "src" from an embedded store to "dst" in a
server store (qdrant-client's local mode: the server store's own code) and
on to "back" in the embedded store, while a writer applies upserts and
deletes through the one write path and a reader queries throughout. The
tests compare what each store holds, point by point, with what the ops must
leave. The end-to-end test runs the same move through the `cidx` commands.

qdrant-client's local mode commits every point to SQLite on its own (about
20 ms each on this machine's disk), so the server's folder lives in
memory-backed storage when there is some: the same code, still surviving a
SIGKILL of the process, in seconds instead of minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cidx.store import PointData
from tests import dualwrite_kit as kit
from tests.storagemove_kit import EDGE, SERVER, open_store
from tests.test_dualwrite import assert_holds

ROOT = Path(__file__).resolve().parent.parent
OPS = 4_000


@pytest.fixture
def server_dir() -> Iterator[Path]:
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="cidx-test-", dir=shm if shm.is_dir() else None))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_kit(
    folder: Path,
    server: Path,
    *,
    until: str = "back",
    ops: int = OPS,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.storagemove_kit",
            str(folder),
            "--ops",
            str(ops),
            "--until",
            until,
            "--server-dir",
            str(server),
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def points_in(folder: Path, server: Path, key: str, name: str) -> dict[str, PointData] | None:
    store = open_store(folder, key, server)
    try:
        if not store.collection_exists(name):
            return None
        found: dict[str, PointData] = {}
        offset: str | None = None
        while True:
            page, offset = store.page(name, offset=offset, limit=1024)
            found.update((p.id, p) for p in page)
            if offset is None:
                return found
    finally:
        store.close()


def report_of(folder: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((folder / "report.json").read_text())
    return report


def assert_moved_back(folder: Path, server: Path, ops: int) -> None:
    report = report_of(folder)
    assert report["phase"] == "done" and report["reads"] == "back", report
    assert report["place"] == EDGE and report["queued"] == 0, report
    assert report["errors"] == [] and report["empty"] == 0 and report["queries"] > 50, report
    want = kit.expected(1, ops)
    assert_holds(points_in(folder, server, EDGE, "back"), want)
    # Each move's SOURCE is gone from its store once cleaned up.
    assert points_in(folder, server, EDGE, "src") is None
    assert points_in(folder, server, SERVER, "dst") is None


def test_local_to_server_to_local_under_writes_and_queries(
    tmp_path: Path, server_dir: Path
) -> None:
    done = run_kit(tmp_path, server_dir)
    assert done.returncode == 0, done.stderr
    assert_moved_back(tmp_path, server_dir, OPS)


def test_rollback_after_cutover_to_the_server_keeps_every_write(
    tmp_path: Path, server_dir: Path
) -> None:
    done = run_kit(tmp_path, server_dir, until="rolled_back")
    assert done.returncode == 0, done.stderr
    report = report_of(tmp_path)
    assert report["phase"] == "rolled_back" and report["reads"] == "src", report
    assert report["place"] == EDGE, "the config follows the reads back"
    assert report["errors"] == [] and report["empty"] == 0, report
    assert_holds(points_in(tmp_path, server_dir, EDGE, "src"), kit.expected(1, OPS))
    assert points_in(tmp_path, server_dir, SERVER, "dst") is None


@pytest.mark.parametrize(
    "failpoint",
    [
        pytest.param("migration_prepared", marks=pytest.mark.slow),  # prepare
        "backfill_batch:5",  # backfill, mid-way (the first move)
        pytest.param("migration_validated", marks=pytest.mark.slow),  # validate
        "migration_cut_over",  # reads switched, the config not yet
        pytest.param("migration_cleanup", marks=pytest.mark.slow),  # cleanup
        pytest.param("backfill_batch:40", marks=pytest.mark.slow),  # the move back
        "dualwrite_mirror:60",  # the writer, the other store not yet written
    ],
)
def test_sigkill_in_any_phase_of_a_move_resumes_to_the_same_end(
    tmp_path: Path, server_dir: Path, failpoint: str
) -> None:
    ops = 2_000
    killed = run_kit(tmp_path, server_dir, ops=ops, env={"CIDX_FAILPOINT": failpoint})
    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    again = run_kit(tmp_path, server_dir, ops=ops)
    assert again.returncode == 0, again.stderr
    assert_moved_back(tmp_path, server_dir, ops)
