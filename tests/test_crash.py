"""SIGKILL `cidx index` between any two of its writes: the next run converges.

Failpoints (cidx.failpoints) stop the process deterministically right after
embedding, after an upsert, after a delete, after a manifest commit, after
deleting a removed file's points, and at each step of a rebuild, also one
kill after another. Every time, the next `cidx index` must end with exactly
the point ids and payloads of a clean rebuild.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cidx, write_files
from tests.helpers import clean_rebuild, full_snapshot, generated_module as _module

# Every test here kills real indexing processes and rebuilds for comparison.
pytestmark = pytest.mark.slow


def _initial(root: Path) -> None:
    write_files(root, {f"pkg/m{i:03d}.py": _module(i) for i in range(70)})


def _change(root: Path) -> None:
    """Edits, additions, deletions and renames in one go."""
    for i in range(0, 30, 3):
        p = root / f"pkg/m{i:03d}.py"
        p.write_text(p.read_text().replace("return total", "return total + 1", 2))
    for i in range(30, 36):
        (root / f"pkg/m{i:03d}.py").unlink()
    # Enough new chunks for two write batches, so ":2" failpoints are reached.
    write_files(root, {f"new/n{i:03d}.py": _module(1000 + i) for i in range(45)})
    (root / "moved").mkdir()
    for i in range(40, 44):
        (root / f"pkg/m{i:03d}.py").rename(root / f"moved/m{i:03d}.py")


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("crash")
    indexed = base / "indexed"
    _initial(indexed)
    run_cidx(["index"], indexed)
    changed_files = base / "changed-files"
    shutil.copytree(indexed, changed_files, symlinks=True)
    _change(changed_files)
    expected = clean_rebuild(changed_files, base)
    return {"indexed": indexed, "initial": full_snapshot(indexed), "expected": expected}


@pytest.mark.parametrize(
    "failpoint",
    [
        "after_embed",
        "after_upsert",
        "after_upsert:2",
        "after_delete",
        "after_manifest",
        "after_manifest:2",
        "after_delete_files",
    ],
)
def test_killed_incremental_sync_converges(
    states: dict[str, Any], tmp_path: Path, failpoint: str
) -> None:
    root = tmp_path / "p"
    shutil.copytree(states["indexed"], root, symlinks=True)
    _change(root)
    killed = run_cidx(["index"], root, env={"CIDX_FAILPOINT": failpoint}, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_cidx(["index"], root)
    assert full_snapshot(root) == states["expected"]


@pytest.mark.parametrize("failpoint", ["after_embed", "after_upsert", "after_manifest"])
def test_killed_first_index_converges(
    states: dict[str, Any], tmp_path: Path, failpoint: str
) -> None:
    root = tmp_path / "p"
    _initial(root)
    killed = run_cidx(["index"], root, env={"CIDX_FAILPOINT": failpoint}, check=False)
    assert killed.returncode == -signal.SIGKILL
    run_cidx(["index"], root)
    assert full_snapshot(root) == states["initial"]


def test_rebuilds_killed_one_after_another_converge(states: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(states["indexed"], root, symlinks=True)
    _change(root)
    # Each `--clear` starts from what the kill before it left: between the
    # manifest and the store, with an empty store, and mid-write.
    for failpoint in ("after_clear_manifest", "after_clear", "after_upsert:2", "after_manifest:2"):
        killed = run_cidx(
            ["index", "--clear"], root, env={"CIDX_FAILPOINT": failpoint}, check=False
        )
        assert killed.returncode == -signal.SIGKILL, (failpoint, killed.stderr)
    run_cidx(["index"], root)
    assert full_snapshot(root) == states["expected"]
