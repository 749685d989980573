"""`cidx clone` and the manual copy workflow, on real filesystems.

The end-to-end scenario runs on a loop-mounted XFS image with reflink=1 and
on a btrfs image (copy-on-write: no data copied) and on ext4 (a plain
copy), as real processes: index, watch, edit, force-flush, clone, the same
answers in both, a watcher on each with different edits, each finding only
its own, and nothing left running or locked at the end. Bad input — an
existing target, a folder without an index, a read-only target, a full
disk — fails with a clear error, SRC intact and no partial DST.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cidx.owner.lock import lock_is_held, read_owner
from cidx.project import ProjectPaths
from cidx.userdirs import data_dir
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.fs_images import mounted
from tests.helpers import until
from tests.test_watch import Watcher

QUERIES = ("retry failed uploads", "verify the token signature", "deployment load balancer")


def _answers(root: Path, query: str) -> list[tuple[Any, ...]]:
    results = run_cidx(["query", query, "--json"], root).results()
    return [(r["path"], r["start_line"], r["end_line"], round(r["score"], 5)) for r in results]


def _paths(root: Path, query: str) -> list[str]:
    return [r["path"] for r in run_cidx(["query", query, "--json"], root).results()]


def _tree_digest(root: Path) -> dict[str, str]:
    """Every file under `root` (the index included) → a hash of its bytes."""
    out: dict[str, str] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _processes_in(where: Path) -> list[int]:
    """Processes whose working folder is under `where` (a cidx left running)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if Path(cwd).is_relative_to(where):
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("fs", ["xfs", "btrfs", "ext4"])
def test_clone_end_to_end(fs: str, tmp_path: Path, watchers: list[Watcher]) -> None:
    with mounted(fs, tmp_path) as mnt:
        a, b = mnt / "A", mnt / "B"
        write_files(a, DEMO_PROJECT)
        run_cidx(["init"], a)
        run_cidx(["index"], a)
        assert _paths(a, "retry failed uploads")[0] == "src/uploads/retry.py"
        assert _paths(a, "verify the token signature")[0] == "src/auth/tokens.py"

        wa = Watcher(a)
        watchers.append(wa)
        write_files(a, {"src/geo/tiles.py": "def merge_map_tiles(tiles):\n    return tiles\n"})
        until(lambda: "src/geo/tiles.py" in _paths(a, "merge map tiles"), "A's edit indexed")
        flushed = run_cidx(["force-flush", "--json"], a).json()
        assert flushed["ok"] is True and flushed["pid"] == wa.proc.pid

        if fs == "ext4":
            # The other way in: no process owns SRC, the clone holds its lock.
            assert wa.stop() == 0
        clone = run_cidx(["clone", str(a), str(b), "--json"], mnt).json()
        if fs == "ext4":
            assert clone["method"] == "plain copy" and clone["copy_on_write"] is False
            assert clone["files_cloned"] == 0 and clone["paused_owner"] is None
        else:
            assert clone["method"] == "copy-on-write" and clone["copy_on_write"] is True
            assert clone["files_copied"] == 0 and clone["files_cloned"] > 0
            assert str(wa.proc.pid) in clone["paused_owner"]
            # The pause ended with the clone: A's owner writes again.
            assert run_cidx(["status", "--json"], a).json()["pauses"] == []
        fix = clone["fix"]
        assert fix["kind"] == "clone"
        assert {c["field"] for c in fix["changes"]} >= {"project_root", "identity", "collection"}
        assert fix["verification"]["chunks"] > 0 and fix["verification"]["problems"] == []
        for name in ("owner.lock", "owner.json", "owner.sock", "serve.json"):
            assert not (b / ".code-indexer" / name).exists(), name

        # The same answers in both.
        for query in QUERIES:
            assert _answers(a, query) == _answers(b, query), query
        sa = run_cidx(["status", "--json"], a).json()
        sb = run_cidx(["status", "--json"], b).json()
        assert sa["storage_mode"] == sb["storage_mode"] == "local"
        assert Path(sa["storage_path"]).is_relative_to(a / ".code-indexer" / "qdrant-data")
        assert Path(sb["storage_path"]).is_relative_to(b / ".code-indexer" / "qdrant-data")
        assert sa["collection"] != sb["collection"]
        assert sb["chunks"] == sa["chunks"] and sb["pending"]["added"] == 0

        # Watchers on both at once; each finds only its own edit.
        if fs == "ext4":
            wa = Watcher(a)
            watchers.append(wa)
        wb = Watcher(b)
        watchers.append(wb)
        write_files(a, {"src/only_a.py": "def compress_audio_stream(s):\n    return s\n"})
        write_files(b, {"src/only_b.py": "def rotate_encryption_keys(k):\n    return k\n"})
        until(lambda: "src/only_a.py" in _paths(a, "compress audio stream"), "A's edit")
        until(lambda: "src/only_b.py" in _paths(b, "rotate encryption keys"), "B's edit")
        assert "src/only_b.py" not in _paths(a, "rotate encryption keys")
        assert "src/only_a.py" not in _paths(b, "compress audio stream")

        assert wa.stop() == 0 and wb.stop() == 0
        for root in (a, b):
            paths = ProjectPaths(root)
            assert not lock_is_held(paths.lock_file)
            assert read_owner(paths) is None
            assert not paths.socket_path.exists()
        assert _processes_in(mnt) == []
        # Local storage: nothing of either project outside its own folder.
        assert not (data_dir() / "qdrant-data").exists()
        # Nothing keeps the filesystem busy.
        assert subprocess.run(["umount", str(mnt)], capture_output=True).returncode == 0


def test_manual_workflow_with_a_btrfs_snapshot(tmp_path: Path, watchers: list[Watcher]) -> None:
    """pause → snapshot → resume → fix-config, as the README shows it."""
    with mounted("btrfs", tmp_path) as mnt:
        a, b = mnt / "A", mnt / "B"
        subprocess.run(["btrfs", "subvolume", "create", str(a)], check=True, capture_output=True)
        write_files(a, DEMO_PROJECT)
        run_cidx(["index"], a)
        wa = Watcher(a)
        watchers.append(wa)

        run_cidx(["pause", "--timeout", "120"], a)
        subprocess.run(
            ["btrfs", "subvolume", "snapshot", str(a), str(b)], check=True, capture_output=True
        )
        run_cidx(["resume"], a)

        # The snapshot holds A's runtime files; they are stale in B, and harmless.
        before = run_cidx(["fix-config", "--dry-run", "--json"], b).json()
        assert before["kind"] == "clone" and before["dry_run"] is True
        assert json_config(b)["project_root"] == str(a)  # dry run: nothing written
        fixed = run_cidx(["fix-config", "--json"], b).json()
        assert fixed["kind"] == "clone" and fixed["backup"]
        assert fixed["verification"]["problems"] == []
        assert fixed["verification"]["query_found"] is True
        again = run_cidx(["fix-config", "--json"], b).json()
        assert again["kind"] == "none" and again["changes"] == []

        for query in QUERIES:
            assert _answers(a, query) == _answers(b, query), query
        write_files(b, {"src/only_b.py": "def rotate_encryption_keys(k):\n    return k\n"})
        assert "src/only_b.py" in _paths(b, "rotate encryption keys")
        assert "src/only_b.py" not in _paths(a, "rotate encryption keys")
        assert wa.stop() == 0
        assert _processes_in(mnt) == []


def json_config(root: Path) -> dict[str, Any]:
    import json

    data = json.loads((root / ".code-indexer" / "config.json").read_text())
    assert isinstance(data, dict)
    return data


# -- bad input -------------------------------------------------------------------


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    write_files(root, DEMO_PROJECT)
    run_cidx(["index"], root)
    return root


def _refused(src: Path, target: Path, code: int, words: str, cwd: Path | None = None) -> str:
    before = _tree_digest(src)
    result = run_cidx(["clone", str(src), str(target)], cwd or src.parent, check=False)
    assert result.returncode == code, result.stderr
    assert words in result.stderr, result.stderr
    assert _tree_digest(src) == before  # SRC intact
    assert not lock_is_held(ProjectPaths(src).lock_file)
    return result.stderr


def test_clone_into_an_existing_folder(src: Path, tmp_path: Path) -> None:
    target = tmp_path / "there"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    _refused(src, target, 2, "exists already")
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    # The advice: a path that does not exist yet.
    run_cidx(["clone", str(src), str(tmp_path / "new")], tmp_path)
    assert (tmp_path / "new" / ".code-indexer" / "config.json").is_file()


def test_clone_of_a_folder_without_an_index(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write_files(plain, {"a.py": "x = 1\n"})
    result = run_cidx(["clone", str(plain), str(tmp_path / "copy")], tmp_path, check=False)
    assert result.returncode == 10
    assert "without a cidx index" in result.stderr
    assert not (tmp_path / "copy").exists()
    assert not (plain / ".code-indexer").exists()


def test_clone_to_a_read_only_target(src: Path, tmp_path: Path) -> None:
    with mounted("ext4", tmp_path / "ro") as mnt:
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        _refused(src, mnt / "copy", 9, "not writable")
        assert list(mnt.iterdir()) == [] or [p.name for p in mnt.iterdir()] == ["lost+found"]
        subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)


def test_clone_to_a_full_disk(src: Path, tmp_path: Path) -> None:
    # More data than the small disk holds: a file the index skips, copied all the same.
    (src / "assets").mkdir()
    (src / "assets" / "big.bin").write_bytes(os.urandom(24 * 1024 * 1024))
    with mounted("ext4", tmp_path / "small", size_mb=16) as mnt:
        stderr = _refused(src, mnt / "copy", 11, "is full")
        assert "the partial copy was removed" in stderr
        assert not (mnt / "copy").exists()
