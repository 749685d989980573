"""Damaged indexes through the real CLI: every damage is reported with a next
step, and running that step brings the index back to exactly what a clean
rebuild gives — without embedding anything again.

One indexed project is built per module; each test damages a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO_PROJECT, cidx_cmd, run_cidx, write_files
from tests.helpers import clean_rebuild, full_snapshot, generated_module

INDEX = ".code-indexer"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("recovery")
    root = base / "indexed"
    write_files(
        root, {**DEMO_PROJECT, **{f"pkg/m{i:02d}.py": generated_module(i) for i in range(12)}}
    )
    run_cidx(["index"], root)
    return {"root": root, "expected": clean_rebuild(root, base)}


@pytest.fixture
def proj(pristine: dict[str, Any], tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(pristine["root"], root, symlinks=True)
    return root


def _shard(root: Path) -> Path:
    (shard,) = (root / INDEX / "qdrant-data").iterdir()
    return shard


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _page_offset(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        (size,) = conn.execute("PRAGMA page_size").fetchone()
        (page,) = conn.execute("SELECT min(pageno) FROM dbstat WHERE name = ?", (table,)).fetchone()
    finally:
        conn.close()
    return (page - 1) * size


def _assert_clean(out: Any) -> None:
    assert "Traceback" not in out.stderr, out.stderr


def _assert_rebuilt(root: Path, pristine: dict[str, Any]) -> None:
    assert full_snapshot(root) == pristine["expected"]
    # Nothing left set aside, nothing stray.
    assert [p.name for p in (root / INDEX / "qdrant-data").iterdir()] == [_shard(root).name]
    assert not [p for p in (root / INDEX).iterdir() if ".damaged-" in p.name]


def _doctor_repair(root: Path) -> dict[str, Any]:
    out = run_cidx(["doctor", "--repair", "--json"], root)
    report: dict[str, Any] = out.json()
    assert report["healthy"], report
    return report


# -- config --------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param('{"schema_version": 1, "project_id": ', id="truncated"),
        pytest.param("\x00\x01garbage", id="garbage", marks=pytest.mark.slow),
        pytest.param("[1, 2]", id="not-an-object", marks=pytest.mark.slow),
        pytest.param('{"schema_version": "one"}', id="no-schema-version", marks=pytest.mark.slow),
        pytest.param(None, id="bad-value", marks=pytest.mark.slow),
    ],
)
def test_a_damaged_config_is_recreated_around_the_existing_index(
    proj: Path, pristine: dict[str, Any], damage: str | None
) -> None:
    config = proj / INDEX / "config.json"
    if damage is None:
        config.write_text(
            config.read_text().replace('"max_file_size": 1048576', '"max_file_size": "big"')
        )
    else:
        config.write_text(damage)
    out = run_cidx(["status"], proj, check=False)
    assert out.returncode == 3, out.stderr
    assert str(config) in out.stderr and "`cidx doctor --repair`" in out.stderr
    _assert_clean(out)

    report = _doctor_repair(proj)
    assert report["sync"]["chunks_embedded"] == 0
    checks = {c["name"]: c["status"] for c in report["checks"]}
    assert checks["config"] == "repaired"
    assert any("around the existing collection" in a for a in report["actions"])
    _assert_rebuilt(proj, pristine)
    assert run_cidx(["index", "--json"], proj).json()["files_changed"] == 0


def test_init_force_replaces_an_unreadable_config(proj: Path, pristine: dict[str, Any]) -> None:
    (proj / INDEX / "config.json").write_text("not json")
    old = _shard(proj).name
    out = run_cidx(["init", "--force", "--json"], proj)
    result = out.json()
    assert result["replaced"] and result["collection"] != old
    # A new, empty index; the cache survived, so rebuilding embeds nothing.
    summary = run_cidx(["index", "--json"], proj).json()
    assert summary["chunks_embedded"] == 0 and summary["files_added"] > 0
    _assert_rebuilt(proj, pristine)


def test_a_deleted_config_is_recreated_around_the_data(
    proj: Path, pristine: dict[str, Any]
) -> None:
    (proj / INDEX / "config.json").unlink()
    summary = run_cidx(["index", "--json"], proj).json()
    assert summary["chunks_embedded"] == 0 and summary["files_changed"] == 0
    _assert_rebuilt(proj, pristine)


# -- state database --------------------------------------------------------------


@pytest.mark.parametrize(
    "table, command, code",
    [
        pytest.param(None, ["status"], 4, id="header"),
        pytest.param("files", ["index"], 4, id="page", marks=pytest.mark.slow),
    ],
)
def test_a_damaged_state_db_is_rebuilt_from_the_store(
    proj: Path, pristine: dict[str, Any], table: str | None, command: list[str], code: int
) -> None:
    state = proj / INDEX / "state.db"
    # The header, or the first page of a table every sync reads.
    offset = 0 if table is None else _page_offset(state, table)
    _overwrite(state, offset, b"\xa5" * 8192)
    out = run_cidx(command, proj, check=False)
    assert out.returncode == code, out.stderr
    assert str(state) in out.stderr and "`cidx doctor --repair`" in out.stderr
    _assert_clean(out)

    report = _doctor_repair(proj)
    assert report["sync"]["chunks_embedded"] == 0
    assert any("Rebuilt" in a and "from the store" in a for a in report["actions"])
    _assert_rebuilt(proj, pristine)
    assert run_cidx(["index", "--json"], proj).json()["files_changed"] == 0


def test_config_and_state_db_damaged_together(proj: Path, pristine: dict[str, Any]) -> None:
    (proj / INDEX / "config.json").write_text("{")
    _overwrite(proj / INDEX / "state.db", 0, b"\x00" * 4096)
    report = _doctor_repair(proj)
    assert report["sync"]["chunks_embedded"] == 0
    _assert_rebuilt(proj, pristine)


# -- store -----------------------------------------------------------------------


def test_a_deleted_store_is_reported_and_rebuilt_by_index(
    proj: Path, pristine: dict[str, Any]
) -> None:
    shutil.rmtree(proj / INDEX / "qdrant-data")
    status = run_cidx(["status", "--json"], proj).json()
    assert status["points"] == 0 and status["chunks"] > 0
    assert len(status["problems"]) == 1 and "`cidx index`" in status["problems"][0]
    human = " ".join(run_cidx(["status"], proj).stdout.split())  # however the table wraps
    assert "Problem" in human and "Run `cidx index`" in human

    query = run_cidx(["query", "retry failed uploads", "--no-sync"], proj)
    warnings = [line for line in query.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "`cidx index`" in warnings[0]

    summary = run_cidx(["index", "--json"], proj).json()
    assert summary["chunks_embedded"] == 0 and summary["repairs"]
    _assert_rebuilt(proj, pristine)
    assert run_cidx(["status", "--json"], proj).json()["problems"] == []


def test_a_damaged_payload_page_fails_queries_until_index_rebuilds_it(
    proj: Path, pristine: dict[str, Any]
) -> None:
    (page,) = _shard(proj).glob("segments/*/payload_storage/page_0.dat")
    _overwrite(page, 0, b"\xff" * 64 * 1024)
    out = run_cidx(["query", "retry failed uploads", "--no-sync"], proj, check=False)
    assert out.returncode == 6, out.stderr
    assert "damaged" in out.stderr and "Run `cidx index`" in out.stderr
    _assert_clean(out)

    summary = run_cidx(["index", "--json"], proj).json()
    assert summary["chunks_embedded"] == 0
    assert any("damaged" in r for r in summary["repairs"])
    _assert_rebuilt(proj, pristine)
    run_cidx(["query", "retry failed uploads", "--no-sync"], proj)


def test_a_query_that_may_sync_rebuilds_a_damaged_store_itself(
    proj: Path, pristine: dict[str, Any]
) -> None:
    (page,) = _shard(proj).glob("segments/*/payload_storage/page_0.dat")
    _overwrite(page, 0, b"\xff" * 64 * 1024)
    out = run_cidx(["query", "retry failed uploads", "--json"], proj)
    assert out.json()["results"][0]["path"] == "src/uploads/retry.py"
    assert "repaired:" in out.stderr and "damaged" in out.stderr
    _assert_clean(out)
    _assert_rebuilt(proj, pristine)


@pytest.mark.parametrize(
    "target",
    [
        "segments/*/segment.json",
        pytest.param("wal/open-1", marks=pytest.mark.slow),
        # With its journal gone, a garbage tracker makes the engine panic on read.
        "segments/*/payload_storage/tracker.dat",
        pytest.param("segments/*/vector_storage-sparse/store/page_0.dat", marks=pytest.mark.slow),
    ],
)
def test_a_shard_that_cannot_be_read_is_set_aside_and_rebuilt(
    proj: Path, pristine: dict[str, Any], target: str
) -> None:
    (path,) = _shard(proj).glob(target)
    _overwrite(path, 0, b"\xff" * 65536)  # not random: each target fails the same way every time
    if path.name == "tracker.dat":
        path.with_name("tracker_journal.dat").unlink(missing_ok=True)
    out = run_cidx(["query", "retry failed uploads", "--no-sync"], proj, check=False)
    assert out.returncode == 6, out.stderr
    assert "damaged" in out.stderr and "`cidx index`" in out.stderr
    _assert_clean(out)
    status = run_cidx(["status", "--json"], proj).json()
    assert status["problems"] and "`cidx index`" in status["problems"][0]

    summary = run_cidx(["index", "--json"], proj).json()
    assert summary["chunks_embedded"] == 0 and summary["repairs"]
    _assert_rebuilt(proj, pristine)


def test_doctor_finds_silently_overwritten_vectors(proj: Path, pristine: dict[str, Any]) -> None:
    (vectors,) = _shard(proj).glob("segments/*/vector_storage-dense/vectors/chunk_0.mmap")
    _overwrite(vectors, 0, os.urandom(64 * 1024))
    # The engine reads them back without complaint...
    run_cidx(["query", "retry failed uploads", "--no-sync"], proj)
    # ...but they are not the vectors the model gave.
    out = run_cidx(["doctor", "--json"], proj, check=False)
    assert out.returncode == 12
    checks = {c["name"]: c for c in out.json()["checks"]}
    assert checks["vectors"]["status"] == "problem"
    assert "doctor --repair" in checks["vectors"]["next_step"]
    report = _doctor_repair(proj)
    assert report["sync"]["chunks_embedded"] == 0
    _assert_rebuilt(proj, pristine)


# -- doctor --------------------------------------------------------------------------


def test_doctor_on_a_healthy_index(proj: Path) -> None:
    out = run_cidx(["doctor", "--json"], proj)
    report = out.json()
    assert report["healthy"] and not report["actions"]
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert set(statuses) == {
        "config",
        "state",
        "store",
        "counts",
        "ids",
        "payloads",
        "vectors",
        "aliases",
        "alias-registry",
        "leftovers",
        "owner",
        "permissions",
        "disk",
    }
    assert all(s in ("ok", "warning") for s in statuses.values()), statuses
    human = run_cidx(["doctor"], proj)
    assert "The index is healthy." in human.stdout


def test_doctor_reports_drift_and_leftovers_then_repairs_them(
    proj: Path, pristine: dict[str, Any]
) -> None:
    index = proj / INDEX
    # A stray point and a missing one, made behind cidx's back.
    from tests.helpers import opened

    with opened(proj) as engine:
        some = next(iter(engine.manifest.files().values()))
        engine.store.delete(engine.collection, list(some.chunk_ids[:1]))
    (index / "qdrant-data" / "cidx-000000000000-old-model").mkdir()
    (index / ".config.json.999999999.tmp").write_text("{}")
    (index / "owner.sock").write_text("")
    # Every cidx command keeps the folder itself private; a file can still
    # lose its owner's permissions.
    os.chmod(index / "config.json", 0o200)

    out = run_cidx(["doctor"], proj, check=False)
    assert out.returncode == 12, out.stdout
    assert "PROBLEM" in out.stdout and "cidx doctor --repair" in out.stdout
    checks = {
        c["name"]: c for c in run_cidx(["doctor", "--json"], proj, check=False).json()["checks"]
    }
    assert checks["counts"]["status"] == "problem" and checks["ids"]["status"] == "problem"
    assert checks["leftovers"]["status"] == "warning"
    assert checks["owner"]["status"] == "warning"
    assert checks["permissions"]["status"] == "problem"

    report = _doctor_repair(proj)
    final = {c["name"]: c["status"] for c in report["checks"]}
    assert final["counts"] == final["ids"] == final["leftovers"] == "repaired"
    assert final["owner"] == final["permissions"] == "repaired"
    assert report["sync"]["chunks_embedded"] == 0
    assert (index / "config.json").stat().st_mode & 0o777 == 0o600
    assert not (index / "owner.sock").exists()
    _assert_rebuilt(proj, pristine)


def test_doctor_without_an_index_says_so(tmp_path: Path) -> None:
    out = run_cidx(["doctor"], tmp_path, check=False)
    assert out.returncode == 10 and "nothing to check" in out.stderr
    assert not (tmp_path / INDEX).exists()


@pytest.mark.slow
def test_doctor_does_not_wait_for_a_watcher(proj: Path) -> None:
    watcher = subprocess.Popen(
        [*cidx_cmd(), "watch"], cwd=proj, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        owner = proj / INDEX / "owner.json"
        while not (owner.exists() and json.loads(owner.read_text() or "{}").get("kind") == "watch"):
            assert watcher.poll() is None, "cidx watch exited"
            assert time.monotonic() < deadline, "cidx watch did not take the index"
            time.sleep(0.05)
        out = run_cidx(["doctor"], proj, check=False, timeout=60)
        assert out.returncode == 7, out.stderr
        assert "`cidx watch`" in out.stderr and "Stop that process" in out.stderr
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=60)
