"""Copying a folder tree as cheaply as its filesystem allows.

Each regular file is cloned when the filesystem can share its blocks
(copy-on-write: the `FICLONE` ioctl on XFS with reflink, btrfs and bcachefs;
`copy_file_range`, which also clones on ZFS with block cloning and within
btrfs/XFS on recent kernels), and copied byte for byte otherwise. A clone
costs a metadata update whatever the file's size, which is what makes
copying an indexed project near-instant on such a filesystem.

Modes and modification times are kept (the index trusts size and mtime to
know a file is unchanged), symbolic links are copied as links, and FIFOs,
sockets and devices are skipped. The report says how many files were
cloned and how many copied, so a caller can tell the user whether
copy-on-write was used.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CopyReport", "copy_file", "copy_tree"]

# <linux/fs.h>: _IOW(0x94, 9, int)
_FICLONE = 0x40049409
# Errors that mean "this filesystem (or this pair of files) cannot clone":
# the copy falls back to the next method.
_CANNOT_CLONE = {
    errno.EOPNOTSUPP,
    errno.ENOTTY,
    errno.EXDEV,
    errno.EINVAL,
    errno.ENOSYS,
    errno.EBADF,
    errno.EPERM,
}


@dataclass
class CopyReport:
    """What a copy did: files cloned (copy-on-write) or copied, and bytes."""

    cloned: int = 0
    copied: int = 0
    links: int = 0
    folders: int = 0
    skipped: list[str] = field(default_factory=list)  # special files, by relative path
    bytes: int = 0

    @property
    def copy_on_write(self) -> bool:
        """Whether every file with content was cloned rather than copied."""
        return self.cloned > 0 and self.copied == 0

    @property
    def method(self) -> str:
        if self.copied == 0:
            return "copy-on-write" if self.cloned else "nothing to copy"
        return "plain copy" if self.cloned == 0 else "mixed (some files copied)"


def copy_file(source: Path, target: Path, size: int | None = None) -> bool:
    """Copy one regular file's content to a new file; True if it was cloned."""
    src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            if _clone(src, dst):
                return True
            length = os.fstat(src).st_size if size is None else size
            _copy_range(src, dst, length)
            return False
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _clone(src: int, dst: int) -> bool:
    try:
        fcntl.ioctl(dst, _FICLONE, src)
    except OSError as exc:
        if exc.errno in _CANNOT_CLONE:
            return False
        raise
    return True


def _copy_range(src: int, dst: int, length: int) -> None:
    """Copy the data of `src`, leaving its holes as holes: the store
    preallocates large sparse files, and a copy that filled them with zeros
    would take hundreds of megabytes for a small index. Each data extent goes
    by copy_file_range (in-kernel, and a clone where the filesystem can), or
    by plain reads and writes where the kernel refuses it."""
    offset = 0
    while offset < length:
        try:
            start = os.lseek(src, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole is left
                break
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
            start = offset  # no hole detection here: copy it all
        if start >= length:
            break
        try:
            end = min(os.lseek(src, start, os.SEEK_HOLE), length)
        except OSError:
            end = length
        _copy_extent(src, dst, start, end)
        offset = end
    os.ftruncate(dst, length)


def _copy_extent(src: int, dst: int, start: int, end: int) -> None:
    done = start
    try:
        while done < end:
            n = os.copy_file_range(src, dst, end - done, done, done)
            if n == 0:
                break
            done += n
        if done >= end:
            return
    except OSError as exc:
        if exc.errno not in _CANNOT_CLONE:
            raise
    while done < end:
        chunk = os.pread(src, min(1 << 20, end - done), done)
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            written = os.pwrite(dst, view, done)
            view = view[written:]
            done += written


def copy_tree(
    source: Path,
    target: Path,
    *,
    skip: Callable[[str], bool] | None = None,
) -> CopyReport:
    """Copy the tree at `source` to `target`, which must not exist.

    `skip(rel)` (a POSIX path relative to `source`) leaves an entry and
    everything below it out. Raises OSError as the filesystem does (a full
    disk, a permission); the caller removes the partial target.
    """
    report = CopyReport()
    os.mkdir(target, 0o700)
    report.folders += 1
    pending: list[tuple[Path, Path, str]] = [(source, target, "")]
    folders: list[tuple[Path, os.stat_result]] = [(target, os.stat(source))]
    while pending:
        src_dir, dst_dir, rel_dir = pending.pop()
        with os.scandir(src_dir) as entries:
            listing = list(entries)
        for entry in listing:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if skip is not None and skip(rel):
                continue
            st = entry.stat(follow_symlinks=False)
            dst = dst_dir / entry.name
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(dst, 0o700)
                report.folders += 1
                folders.append((dst, st))
                pending.append((Path(entry.path), dst, rel))
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry.path), dst)
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
                report.links += 1
            elif stat.S_ISREG(st.st_mode):
                if copy_file(Path(entry.path), dst, st.st_size):
                    report.cloned += 1
                else:
                    report.copied += 1
                report.bytes += st.st_size
                os.chmod(dst, stat.S_IMODE(st.st_mode))
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            else:
                report.skipped.append(rel)
    # Folders last, deepest first: creating their entries changed their times.
    for folder, st in reversed(folders):
        os.chmod(folder, stat.S_IMODE(st.st_mode))
        os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns))
    return report


def remove_tree(path: Path) -> None:
    """Remove a (partial) copy, whatever its permissions became."""

    def retry(func: Callable[..., object], failed: str, _exc: object) -> None:
        # A folder copied read-only stops its own entries from being removed.
        os.chmod(os.path.dirname(failed), 0o700)
        func(failed)

    if path.exists() or path.is_symlink():
        # `onerror`, not `onexc`: the latter needs Python 3.12.
        shutil.rmtree(path, onerror=retry)
