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

from cidx.errors import ExitCode
from cidx.store import PointData
from cidx.store.server import ServerStore
from tests import dualwrite_kit as kit
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
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
        return kit.read_all(store, name)
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


@pytest.mark.slow
def test_a_rollback_from_the_server_killed_part_way_finishes(
    tmp_path: Path, server_dir: Path
) -> None:
    ops = 2_000
    killed = run_kit(
        tmp_path,
        server_dir,
        until="rolled_back",
        ops=ops,
        env={"CIDX_FAILPOINT": "migration_rolling_back"},
    )
    assert killed.returncode == -9, killed.stderr
    again = run_kit(tmp_path, server_dir, until="rolled_back", ops=ops)
    assert again.returncode == 0, again.stderr
    report = report_of(tmp_path)
    assert report["phase"] == "rolled_back" and report["place"] == EDGE, report
    assert_holds(points_in(tmp_path, server_dir, EDGE, "src"), kit.expected(1, ops))
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


# -- through the commands ----------------------------------------------------


def _status(root: Path) -> dict[str, Any]:
    status: dict[str, Any] = run_cidx(["status", "--json"], root).json()
    return status


def _top(root: Path, query: str) -> str:
    hits = run_cidx(["query", query, "--json"], root).json()
    return str(hits["results"][0]["path"])


def test_cidx_storage_migrate_to_a_server_and_back(tmp_path: Path, server_dir: Path) -> None:
    root = tmp_path / "project"
    write_files(root, DEMO_PROJECT)
    run_cidx(["init"], root)
    run_cidx(["index"], root)
    url = f"local:{server_dir}"

    started = run_cidx(
        ["storage", "migrate", "--to", "server", "--qdrant-url", url, "--json"], root
    )
    view = started.json()["migration"]
    assert view["phase"] == "validated" and view["started_by"] == "storage migrate", view
    assert (view["source_place"], view["target_place"]) == ("local", f"server {url}")
    status = _status(root)
    assert status["storage_mode"] == "local" and status["migration"]["phase"] == "validated"

    # Written during the move: reaches both stores.
    (root / "late.py").write_text("def rotate_signing_keys_late():\n    return 1\n")
    run_cidx(["index"], root)
    run_cidx(["collections", "migration", "cutover"], root)
    status = _status(root)
    assert status["storage_mode"] == "server" and url in status["storage_path"], status
    assert status["points"] == status["chunks"] and status["problems"] == []
    assert _top(root, "rotate signing keys") == "late.py"

    # Rollback after cutover: reads, writes and the config return to the local store.
    run_cidx(["collections", "migration", "rollback"], root)
    status = _status(root)
    assert status["storage_mode"] == "local" and status["points"] == status["chunks"]
    assert _top(root, "rotate signing keys") == "late.py"

    # Again, to the end: the local copy goes, the server's holds the index,
    # and the old name is an alias of it, on the server too.
    local_name = status["collection"]
    run_cidx(["storage", "migrate", "--to", "server", "--qdrant-url", url], root)
    run_cidx(["collections", "migration", "cutover"], root)
    run_cidx(["collections", "migration", "cleanup", "--force"], root)
    status = _status(root)
    assert status["storage_mode"] == "server" and status["migration"] is None
    server = open_store(tmp_path, SERVER, server_dir)
    try:
        assert isinstance(server, ServerStore)
        assert server.aliases() == {local_name: status["collection"]}
    finally:
        server.close()
    assert list((root / ".code-indexer" / "qdrant-data").iterdir()) == []
    assert _top(root, "rotate signing keys") == "late.py"

    # And back to the project's own folder.
    run_cidx(["storage", "migrate", "--to", "local"], root)
    run_cidx(["collections", "migration", "cutover"], root)
    run_cidx(["collections", "migration", "cleanup", "--force"], root)
    status = _status(root)
    assert status["storage_mode"] == "local" and status["points"] == status["chunks"]
    assert _top(root, "rotate signing keys") == "late.py"


def test_storage_migrate_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_files(root, DEMO_PROJECT)
    run_cidx(["init"], root)
    cases = [
        (["--to", "server"], "--to server needs --qdrant-url"),
        (["--to", "local"], "is in the local store already"),
        (["--to", "moon"], "--to must be one of local, global, server"),
        (["--to", "global", "--qdrant-url", "https://q.example:6333"], "--qdrant-url goes with"),
    ]
    for args, message in cases:
        refused = run_cidx(["storage", "migrate", *args], root, check=False)
        assert refused.returncode == ExitCode.USAGE, refused.stderr
        assert message in refused.stderr and "Traceback" not in refused.stderr
    assert _status(root)["migration"] is None
