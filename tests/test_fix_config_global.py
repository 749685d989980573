"""Copies of a project in global storage mode, through the real CLI.

A copy (`cidx clone`, or `cp -a`) shares the original's collection in the
one global store until it has its own: `cidx fix-config`, or the next
command that opens the copy, copies the collection to the copy's own name,
verifies it and records the copy as its owner in the registry. Both
projects then answer, each finding only its own edits; the original is
only ever read; a SIGKILL at each step of the copy followed by a re-run
converges.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cidx.errors import ExitCode
from cidx.userdirs import data_dir
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.helpers import registry_rows, until
from tests.test_watch import Watcher


def _config(root: Path) -> dict[str, Any]:
    data = json.loads((root / ".code-indexer" / "config.json").read_text())
    assert isinstance(data, dict)
    return data


def _paths(root: Path, query: str) -> list[str]:
    return [r["path"] for r in run_cidx(["query", query, "--json"], root).results()]


def _store() -> Path:
    return data_dir() / "qdrant-data"


def _fingerprint(root: Path) -> tuple[Any, ...]:
    """What a project's index holds and answers (its shard's files change when
    opened, so they are not compared byte for byte)."""
    status = run_cidx(["status", "--json"], root).json()
    answers = [
        [
            (r["path"], round(r["score"], 5))
            for r in run_cidx(["query", q, "--json", "--no-sync"], root).results()
        ]
        for q in ("retry failed uploads", "verify the token signature")
    ]
    return status["collection"], status["files"], status["points"], answers


def _owners() -> dict[str, tuple[str, str]]:
    """Each collection of the registry → (its project's root, its state)."""
    return {str(r[0]): (str(r[1]), str(r[4])) for r in registry_rows("collections")}


@pytest.fixture
def original(tmp_path: Path) -> Path:
    root = tmp_path / "original"
    write_files(root, DEMO_PROJECT)
    run_cidx(["init", "--storage", "global"], root)
    run_cidx(["index"], root)
    return root


def _each_finds_only_its_own(a: Path, b: Path) -> None:
    write_files(a, {"src/only_a.py": "def compress_audio_stream(s):\n    return s\n"})
    write_files(b, {"src/only_b.py": "def rotate_encryption_keys(k):\n    return k\n"})
    assert "src/only_a.py" in _paths(a, "compress audio stream")
    assert "src/only_b.py" in _paths(b, "rotate encryption keys")
    assert "src/only_b.py" not in _paths(a, "rotate encryption keys")
    assert "src/only_a.py" not in _paths(b, "compress audio stream")


def test_a_plain_copy_gets_its_own_collection_on_first_use(original: Path, tmp_path: Path) -> None:
    old = _config(original)
    before = _fingerprint(original)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)

    result = run_cidx(["query", "retry failed uploads", "--json"], copy)
    assert result.results()[0]["path"] == "src/uploads/retry.py"
    assert "now has its own" in result.stderr, result.stderr
    new = _config(copy)
    assert new["storage_mode"] == "global" and new["project_root"] == str(copy)
    assert new["collection"] != old["collection"]
    assert (_store() / new["collection"] / "edge_config.json").is_file()
    owners = _owners()
    assert owners[old["collection"]] == (str(original), "ready")
    assert owners[new["collection"]] == (str(copy), "ready")
    # The original is untouched: its config and its collection's files.
    assert _config(original) == old
    assert _fingerprint(original) == before
    assert run_cidx(["fix-config", "--json"], copy).json()["changes"] == []
    _each_finds_only_its_own(original, copy)


def test_fix_config_copies_and_verifies(original: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    dry = run_cidx(["fix-config", "--dry-run", "--json"], copy).json()
    assert dry["kind"] == "clone" and dry["dry_run"] is True
    assert _config(copy) == _config(original)

    fixed = run_cidx(["fix-config", "--json"], copy).json()
    changed = {c["field"]: c for c in fixed["changes"]}
    assert changed["collection"]["old"] == _config(original)["collection"]
    assert changed["collection"]["new"] == _config(copy)["collection"]
    check = fixed["verification"]
    assert check["points"] == check["chunks"] > 0 and check["query_found"] is True
    assert check["problems"] == []
    assert run_cidx(["fix-config", "--json"], copy).json()["changes"] == []
    _each_finds_only_its_own(original, copy)


def test_cidx_clone_of_a_global_project_with_its_watcher_running(
    original: Path,
    tmp_path: Path,
    watchers: list[Watcher],
) -> None:
    wa = Watcher(original)
    watchers.append(wa)
    copy = tmp_path / "clone"
    clone = run_cidx(["clone", str(original), str(copy), "--json"], tmp_path).json()
    assert str(wa.proc.pid) in clone["paused_owner"]
    fix = clone["fix"]
    assert fix["kind"] == "clone" and fix["verification"]["problems"] == []
    mine, theirs = _config(copy)["collection"], _config(original)["collection"]
    assert mine != theirs and _owners()[mine] == (str(copy), "ready")
    assert run_cidx(["status", "--json"], original).json()["pauses"] == []

    # The watcher on the original still indexes its edits; the clone's stay its own.
    write_files(original, {"src/only_a.py": "def compress_audio_stream(s):\n    return s\n"})
    until(lambda: "src/only_a.py" in _paths(original, "compress audio stream"), "A's edit")
    write_files(copy, {"src/only_b.py": "def rotate_encryption_keys(k):\n    return k\n"})
    assert "src/only_b.py" in _paths(copy, "rotate encryption keys")
    assert "src/only_a.py" not in _paths(copy, "compress audio stream")
    assert "src/only_b.py" not in _paths(original, "rotate encryption keys")
    assert wa.stop() == 0


@pytest.mark.parametrize(
    "step",
    ["fix-config-manifest", "fix-config-copied", "fix-config-placed", "fix-config-saved"],
)
def test_a_copy_killed_part_way_converges(step: str, original: Path, tmp_path: Path) -> None:
    old = _config(original)
    before = _fingerprint(original)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    killed = run_cidx(["fix-config"], copy, env={"CIDX_FAILPOINT": step}, check=False)
    assert killed.returncode == -9, killed.stderr

    run_cidx(["fix-config"], copy)
    new = _config(copy)
    assert new["project_root"] == str(copy) and new["collection"] != old["collection"]
    assert _owners()[new["collection"]] == (str(copy), "ready")
    assert sorted(p.name for p in _store().iterdir()) == sorted(
        [old["collection"], new["collection"]]
    )
    assert _config(original) == old and _fingerprint(original) == before
    summary = run_cidx(["index", "--json"], copy).json()
    assert summary["chunks_embedded"] == 0 and summary["files_added"] == 0
    _each_finds_only_its_own(original, copy)


def test_a_copy_whose_original_moved_follows_the_advice(original: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    moved = tmp_path / "moved"
    original.rename(moved)
    run_cidx(["status"], moved)  # the original takes its collection along
    refused = run_cidx(["query", "retry failed uploads"], copy, check=False)
    assert refused.returncode == 3 and "belongs to the project at" in refused.stderr
    assert "`cidx fix-config --force`" in refused.stderr
    fixed = run_cidx(["fix-config", "--force", "--json"], copy).json()
    assert fixed["kind"] == "clone" and fixed["verification"]["problems"] == []
    assert _owners()[_config(copy)["collection"]] == (str(copy), "ready")
    _each_finds_only_its_own(moved, copy)


def test_a_failed_clone_leaves_nothing_in_the_global_store(original: Path, tmp_path: Path) -> None:
    before = _fingerprint(original)
    copy = tmp_path / "clone"
    failed = run_cidx(
        ["clone", str(original), str(copy)],
        tmp_path,
        env={"CIDX_FAILPOINT_RAISE": "fix-config-placed:1"},
        check=False,
    )
    assert failed.returncode != 0 and "injected failure" in failed.stderr, failed.stderr
    assert not copy.exists()
    collection = _config(original)["collection"]
    assert [p.name for p in _store().iterdir()] == [collection]
    assert list(_owners()) == [collection]
    assert _fingerprint(original) == before
    # And the clone works when asked again.
    run_cidx(["clone", str(original), str(copy)], tmp_path)
    _each_finds_only_its_own(original, copy)


def test_a_copy_older_than_its_original_is_repaired_as_advised(
    original: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    # The original indexes more after the copy was made: its collection, copied
    # later, holds points the copy's state database does not list.
    write_files(original, {"src/only_a.py": "def compress_audio_stream(s):\n    return s\n"})
    run_cidx(["index"], original)
    checked = run_cidx(["fix-config", "--json"], copy, check=False)
    assert checked.returncode == ExitCode.UNHEALTHY, checked.stderr
    (problem,) = checked.json()["verification"]["problems"]
    assert "Run `cidx index` to repair the index." in problem
    run_cidx(["index"], copy)
    status = run_cidx(["status", "--json"], copy).json()
    assert status["points"] == status["chunks"] > 0
    assert "src/only_a.py" not in _paths(copy, "compress audio stream")
    assert run_cidx(["doctor", "--json"], copy).json()["healthy"]
