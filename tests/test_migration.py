"""Automatic moves between the global store and a project's own store, killed at every step.

Each scenario indexes a project in one mode, switches it to the other
(`cidx init --storage`), and stops the move with a SIGKILL at one of its
named points (`cidx.failpoints`); the next command, whatever it is, must
finish the move (or roll it back) and answer exactly as before, leaving
nothing behind in the store it left. Batches are small
(CIDX_MIGRATION_BATCH) so that a copy has several to stop between.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from cidx.config import CONFIG_SCHEMA_VERSION
from cidx.userdirs import data_dir
from tests.conftest import DEMO_PROJECT, CliResult, run_cidx, write_files
from tests.helpers import generated_module, registry_rows

INDEX = ".code-indexer"
BATCH = {"CIDX_MIGRATION_BATCH": "8"}
QUERY = "retry failed uploads"


def _global_store() -> Path:
    return data_dir() / "qdrant-data"


def _local_store(root: Path) -> Path:
    return root / INDEX / "qdrant-data"


def _shards(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir()) if store.is_dir() else []


def _indexed(tmp_path: Path, mode: str) -> tuple[Path, dict[str, Any]]:
    """A project of a few dozen chunks indexed in `mode`, and what it answers."""
    root = tmp_path / "proj"
    write_files(root, DEMO_PROJECT)
    write_files(root, {f"src/gen/m{n}.py": generated_module(n) for n in range(3)})
    run_cidx(["init", "--storage", mode], root)
    run_cidx(["index"], root)
    return root, _answers(root)


def _answers(root: Path, query: CliResult | None = None) -> dict[str, Any]:
    """What the project answers: its counts, and its results for a query
    (from `query`, that query's output, when the caller already ran it)."""
    status = run_cidx(["status", "--json"], root).json()
    query = query or run_cidx(["query", QUERY, "--json"], root)
    return {"points": status["points"], "files": status["files"], "results": query.results()}


def _killed(root: Path, args: list[str], point: str) -> CliResult:
    out = run_cidx(args, root, env={**BATCH, "CIDX_FAILPOINT": point}, check=False)
    assert out.returncode == -signal.SIGKILL, (out.returncode, out.stderr)
    return out


def _assert_settled(
    root: Path, mode: str, before: dict[str, Any], query: CliResult | None = None
) -> None:
    """The project answers as before, from `mode`'s store only, nothing left over."""
    assert _answers(root, query) == before
    here, there = (
        (_global_store(), _local_store(root))
        if mode == "global"
        else (_local_store(root), _global_store())
    )
    (shard,) = _shards(here)
    assert _shards(there) == []
    assert not (root / INDEX / "migrating").exists()
    names = [row[0] for row in registry_rows("collections")]
    assert names == ([shard] if mode == "global" else [])
    history = run_cidx(["migrations", "history", "--json"], root).json()["migrations"]
    assert history and all(m["status"] in ("done", "rolled_back") for m in history)
    last = history[-1]
    assert last["status"] == "done" and last["backup"] is None and last["ended_at"]
    assert last["target_mode"] == mode and last["target_collection"] == shard
    assert last["copied"] == last["total"] == before["points"]
    # The registry mirrors every move into or out of the global store.
    mirrored = {row[0]: row[4] for row in registry_rows("migrations")}
    assert all(mirrored[m["id"]] == m["status"] for m in history if m["kind"] == "relocate")


# Every step of a move, in order: before any copy, between two batches
# (after a batch is written but before it is recorded, and after), after the
# copy, after verifying, after writing the config, after the commit, after
# dropping the source.
STEPS = [
    pytest.param("migration_start", id="start"),
    pytest.param("copy_batch:2", id="batch-written", marks=pytest.mark.slow),
    pytest.param("migration_batch:2", id="batch-recorded"),
    pytest.param("migration_copied", id="copied", marks=pytest.mark.slow),
    pytest.param("migration_verified", id="verified", marks=pytest.mark.slow),
    pytest.param("migration_config_written", id="config-written", marks=pytest.mark.slow),
    pytest.param("migration_committed", id="committed"),
    pytest.param("migration_source_dropped", id="source-dropped", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("point", STEPS)
def test_global_to_local_survives_a_sigkill_at_each_step(tmp_path: Path, point: str) -> None:
    root, before = _indexed(tmp_path, "global")
    _killed(root, ["init", "--storage", "local"], point)

    status = run_cidx(["migrations", "status", "--json"], root).json()
    (unfinished,) = status["unfinished"]
    assert unfinished["source_mode"] == "global" and unfinished["target_mode"] == "local"
    if unfinished["status"] in ("copying", "copied", "verified"):
        # Until the commit the source is kept, and is where the record says.
        assert Path(unfinished["backup"]).is_dir()
        assert Path(unfinished["backup"]).parent == _global_store()

    # Any command converges: here a query, which says what it is doing.
    resumed = run_cidx(["query", QUERY, "--json"], root, env=BATCH)
    # (Killed before its first batch, the copy simply starts again.)
    assert "Resuming the move of the index" in resumed.stderr or point == "migration_start"
    assert "Moved the index to the project's own store" in resumed.stderr
    _assert_settled(root, "local", before, resumed)


@pytest.mark.parametrize(
    "point",
    [
        pytest.param("migration_batch:3", id="batch-recorded"),
        pytest.param("migration_committed", id="committed", marks=pytest.mark.slow),
    ],
)
def test_local_to_global_survives_a_sigkill(tmp_path: Path, point: str) -> None:
    root, before = _indexed(tmp_path, "local")
    _killed(root, ["init", "--storage", "global"], point)
    # The registry names the collection being copied in: never an orphan.
    listed = run_cidx(["collections", "list", "--global", "--json"], tmp_path).json()
    assert [r["state"] for r in listed["collections"]] in (["incoming"], ["in use"])
    assert all(r["project_root"] == str(root) for r in listed["collections"])

    query = run_cidx(["query", QUERY, "--json"], root, env=BATCH)
    _assert_settled(root, "global", before, query)


def test_a_failed_move_rolls_back_and_reset_keeps_the_index_where_it_is(tmp_path: Path) -> None:
    root, before = _indexed(tmp_path, "global")
    failed = run_cidx(
        ["init", "--storage", "local"],
        root,
        env={**BATCH, "CIDX_FAILPOINT_RAISE": "copy_batch:1"},
        check=False,
    )
    assert failed.returncode == 13, failed.stderr
    assert "It was rolled back" in failed.stderr and "cidx migrations reset" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert _shards(_local_store(root)) == [] and len(_shards(_global_store())) == 1
    history = run_cidx(["migrations", "history", "--json"], root).json()["migrations"]
    assert [m["status"] for m in history] == ["rolled_back"]
    assert "injected failure" in history[0]["detail"]
    # The config says local, the data is global: the next command would move it.
    pending = run_cidx(["migrations", "status", "--json"], root).json()["pending"]
    assert len(pending) == 1 and "Move the index from the global store" in pending[0]

    # The advised `cidx migrations reset`: the index stays in the global store.
    reset = run_cidx(["migrations", "reset", "--json"], root).json()
    assert reset["storage_mode"] == "global"
    assert any("stays in the global store" in a for a in reset["actions"])
    assert run_cidx(["migrations", "status", "--json"], root).json()["pending"] == []
    assert _answers(root) == before
    assert _shards(_local_store(root)) == []

    # The other advice, running the command again, moves it, and says only that.
    moved = run_cidx(["init", "--storage", "local"], root, env=BATCH)
    assert "Moved the index to" in moved.stderr and "rolled back" not in moved.stderr
    _assert_settled(root, "local", before)


def test_reset_rolls_back_a_move_killed_mid_copy(tmp_path: Path) -> None:
    root, before = _indexed(tmp_path, "global")
    _killed(root, ["init", "--storage", "local"], "migration_batch:2")
    assert _shards(_local_store(root))  # the partial copy

    human = run_cidx(["migrations"], root).stdout
    (record,) = run_cidx(["migrations", "history", "--json"], root).json()["migrations"]
    assert "Unfinished:" in human and record["id"] in human and "copying" in human
    reset = run_cidx(["migrations", "reset"], root)
    assert "Rolled back moving the index" in reset.stdout
    assert _shards(_local_store(root)) == []
    assert not (root / INDEX / "migrating").exists()
    history = run_cidx(["migrations", "history", "--json"], root).json()["migrations"]
    assert [m["status"] for m in history] == ["rolled_back"]
    assert _answers(root) == before
    assert len(_shards(_global_store())) == 1


def test_a_rollback_killed_part_way_is_finished_by_the_next_command(tmp_path: Path) -> None:
    root, before = _indexed(tmp_path, "global")
    out = run_cidx(
        ["init", "--storage", "local"],
        root,
        env={
            **BATCH,
            "CIDX_FAILPOINT_RAISE": "copy_batch:1",
            "CIDX_FAILPOINT": "migration_rolled_back_data",
        },
        check=False,
    )
    assert out.returncode == -signal.SIGKILL
    (record,) = run_cidx(["migrations", "status", "--json"], root).json()["unfinished"]
    assert record["status"] == "rolling_back"
    # The next command finishes the rollback, then tries the move again.
    query = run_cidx(["query", QUERY, "--json"], root, env=BATCH)
    _assert_settled(root, "local", before, query)
    history = run_cidx(["migrations", "history", "--json"], root).json()["migrations"]
    assert [m["status"] for m in history] == ["rolled_back", "done"]


def test_a_config_schema_upgrade_is_pending_then_run_and_recorded(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, DEMO_PROJECT)
    run_cidx(["init"], root)
    config_file = root / INDEX / "config.json"
    current = json.loads(config_file.read_text())
    # The same index as a v1 config describes it: the identity was a plain id.
    old = {k: v for k, v in current.items() if k != "identity"}
    old.update(schema_version=1, project_id=current["identity"]["id"])
    config_file.write_text(json.dumps(old))

    status = run_cidx(["migrations", "status", "--json"], root).json()
    assert status["pending"] == [f"Upgrade {config_file} from schema 1 to {CONFIG_SCHEMA_VERSION}."]
    assert json.loads(config_file.read_text())["schema_version"] == 1  # only looked at

    assert run_cidx(["status", "--json"], root).json()["storage_mode"] == "local"
    upgraded = json.loads(config_file.read_text())
    # A v1 id is kept as the identity (so nothing is renamed), marked legacy.
    assert upgraded["schema_version"] == CONFIG_SCHEMA_VERSION
    assert upgraded["identity"] == {"id": current["identity"]["id"], "source": "legacy"}
    (record,) = run_cidx(["migrations", "history", "--json"], root).json()["migrations"]
    assert (record["kind"], record["status"], record["detail"]) == (
        "config",
        "done",
        f"config schema 1 → {CONFIG_SCHEMA_VERSION}",
    )
    assert run_cidx(["migrations", "status", "--json"], root).json()["pending"] == []
