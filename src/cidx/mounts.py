"""Which filesystem a directory lives on, so a walk never enters a pseudo filesystem.

`/proc`, `/sys`, `/dev` and their kin hold kernel and system state, not
files: walking them is endless (`/proc` alone lists every process's
memory maps), and reading them can block (`/proc/kmsg`) or have effects.
A walk started at `/` or at a folder with such a mount below it must step
around them. Checking costs nothing per ordinary directory beyond comparing
its `st_dev` with its parent's: only a directory on another device than its
parent — a mount point — is looked up here, once per device.

The type of a device comes from `/proc/self/mountinfo` (Linux), which names
it as `mount` does; a device missing there (mounted after it was read, or no
`/proc` at all) is asked of `statfs(2)` through ctypes, whose magic numbers
tell every pseudo filesystem here apart except `devtmpfs` (it reports
tmpfs's). Elsewhere than Linux nothing is known and nothing is skipped.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from functools import cache
from typing import Final

__all__ = ["PSEUDO_FILESYSTEMS", "MountTypes"]

# Filesystem types whose contents are never indexed: kernel and system
# state exposed as files, or mount points that mount something when entered
# (autofs). Ordinary, network and FUSE filesystems are walked like any other.
PSEUDO_FILESYSTEMS: Final = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "sysfs",
        "tracefs",
    }
)

# statfs(2) f_type values of the same (linux/magic.h).
_MAGIC: Final = {
    0x0187: "autofs",
    0x42494E4D: "binfmt_misc",
    0xCAFE4A11: "bpf",
    0x0027E0EB: "cgroup",
    0x63677270: "cgroup2",
    0x62656570: "configfs",
    0x64626720: "debugfs",
    0x1CD1: "devpts",
    0xDE5E81E4: "efivarfs",
    0x65735543: "fusectl",
    0x958458F6: "hugetlbfs",
    0x19800202: "mqueue",
    0x6E736673: "nsfs",
    0x9FA0: "proc",
    0x6165676C: "pstore",
    0x67596969: "rpc_pipefs",
    0x73636673: "securityfs",
    0xF97CFF8C: "selinuxfs",
    0x62656572: "sysfs",
    0x74726163: "tracefs",
}

_MOUNTINFO: Final = "/proc/self/mountinfo"


def _read_mountinfo() -> dict[int, str]:
    """Device number → filesystem type of every mount this process sees."""
    types: dict[int, str] = {}
    try:
        with open(_MOUNTINFO, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return types
    for line in lines:
        # "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw"
        fields = line.split(" ")
        try:
            major, minor = fields[2].split(":")
            fstype = fields[fields.index("-", 6) + 1]
            types[os.makedev(int(major), int(minor))] = fstype
        except (IndexError, ValueError):
            continue
    return types


@cache
def _statfs() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes.util  # here: most walks never meet a device missing from mountinfo

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func: Callable[..., int] = libc.statfs
        return func
    return None


def _statfs_type(path: str) -> str | None:
    """The pseudo filesystem `path` is on, by statfs(2) magic; None if not one."""
    statfs = _statfs()
    if statfs is None:
        return None
    import ctypes

    # struct statfs starts with f_type, a C long on every Linux ABI that
    # matters here; 256 bytes is more than the whole struct anywhere.
    buf = ctypes.create_string_buffer(256)
    if statfs(os.fsencode(path), buf) != 0:
        return None
    magic = ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF
    return _MAGIC.get(magic)


class MountTypes:
    """Filesystem types by device number, looked up once per device.

    One instance per walk: mounts change, but not often enough to look them
    up again for every directory.
    """

    def __init__(self) -> None:
        self._known: dict[int, str | None] = {}
        self._table: dict[int, str] | None = None

    def pseudo(self, dev: int, path: str) -> str | None:
        """The type of the pseudo filesystem device `dev` (at `path`) holds,
        or None when it is an ordinary one (or cannot be told)."""
        if dev in self._known:
            return self._known[dev]
        fstype = self._lookup(dev)
        if fstype is None:
            fstype = _statfs_type(path)
        found = fstype if fstype in PSEUDO_FILESYSTEMS else None
        self._known[dev] = found
        return found

    def _lookup(self, dev: int) -> str | None:
        if self._table is None or dev not in self._table:
            # First use, or a device mounted since the table was read.
            self._table = _read_mountinfo()
        return self._table.get(dev)
