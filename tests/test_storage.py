"""Storage modes and collection management end to end: real processes, real stores.

The `moded` fixture runs the same index/query/clear/uninstall scenarios in a
project-local store and in the global store (the data folder is per test:
conftest sets CIDX_DATA_DIR), and checks afterwards that nothing is left
behind in either place.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cidx.registry import Registry
from cidx.userdirs import data_dir
from tests.conftest import DEMO_PROJECT, cidx_cmd, run_cidx, write_files
from tests.helpers import registry_rows

INDEX = ".code-indexer"


def _global_store() -> Path:
    return data_dir() / "qdrant-data"


def _shards(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir()) if store.is_dir() else []


@pytest.fixture(params=["local", "global"])
def moded(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """The demo project, initialised in each storage mode."""
    root = tmp_path / "proj"
    write_files(root, DEMO_PROJECT)
    mode = str(request.param)
    out = run_cidx(["init", "--storage", mode, "--json"], root).json()
    assert out["storage_mode"] == mode
    return root, mode


def _where(root: Path, mode: str) -> Path:
    """The store a project of `mode` keeps its collection in."""
    return _global_store() if mode == "global" else root / INDEX / "qdrant-data"


def test_index_query_status_and_collections_in_each_mode(moded: tuple[Path, str]) -> None:
    root, mode = moded
    store = _where(root, mode)
    summary = run_cidx(["index", "--json"], root).json()
    assert summary["files_added"] == 4
    top = run_cidx(["query", "retry failed uploads", "--json", "-n", "1"], root).results()[0]
    assert top["path"] == "src/uploads/retry.py"

    status = run_cidx(["status", "--json"], root).json()
    assert status["storage_mode"] == mode
    assert Path(status["storage_path"]).parent == store
    assert status["points"] == status["chunks"] > 0
    human = run_cidx(["status"], root).stdout
    assert f"Storage              {mode} — {store}" in human
    # Only the global store holds the data of a global project, and the other
    # way round.
    other = root / INDEX / "qdrant-data" if mode == "global" else _global_store()
    assert _shards(store) == [Path(status["storage_path"]).name] and _shards(other) == []

    listed = run_cidx(["collections", "list", "--json"], root).json()
    assert listed["storage_mode"] == mode and listed["store_dir"] == str(store)
    (row,) = listed["collections"]
    assert row["current"] and row["state"] == "in use" and row["mode"] == mode
    assert row["points"] == status["points"] and row["disk_bytes"] > 0
    assert row["project_root"] == str(root)
    info = run_cidx(["collections", "info", "--json"], root).json()
    assert info["name"] == row["name"] and info["files"] == 4
    if mode == "global":
        (entry,) = registry_rows("collections")
        assert entry[:2] == (row["name"], str(root))
        assert info["created_at"] is not None and info["last_used_at"] is not None
    else:
        assert registry_rows("collections") == []


def test_index_clear_and_clear_data_in_each_mode(moded: tuple[Path, str]) -> None:
    root, mode = moded
    store = _where(root, mode)
    first = run_cidx(["index", "--json"], root).json()
    rebuilt = run_cidx(["index", "--clear", "--json"], root).json()
    assert rebuilt["files_added"] == first["files_added"] and rebuilt["chunks_embedded"] == 0
    points = run_cidx(["status", "--json"], root).json()["points"]
    assert points > 0

    cleared = run_cidx(["clear-data", "--json"], root).json()
    assert cleared["scope"] == "project" and cleared["freed_bytes"] > 0
    assert [c["mode"] for c in cleared["removed"]] == [mode]
    assert _shards(store) == []
    status = run_cidx(["status", "--json"], root).json()
    assert status["points"] == 0 and status["storage_mode"] == mode
    # The config and the embedding cache stay: rebuilding embeds nothing.
    again = run_cidx(["index", "--json"], root).json()
    assert again["chunks_embedded"] == 0
    assert run_cidx(["status", "--json"], root).json()["points"] == points


def test_uninstall_asks_first_and_leaves_nothing_in_each_mode(moded: tuple[Path, str]) -> None:
    root, mode = moded
    run_cidx(["index"], root)
    refused = run_cidx(["uninstall"], root, check=False)
    assert refused.returncode == 2 and "pass --yes to confirm" in refused.stderr
    assert (root / INDEX).is_dir() and _shards(_where(root, mode))
    declined = run_cidx(["uninstall"], root, check=False, input="n\n")
    assert declined.returncode != 0 and (root / INDEX).is_dir()

    report = run_cidx(["uninstall", "--yes", "--json"], root).json()
    assert report["index_dir"] == str(root / INDEX) and report["freed_bytes"] > 0
    assert not (root / INDEX).exists()
    assert _shards(_global_store()) == []
    assert registry_rows("collections") == [] and registry_rows("migrations") == []
    assert sorted(p.name for p in root.iterdir()) == ["README.md", "src", "web"]
    gone = run_cidx(["status"], root, check=False)
    assert gone.returncode == 10 and "Traceback" not in gone.stderr


def test_a_global_project_moves_to_local_and_back(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, DEMO_PROJECT)
    run_cidx(["init", "--storage", "global"], root)
    run_cidx(["index"], root)
    before = run_cidx(["query", "verify a token", "--json"], root).results()

    moved = run_cidx(["init", "--local-storage", "--json"], root)
    result = moved.json()
    assert result["storage_mode"] == "local" and result["previous_storage_mode"] == "global"
    assert "Moving the index from the global store" in moved.stderr
    assert "Moved the index to the project's own store" in moved.stderr
    assert _shards(_global_store()) == [] and registry_rows("collections") == []
    assert run_cidx(["query", "verify a token", "--json"], root).results() == before

    back = run_cidx(["init", "--storage", "global", "--json"], root).json()
    assert back["storage_mode"] == "global" and back["previous_storage_mode"] == "local"
    assert _shards(root / INDEX / "qdrant-data") == []
    assert _shards(_global_store()) == [Path(back["storage_path"]).name]
    assert run_cidx(["query", "verify a token", "--json"], root).results() == before
    history = run_cidx(["migrations", "history", "--json"], root).json()["migrations"]
    assert [(m["source_mode"], m["target_mode"], m["status"]) for m in history] == [
        ("global", "local", "done"),
        ("local", "global", "done"),
    ]
    assert all(m["ended_at"] and m["backup"] is None for m in history)
    # The registry mirrors the moves into and out of the global store.
    assert sorted((r[3], r[4]) for r in registry_rows("migrations")) == [
        ("in", "done"),
        ("out", "done"),
    ]
    status = run_cidx(["migrations", "--json"], root).json()
    assert status["unfinished"] == [] and status["pending"] == []


def test_bad_storage_values_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, DEMO_PROJECT)
    bad = run_cidx(["init", "--storage", "cloud"], root, check=False)
    assert bad.returncode == 2 and "Use local, global or server" in bad.stderr
    both = run_cidx(["init", "--storage", "global", "--local-storage"], root, check=False)
    assert both.returncode == 2 and "contradict" in both.stderr
    assert not (root / INDEX).exists()


def _two_global_projects(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    write_files(a, {"src/uploads/retry.py": DEMO_PROJECT["src/uploads/retry.py"]})
    write_files(b, {"src/auth/tokens.py": DEMO_PROJECT["src/auth/tokens.py"]})
    for root in (a, b):
        run_cidx(["init", "--storage", "global"], root)
    return a, b


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*cidx_cmd(), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(proc: subprocess.Popen[str]) -> Any:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)


@pytest.mark.slow
def test_two_global_projects_index_and_query_at_once_without_blocking(tmp_path: Path) -> None:
    a, b = _two_global_projects(tmp_path)
    # Indexed by two processes at the same time, each owning its own collection
    # in the one shared store.
    runs = [_start(["index", "--json", "--no-wait"], root) for root in (a, b)]
    assert [_finish(p)["files_added"] for p in runs] == [1, 1]
    queries = [
        _start(["query", "retry failed uploads", "--json", "--no-wait"], a),
        _start(["query", "verify a token signature", "--json", "--no-wait"], b),
    ]
    found = [{r["path"] for r in _finish(p)["results"]} for p in queries]
    assert found == [{"src/uploads/retry.py"}, {"src/auth/tokens.py"}]

    # A long-lived owner of A's collection (a watcher) blocks nothing in B.
    watch = subprocess.Popen(
        [*cidx_cmd(), "watch"], cwd=a, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for(lambda: run_cidx(["status", "--json"], a).json()["owner_kind"] == "watch")
        write_files(b, {"src/more.py": "def rotate_keys():\n    return 1\n"})
        summary = run_cidx(["index", "--json", "--no-wait"], b).json()
        assert summary["files_added"] == 1
        hit = run_cidx(["query", "rotate keys", "--json", "--no-wait", "-n", "1"], b).results()
        assert hit[0]["path"] == "src/more.py"
        via_owner = run_cidx(["query", "retry uploads", "--json", "--no-wait"], a).results()
        assert {r["path"] for r in via_owner} == {"src/uploads/retry.py"}
        assert watch.poll() is None
    finally:
        watch.terminate()
        watch.wait(timeout=60)

    listed = run_cidx(["collections", "list", "--json"], a).json()
    rows = {r["project_root"]: r for r in listed["collections"]}
    assert set(rows) == {str(a), str(b)} and all(r["state"] == "in use" for r in rows.values())
    assert rows[str(a)]["current"] and not rows[str(b)]["current"]
    b_status = run_cidx(["status", "--json"], b).json()
    assert rows[str(b)]["points"] == b_status["points"] > 0 and rows[str(b)]["files"] == 2
    assert len({r["name"] for r in rows.values()}) == 2


def _wait_for(condition: Any, timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_clear_data_all_asks_and_clears_every_global_project(tmp_path: Path) -> None:
    a, b = _two_global_projects(tmp_path)
    local = tmp_path / "local"
    write_files(local, DEMO_PROJECT)
    for root in (a, b, local):
        run_cidx(["index"], root)
    # A folder of the global store that no project claims.
    orphan = _global_store() / "cidx-orphan"
    (orphan / "segments").mkdir(parents=True)
    (orphan / "segments" / "x").write_bytes(b"x" * 100)

    refused = run_cidx(["clear-data", "--all"], a, check=False)
    assert refused.returncode == 2 and "pass --yes to confirm" in refused.stderr
    assert "This removes every collection in the global store" in refused.stderr
    assert len(_shards(_global_store())) == 3

    report = run_cidx(["clear-data", "--all", "--yes", "--json"], tmp_path).json()
    assert report["scope"] == "all"
    assert sorted(c["project_root"] or "" for c in report["removed"]) == ["", str(a), str(b)]
    assert _shards(_global_store()) == [] and registry_rows("collections") == []
    for root in (a, b):
        status = run_cidx(["status", "--json"], root).json()
        assert status["points"] == 0 and status["storage_mode"] == "global"
    # A project-local store is not the global store's to clear.
    assert run_cidx(["status", "--json"], local).json()["points"] > 0
    assert run_cidx(["index", "--json"], a).json()["chunks_embedded"] == 0


def test_a_copy_of_a_global_project_gets_its_own_collection(tmp_path: Path) -> None:
    a, _b = _two_global_projects(tmp_path)
    run_cidx(["index"], a)
    points = run_cidx(["status", "--json"], a).json()["points"]
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(a), str(copy)], check=True)
    # Sharing the original's collection is never allowed: the first command
    # copies it to the copy's own name (`cidx fix-config`, tests/test_fix_config_global.py).
    result = run_cidx(["query", "retry uploads", "--json"], copy)
    assert result.results()[0]["path"] == "src/uploads/retry.py"
    assert str(a) in result.stderr and "now has its own" in result.stderr
    names = {run_cidx(["status", "--json"], root).json()["storage_path"] for root in (a, copy)}
    assert len(names) == 2
    # The original keeps its index; the copy has the same points.
    assert run_cidx(["status", "--json"], a).json()["points"] == points > 0
    assert run_cidx(["status", "--json"], copy).json()["points"] == points


def _register(args: tuple[str, str, int]) -> None:
    data, prefix, count = args
    import os

    os.environ["CIDX_DATA_DIR"] = data
    with Registry() as registry:
        for n in range(count):
            registry.put(f"{prefix}-{n}", root=Path(f"/p/{prefix}"), project_id=prefix, model="m")
            registry.touch(f"{prefix}-{n}")


def test_the_registry_takes_concurrent_writers_from_several_processes() -> None:
    data = str(data_dir())
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_register, [(data, f"p{i}", 40) for i in range(4)])
    with Registry() as registry:
        entries = registry.entries()
    assert len(entries) == 160
    assert {e.project_root for e in entries} == {f"/p/p{i}" for i in range(4)}


def test_a_deleted_config_of_a_global_project_is_recreated_around_its_collection(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    write_files(root, DEMO_PROJECT)
    run_cidx(["init", "--storage", "global"], root)
    run_cidx(["index"], root)
    before = run_cidx(["status", "--json"], root).json()
    (root / INDEX / "config.json").unlink()
    summary = run_cidx(["index", "--json"], root).json()
    assert summary["chunks_embedded"] == 0 and summary["files_changed"] == 0
    after = run_cidx(["status", "--json"], root).json()
    assert after["storage_mode"] == "global"
    assert (after["storage_path"], after["points"]) == (before["storage_path"], before["points"])
    assert _shards(root / INDEX / "qdrant-data") == []
