"""Real filesystems for tests: small images, loop-mounted.

Copy-on-write clones, full disks and read-only media behave as the kernel
makes them behave only on the filesystem itself, so these tests make one:
an image file, `mkfs`, `mount -o loop`. That needs root and the mkfs tools
(`.ci/run` installs xfsprogs and btrfs-progs); where either is missing the
test is skipped with the reason, never faked.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

MKFS = {
    # reflink=1 is XFS's copy-on-write; the default since xfsprogs 5.1, said anyway.
    "xfs": ["mkfs.xfs", "-q", "-m", "reflink=1"],
    "btrfs": ["mkfs.btrfs", "-q"],
    "ext4": ["mkfs.ext4", "-q", "-F"],
}
# XFS refuses filesystems under 300 MiB.
MIN_SIZE_MB = {"xfs": 320, "btrfs": 128, "ext4": 16}


@contextlib.contextmanager
def mounted(kind: str, where: Path, size_mb: int | None = None) -> Iterator[Path]:
    """A fresh `kind` filesystem mounted at `where`/mnt, unmounted afterwards."""
    tool = MKFS[kind][0]
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt-get install {_package(kind)})")
    size = max(size_mb or 0, MIN_SIZE_MB[kind])
    image = where / f"{kind}.img"
    mount_point = where / "mnt"
    mount_point.mkdir(parents=True)
    with open(image, "wb") as fh:
        fh.truncate(size * 1024 * 1024)
    subprocess.run([*MKFS[kind], str(image)], check=True, capture_output=True)
    mount = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount_point)], capture_output=True, text=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot loop-mount a {kind} image here (needs root): {mount.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False, capture_output=True)
        image.unlink(missing_ok=True)


def _package(kind: str) -> str:
    return {"xfs": "xfsprogs", "btrfs": "btrfs-progs", "ext4": "e2fsprogs"}[kind]
