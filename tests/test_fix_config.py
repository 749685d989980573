"""Moved and copied projects: detection on open, and `cidx fix-config`.

A move (nothing left at the recorded root) is fixed by the next command
that opens the index, with one line saying so. A copy (the original still
there with the same identity) is named as one, and `cidx fix-config` makes
it independent: backup, new identity and collection names, verified. The
fix is idempotent and a SIGKILL at each of its steps is finished by the
next command.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from cidx.state import StateDB
from tests.conftest import DEMO_PROJECT, run_cidx, write_files


def _config(root: Path) -> dict[str, Any]:
    data = json.loads((root / ".code-indexer" / "config.json").read_text())
    assert isinstance(data, dict)
    return data


def _shards(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".code-indexer" / "qdrant-data").iterdir())


def _top(root: Path, query: str) -> str:
    return str(run_cidx(["query", query, "--json"], root).results()[0]["path"])


@pytest.fixture
def original(tmp_path: Path) -> Path:
    root = tmp_path / "original"
    write_files(root, DEMO_PROJECT)
    run_cidx(["index"], root)
    return root


def test_a_moved_project_is_fixed_on_open(original: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    before = _config(original)
    os.rename(original, moved)
    result = run_cidx(["query", "retry failed uploads", "--json"], moved)
    assert result.results()[0]["path"] == "src/uploads/retry.py"
    notes = [line for line in result.stderr.splitlines() if "moved here" in line]
    assert len(notes) == 1, result.stderr
    after = _config(moved)
    assert after["project_root"] == str(moved)
    # A move keeps the project's identity and collections.
    assert {k: v for k, v in after.items() if k != "project_root"} == {
        k: v for k, v in before.items() if k != "project_root"
    }
    again = run_cidx(["status"], moved)
    assert "moved here" not in again.stderr
    assert run_cidx(["fix-config", "--json"], moved).json()["kind"] == "none"


def test_a_copy_is_told_about_then_fixed(original: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    old = _config(copy)
    told = run_cidx(["query", "retry failed uploads", "--json"], copy)
    assert told.results()[0]["path"] == "src/uploads/retry.py"  # it works as it is
    assert "is a copy of" in told.stderr and "Run `cidx fix-config`" in told.stderr
    assert _config(copy) == old  # nothing changed by opening it

    dry = run_cidx(["fix-config", "--dry-run"], copy)
    assert "Would change identity" in dry.stdout
    assert _config(copy) == old

    # The advice, as given.
    fixed = run_cidx(["fix-config", "--json"], copy).json()
    assert fixed["kind"] == "clone"
    changed = {c["field"]: c for c in fixed["changes"]}
    assert changed["project_root"]["new"] == str(copy)
    assert changed["collection"]["old"] == old["collection"]
    new = _config(copy)
    assert new["collection"] != old["collection"] and new["collection"] in _shards(copy)
    assert old["collection"] not in _shards(copy)
    assert json.loads(Path(fixed["backup"]).read_text()) == old
    check = fixed["verification"]
    assert check["points"] == check["chunks"] > 0 and check["query_found"] is True
    with contextlib.closing(StateDB(copy / ".code-indexer" / "state.db")) as db:
        assert db.manifest(new["collection"]).counts()[1] == check["chunks"]
        assert db.manifest(old["collection"]).counts() == (0, 0)

    # Idempotent, and the original is untouched.
    assert run_cidx(["fix-config", "--json"], copy).json()["changes"] == []
    assert _config(original)["collection"] == old["collection"]
    quiet = run_cidx(["query", "verify the token signature", "--json"], copy)
    assert "copy of" not in quiet.stderr
    assert _top(copy, "verify the token signature") == _top(original, "verify the token signature")


def test_force_makes_a_copy_independent_when_its_original_is_gone(
    original: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    os.rename(original, tmp_path / "elsewhere")  # nothing says `copy` is a copy now
    old = _config(copy)
    report = run_cidx(["fix-config", "--force", "--json"], copy).json()
    assert report["kind"] == "clone"
    new = _config(copy)
    assert new["identity"]["id"] != old["identity"]["id"]
    assert new["collection"] != old["collection"] and _shards(copy) == [new["collection"]]
    assert _top(copy, "retry failed uploads") == "src/uploads/retry.py"
    # In place, --force has nothing to change: the identity derived here is the one it has.
    assert run_cidx(["fix-config", "--force", "--json"], copy).json()["changes"] == []


@pytest.mark.parametrize(
    "step",
    ["fix-config-journaled", "fix-config-manifest", "fix-config-renamed", "fix-config-saved"],
)
def test_a_fix_killed_part_way_is_finished_by_the_next_command(
    step: str, original: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    killed = run_cidx(["fix-config"], copy, env={"CIDX_FAILPOINT": step}, check=False)
    assert killed.returncode == -9
    # Any command converges: here a query, which finishes the fix first.
    result = run_cidx(["query", "retry failed uploads", "--json"], copy)
    assert result.results()[0]["path"] == "src/uploads/retry.py"
    config = _config(copy)
    assert config["project_root"] == str(copy)
    assert config["collection"] != _config(original)["collection"]
    assert _shards(copy) == [config["collection"]]
    assert run_cidx(["fix-config", "--json"], copy).json()["changes"] == []


def test_fix_config_without_an_index(tmp_path: Path) -> None:
    result = run_cidx(["fix-config"], tmp_path, check=False)
    assert result.returncode == 10
    assert "no cidx index" in result.stderr
