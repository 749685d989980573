"""Collection migrations with dual writes: a real store, real processes, SIGKILL in every phase.

`tests.dualwrite_kit` owns a real embedded store in a child process and
migrates "src" to "dst" while a writer thread applies 10,000 upserts and
deletes through the one write path and a reader queries throughout. The
tests compare both sides, point by point, with what the ops must leave.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cidx.dualwrite import MigrationParts, Migrator, PointWriter
from cidx.errors import UsageError
from cidx.parts import Models
from cidx.state.moves import MoveTable
from cidx.store import PointData
from tests import dualwrite_kit as kit

ROOT = Path(__file__).resolve().parent.parent
OPS = 10_000
# Enough writes to overlap every phase of the migration in the kill tests.
KILL_OPS = 4_000


def run_kit(
    folder: Path, *, until: str = "cutover", env: dict[str, str] | None = None, ops: int = OPS
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.dualwrite_kit",
            str(folder),
            "--ops",
            str(ops),
            "--until",
            until,
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def points_of(folder: Path, name: str) -> dict[str, PointData] | None:
    store, db, _collections = kit.open_parts(folder)
    try:
        return kit.read_all(store, name)
    finally:
        store.close()
        db.close()


def assert_holds(actual: dict[str, PointData] | None, want: dict[str, PointData]) -> None:
    assert actual is not None
    lost = set(want) - set(actual)
    resurrected = set(actual) - set(want)
    assert not lost and not resurrected, (len(lost), len(resurrected))
    for pid, point in want.items():
        got = actual[pid]
        assert got.payload == point.payload, pid
        assert got.sparse.indices == point.sparse.indices, pid
        norm = math.sqrt(sum(x * x for x in point.dense))  # the store keeps unit vectors
        assert all(
            math.isclose(a, b / norm, rel_tol=1e-4, abs_tol=1e-5)
            for a, b in zip(got.dense, point.dense, strict=True)
        ), pid


def report_of(folder: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((folder / "report.json").read_text())
    return report


def test_a_migration_under_10000_writes_ends_with_both_sides_equal(tmp_path: Path) -> None:
    done = run_kit(tmp_path)
    assert done.returncode == 0, done.stderr
    report = report_of(tmp_path)
    assert report["phase"] == "cutover" and report["reads"] == "dst", report
    assert report["errors"] == [] and report["empty"] == 0 and report["queries"] > 100, report
    assert report["queued"] == 0
    want = kit.expected(1, OPS)
    assert_holds(points_of(tmp_path, "dst"), want)
    # SOURCE kept receiving every write after the cutover: rollback loses nothing.
    assert_holds(points_of(tmp_path, "src"), want)


@pytest.mark.parametrize(
    "failpoint",
    [
        pytest.param("migration_prepared", marks=pytest.mark.slow),  # prepare
        "backfill_batch:5",  # backfill, mid-way
        pytest.param("migration_validated", marks=pytest.mark.slow),  # validate
        pytest.param("migration_cut_over", marks=pytest.mark.slow),  # cutover
        pytest.param("dualwrite_queued:60", marks=pytest.mark.slow),  # before either side
        "dualwrite_mirror:90",  # the writer, with the other side not yet written
        pytest.param("dualwrite_read_side:100", marks=pytest.mark.slow),  # after the read side
        pytest.param("dualwrite_mirrored:120", marks=pytest.mark.slow),  # before the outbox clears
    ],
)
def test_sigkill_in_any_phase_resumes_to_the_same_end(tmp_path: Path, failpoint: str) -> None:
    killed = run_kit(tmp_path, env={"CIDX_FAILPOINT": failpoint}, ops=KILL_OPS)
    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    again = run_kit(tmp_path, ops=KILL_OPS)
    assert again.returncode == 0, again.stderr
    report = report_of(tmp_path)
    assert report["phase"] == "cutover" and report["queued"] == 0, report
    assert report["errors"] == [] and report["empty"] == 0, report
    want = kit.expected(1, KILL_OPS)
    assert_holds(points_of(tmp_path, "dst"), want)
    assert_holds(points_of(tmp_path, "src"), want)


def test_writes_that_fail_on_the_other_side_are_retried_from_the_outbox(tmp_path: Path) -> None:
    done = run_kit(tmp_path, env={"CIDX_FAILPOINT_RAISE": "dualwrite_mirror:40"}, ops=3000)
    assert done.returncode == 0, done.stderr
    assert "queued for a retry" in done.stderr
    report = report_of(tmp_path)
    assert report["phase"] == "cutover" and report["queued"] == 0, report
    want = kit.expected(1, 3000)
    assert_holds(points_of(tmp_path, "dst"), want)
    assert_holds(points_of(tmp_path, "src"), want)


def test_rollback_after_cutover_returns_reads_to_source_with_every_write(tmp_path: Path) -> None:
    done = run_kit(tmp_path, until="rolled_back")
    assert done.returncode == 0, done.stderr
    report = report_of(tmp_path)
    assert report["phase"] == "rolled_back" and report["reads"] == "src", report
    assert report["errors"] == [] and report["empty"] == 0
    assert_holds(points_of(tmp_path, "src"), kit.expected(1, OPS))
    assert points_of(tmp_path, "dst") is None


def test_a_rollback_killed_part_way_finishes_on_the_next_run(tmp_path: Path) -> None:
    killed = run_kit(
        tmp_path, until="rolled_back", env={"CIDX_FAILPOINT": "migration_rolling_back"}
    )
    assert killed.returncode == -9, killed.stderr
    assert run_kit(tmp_path, until="rolled_back").returncode == 0
    assert report_of(tmp_path)["phase"] == "rolled_back"
    assert_holds(points_of(tmp_path, "src"), kit.expected(1, OPS))
    assert points_of(tmp_path, "dst") is None


def test_cleanup_killed_part_way_drops_source_and_keeps_its_name(tmp_path: Path) -> None:
    killed = run_kit(tmp_path, until="done", env={"CIDX_FAILPOINT": "migration_cleanup"})
    assert killed.returncode == -9, killed.stderr
    again = run_kit(tmp_path, until="done")
    assert again.returncode == 0, again.stderr
    report = report_of(tmp_path)
    # The old name is an alias of the new collection: reads through it find TARGET.
    assert report["phase"] == "done" and report["reads"] == "dst", report
    assert points_of(tmp_path, "src") is None
    assert_holds(points_of(tmp_path, "dst"), kit.expected(1, OPS))


# -- in-process: the rules of the state machine ------------------------------


@pytest.fixture
def migrator(tmp_path: Path) -> Iterator[Migrator]:
    store, db, collections = kit.open_parts(tmp_path)
    store.create_collection("src", kit.DIM)
    store.upsert("src", [kit.point(i, 0) for i in range(300)])
    lock = threading.RLock()
    yield Migrator(MigrationParts(collections, Models(128), lambda: lock))
    store.close()
    db.close()


def test_a_failed_validation_switches_nothing(migrator: Migrator) -> None:
    collections = migrator.parts.collections
    move = migrator.start("src", "dst", batch=50)
    while move.phase == "backfill":
        migrator.step()
        move = MoveTable(collections.db).get(move.id) or move
    # Something behind the migration's back: TARGET lost a point.
    collections.store.delete("dst", [kit.pid(7)])
    migrator.run()
    move = migrator.active() or move
    assert move.phase == "invalid" and move.detail and "lacks 1 points" in move.detail
    with pytest.raises(UsageError, match="failed its validation"):
        migrator.cutover()
    assert collections.resolve("src") == "src"
    migrator.rollback()
    assert not collections.store.collection_exists("dst")


def test_a_migration_refuses_what_it_cannot_do(migrator: Migrator) -> None:
    with pytest.raises(UsageError, match="no collection 'nope'"):
        migrator.start("nope", "dst")
    with pytest.raises(UsageError, match="to itself"):
        migrator.start("src", "src")
    with pytest.raises(UsageError, match="cannot make vectors"):
        migrator.start("src", "dst", reembed="some-other-model@128")
    migrator.start("src", "dst")
    with pytest.raises(UsageError, match="one runs at a time"):
        migrator.start("src", "dst2")
    with pytest.raises(UsageError, match="cleanup comes after cutover"):
        migrator.cleanup()
    # Dual writes are on: a write through the write path reaches both sides.
    PointWriter(migrator.parts.collections, migrator.parts.models).upsert("src", [kit.point(2, 5)])
    migrator.run()
    assert (migrator.active() or pytest.fail()).phase == "validated"
    migrator.cutover()
    with pytest.raises(UsageError, match="kept for rollback"):
        migrator.cleanup()
    migrator.cleanup(force=True)
    assert migrator.parts.collections.resolve("src") == "dst"
    assert not migrator.parts.collections.store.collection_exists("src")


def test_a_dual_write_notes_its_batch_in_one_row_and_a_stopped_one_reaches_the_outbox(
    migrator: Migrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    collections = migrator.parts.collections
    db, store = collections.db, collections.store
    table = MoveTable(db)
    move = migrator.start("src", "dst")
    migrator.run()
    writer = PointWriter(collections, migrator.parts.models)
    writer.upsert("src", [kit.point(i, 1) for i in range(100)])
    # Both sides took it: nothing stays noted, nothing was queued per point.
    assert table.outbox_size(move.id) == 0
    assert db.get_meta("collection_migration_in_flight") is None

    # A write killed after its note (the state a SIGKILL leaves): the next
    # write moves the noted ids to the outbox before noting its own.
    with db.transaction() as tx:
        table.in_flight(tx, move.id, [kit.pid(i) for i in range(10)])
    writer.delete("src", [kit.pid(250)])
    assert {e.point_id for e in table.outbox(move.id)} == {kit.pid(i) for i in range(10)}

    # The read side refusing a write: the write fails, its ids are queued.
    real_upsert = store.upsert

    def refuse(name: str, points: Sequence[PointData]) -> None:
        if name == "src":
            raise OSError("disk on fire")
        real_upsert(name, points)

    monkeypatch.setattr(store, "upsert", refuse)
    with pytest.raises(OSError):
        writer.upsert("src", [kit.point(i, 2) for i in range(20, 30)])
    monkeypatch.undo()
    queued = {e.point_id for e in table.outbox(move.id)}
    assert queued == {kit.pid(i) for i in [*range(10), *range(20, 30)]}
    migrator.run()  # drained, validated
    assert table.outbox_size(move.id) == 0
    assert (migrator.active() or pytest.fail()).phase == "validated"
