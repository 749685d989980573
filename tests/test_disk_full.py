"""A full disk, on a real small filesystem: a clear error (exit 11) naming the
folder, the free and the needed bytes — never a SIGBUS or a traceback — and
after space is freed, `cidx index` ends equal to a clean rebuild.

The filesystem is a 64 MiB ext4 image mounted through a loop device (1 KiB
blocks, as mkfs picks for so small a disk: the harder case for memory-mapped
writes). Mounting needs root; the tests skip, saying so, where it is
impossible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cidx import fsutil
from cidx.errors import DiskFullError
from tests.conftest import DEMO_PROJECT, CliResult, run_cidx, write_files
from tests.helpers import clean_rebuild, full_snapshot, generated_module

IMAGE_SIZE = "64M"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a loop filesystem needs root")
    image, mount = tmp_path / "disk.img", tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["truncate", "-s", IMAGE_SIZE, str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-m", "0", str(image)], check=True)
    done = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a loop filesystem here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Take all but about `leave` bytes of the disk's free space; the filler file.

    The filesystem needs a little room for the filler's own extent tree, so
    it is allocated short of the mark and topped up by writes (to the last
    byte when `leave` is 0).
    """
    filler = disk / "filler"
    margin = 128 * 1024
    with open(filler, "wb") as fh:
        size = fsutil.free_bytes(disk) - leave - margin
        if size > 0:
            os.posix_fallocate(fh.fileno(), 0, size)
            fh.seek(size)
        block = b"\0" * 4096
        try:
            while fsutil.free_bytes(disk) > leave:
                fh.write(block)
                fh.flush()
        except OSError as exc:
            assert fsutil.is_no_space(exc), exc
    os.sync()
    return filler


def _assert_disk_full(out: CliResult, disk: Path) -> None:
    assert out.returncode == 11, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and "Logging error" not in out.stderr
    message = " ".join(out.stderr.split())
    assert "is full" in message and str(disk) in message and "free" in message
    assert "`cidx index`" in message


def _project(disk: Path, modules: int = 0, functions: int = 5) -> Path:
    root = disk / "project"
    files: dict[str, str | bytes] = dict(DEMO_PROJECT)
    files.update({f"pkg/m{i:03d}.py": generated_module(i, functions) for i in range(modules)})
    write_files(root, files)
    return root


@pytest.mark.parametrize(
    "leave",
    [
        pytest.param(64 * 1024, id="64KiB"),  # the state DB is the first to need room
        pytest.param(2 * 1024 * 1024, id="2MiB"),  # the store's shard cannot be created
        pytest.param(4 * 1024 * 1024, id="4MiB", marks=pytest.mark.slow),
    ],
)
def test_a_first_index_on_a_full_disk_says_so_and_recovers(
    small_disk: Path, tmp_path: Path, leave: int
) -> None:
    root = _project(small_disk, modules=4)
    filler = _fill(small_disk, leave)
    out = run_cidx(["index"], root, check=False)
    _assert_disk_full(out, small_disk)
    # Trying again without freeing space fails the same way.
    _assert_disk_full(run_cidx(["index"], root, check=False), small_disk)

    filler.unlink()
    run_cidx(["index"], root)
    assert full_snapshot(root) == clean_rebuild(root, tmp_path / "scratch")
    doctor = run_cidx(["doctor", "--json"], root).json()
    assert doctor["healthy"], doctor


@pytest.mark.slow
def test_a_disk_that_fills_up_during_an_index(small_disk: Path, tmp_path: Path) -> None:
    """The first batches are written, a later one is refused: what was embedded
    stays cached, so the index after freeing space embeds only the rest."""
    root = _project(small_disk, modules=80, functions=8)
    filler = _fill(small_disk, 7 * 1024 * 1024)
    out = run_cidx(["index"], root, check=False)
    _assert_disk_full(out, small_disk)
    assert "more is needed" in out.stderr

    filler.unlink()
    summary = run_cidx(["index", "--json"], root).json()
    assert summary["chunks_reused"] > 0, summary
    assert full_snapshot(root) == clean_rebuild(root, tmp_path / "scratch")


def test_every_command_on_a_full_disk_says_so(small_disk: Path, tmp_path: Path) -> None:
    indexed = _project(small_disk)
    run_cidx(["index"], indexed)
    fresh = small_disk / "fresh"
    write_files(fresh, {"a.py": "def a():\n    return 1\n"})
    filler = _fill(small_disk, 0)
    for root, args in [
        (fresh, ["init"]),
        (fresh, ["index"]),
        (indexed, ["index"]),
        (indexed, ["query", "retry failed uploads"]),
        (indexed, ["status"]),
        (indexed, ["sync", "--once"]),
    ]:
        _assert_disk_full(run_cidx(args, root, check=False), small_disk)
    filler.unlink()
    run_cidx(["query", "retry failed uploads"], indexed)
    assert full_snapshot(indexed) == clean_rebuild(indexed, tmp_path / "scratch")


def test_write_atomic_on_a_full_disk_leaves_the_old_file(small_disk: Path) -> None:
    target = small_disk / "config.json"
    target.write_text("old")
    _fill(small_disk, 0)
    with pytest.raises(DiskFullError, match="is full"):
        fsutil.write_atomic(target, "x" * (256 * 1024))
    assert target.read_text() == "old"
    assert sorted(p.name for p in small_disk.iterdir()) == ["config.json", "filler", "lost+found"]


def test_the_store_refuses_before_the_engine_could_crash(small_disk: Path) -> None:
    from cidx.store.edge import EdgeStore

    _fill(small_disk, 1024 * 1024)
    store = EdgeStore(small_disk / "qdrant-data")
    with pytest.raises(DiskFullError) as caught:
        store.create_collection("c", 8)
    assert "more is needed" in caught.value.message
    assert str(small_disk / "qdrant-data") in caught.value.message
    shutil.rmtree(small_disk / "qdrant-data", ignore_errors=True)
