"""`cidx.treecopy.copy_tree` on real filesystems: clones where blocks can be
shared (XFS reflink=1, btrfs), a plain copy elsewhere (ext4), and the same
tree either way: content, modes, times, links, holes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cidx.treecopy import copy_tree
from tests.fs_images import mounted


def _make_tree(root: Path) -> None:
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "a.py").write_text("print('a')\n")
    (root / "src" / "deep" / "b.sh").write_text("#!/bin/sh\necho b\n")
    os.chmod(root / "src" / "deep" / "b.sh", 0o750)
    os.utime(root / "src" / "a.py", ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    os.symlink("a.py", root / "src" / "link.py")
    os.mkfifo(root / "src" / "pipe")
    (root / "skipme").mkdir()
    (root / "skipme" / "x").write_text("x")
    # A sparse file, as the store preallocates: 32 MiB with 4 KiB of data.
    with open(root / "sparse.bin", "wb") as fh:
        fh.truncate(32 * 1024 * 1024)
        fh.seek(8 * 1024 * 1024)
        fh.write(b"z" * 4096)


@pytest.mark.parametrize("fs,cow", [("xfs", True), ("btrfs", True), ("ext4", False)])
def test_copy_tree(fs: str, cow: bool, tmp_path: Path) -> None:
    with mounted(fs, tmp_path) as mnt:
        src, dst = mnt / "src-tree", mnt / "dst-tree"
        src.mkdir()
        _make_tree(src)
        report = copy_tree(src, dst, skip=lambda rel: rel == "skipme")
        assert report.copy_on_write is cow
        assert report.method == ("copy-on-write" if cow else "plain copy")
        assert report.cloned + report.copied == 3
        assert report.links == 1 and report.skipped == ["src/pipe"]
        assert not (dst / "skipme").exists()
        assert (dst / "src" / "a.py").read_text() == "print('a')\n"
        assert os.readlink(dst / "src" / "link.py") == "a.py"
        b = (dst / "src" / "deep" / "b.sh").stat()
        assert stat.S_IMODE(b.st_mode) == 0o750
        assert (dst / "src" / "a.py").stat().st_mtime_ns == 1_600_000_000_123_456_789
        for folder in ("", "src", "src/deep"):
            assert (dst / folder).stat().st_mtime_ns == (src / folder).stat().st_mtime_ns
        sparse = dst / "sparse.bin"
        assert sparse.stat().st_size == 32 * 1024 * 1024
        assert sparse.read_bytes() == (src / "sparse.bin").read_bytes()
        # Holes stay holes: far less than 32 MiB allocated.
        assert sparse.stat().st_blocks * 512 < 1024 * 1024


def test_copy_tree_refuses_an_existing_target(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(FileExistsError):
        copy_tree(tmp_path / "a", tmp_path / "b")
