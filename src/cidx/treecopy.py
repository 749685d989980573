"""Copying a folder tree as cheaply as its filesystem allows.

Each regular file is cloned when the filesystem can share its blocks
(copy-on-write: the `FICLONE` ioctl on XFS with reflink, btrfs and bcachefs;
`copy_file_range`, which also clones on ZFS with block cloning and within
btrfs/XFS on recent kernels), and copied byte for byte otherwise. A clone
costs a metadata update whatever the file's size, which is what makes
copying an indexed project near-instant on such a filesystem.

Modes and modification times are kept (the index trusts size and mtime to
know a file is unchanged), holes in sparse files stay holes, symbolic links
are copied as links, and FIFOs, sockets and devices are skipped. The
report says how many files were cloned and how many copied, so a caller
can tell the user whether copy-on-write was used.
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
            _copy_sparse(src, dst, length)
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


def _data_ranges(src: int, length: int) -> list[tuple[int, int]]:
    """The (start, end) ranges of `src` that hold data, skipping holes.

    The store preallocates its write-ahead log and page files as sparse
    32 MiB files that are mostly holes; copying the holes as zeros would
    make a plain copy of a small index take hundreds of megabytes. Where
    the filesystem cannot say (no SEEK_DATA), the whole file is one range.
    """
    ranges: list[tuple[int, int]] = []
    offset = 0
    try:
        while offset < length:
            try:
                start = os.lseek(src, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole from `offset` to the end
                    break
                raise
            end = min(os.lseek(src, start, os.SEEK_HOLE), length)
            if end > start:
                ranges.append((start, end))
            offset = end
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        return [(0, length)] if length else []
    return ranges


def _copy_sparse(src: int, dst: int, length: int) -> None:
    """Copy the data ranges of `src` (holes stay holes), then set the length."""
    for start, end in _data_ranges(src, length):
        _copy_range(src, dst, start, end)
    os.ftruncate(dst, length)


def _copy_range(src: int, dst: int, start: int, end: int) -> None:
    """copy_file_range (in-kernel, and a clone where the filesystem can), then
    plain reads and writes where the kernel refuses it."""
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
    disk, a permission), naming the path it failed on; the caller removes
    the partial target.

    Each folder is opened once and its entries are reached through it
    (`dir_fd`), and a file's mode and times are set through its open
    descriptor: a clone costs a few system calls per file, which is what
    the time of a copy-on-write copy of a large tree is made of.
    """
    report = CopyReport()
    os.mkdir(target, 0o700)
    report.folders += 1
    folders: list[tuple[str, os.stat_result]] = [(os.fspath(target), os.stat(source))]
    pending: list[tuple[str, str, str]] = [(os.fspath(source), os.fspath(target), "")]
    while pending:
        src_dir, dst_dir, rel_dir = pending.pop()
        src_fd = os.open(src_dir, _DIR_FLAGS)
        try:
            dst_fd = os.open(dst_dir, _DIR_FLAGS)
            try:
                _copy_folder(
                    src_fd, dst_fd, src_dir, dst_dir, rel_dir, skip, report, pending, folders
                )
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)
    # Folders last, deepest first: creating their entries changed their times.
    for folder, st in reversed(folders):
        os.chmod(folder, stat.S_IMODE(st.st_mode))
        os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns))
    return report


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _copy_folder(
    src_fd: int,
    dst_fd: int,
    src_dir: str,
    dst_dir: str,
    rel_dir: str,
    skip: Callable[[str], bool] | None,
    report: CopyReport,
    pending: list[tuple[str, str, str]],
    folders: list[tuple[str, os.stat_result]],
) -> None:
    """Copy the entries of one folder; sub-folders are made and queued."""
    with os.scandir(src_fd) as entries:
        listing = [(entry.name, entry.stat(follow_symlinks=False)) for entry in entries]
    for name, st in listing:
        rel = f"{rel_dir}/{name}" if rel_dir else name
        if skip is not None and skip(rel):
            continue
        try:
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o700, dir_fd=dst_fd)
                report.folders += 1
                folders.append((f"{dst_dir}/{name}", st))
                pending.append((f"{src_dir}/{name}", f"{dst_dir}/{name}", rel))
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
                os.utime(
                    name,
                    ns=(st.st_atime_ns, st.st_mtime_ns),
                    dir_fd=dst_fd,
                    follow_symlinks=False,
                )
                report.links += 1
            elif stat.S_ISREG(st.st_mode):
                if _copy_file_at(src_fd, dst_fd, name, st):
                    report.cloned += 1
                else:
                    report.copied += 1
                report.bytes += st.st_size
            else:
                report.skipped.append(rel)
        except OSError as exc:
            if exc.filename is None or not os.path.isabs(os.fsdecode(exc.filename)):
                exc.filename = f"{dst_dir}/{name}"
            raise


def _copy_file_at(src_fd: int, dst_fd: int, name: str, st: os.stat_result) -> bool:
    """Copy the file `name` of one open folder into another, with its mode
    and times; True if it was cloned."""
    src = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=src_fd)
    try:
        dst = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=dst_fd
        )
        try:
            cloned = _clone(src, dst)
            if not cloned:
                _copy_sparse(src, dst, st.st_size)
            os.chmod(dst, stat.S_IMODE(st.st_mode))
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            return cloned
        finally:
            os.close(dst)
    finally:
        os.close(src)


def remove_tree(path: Path) -> None:
    """Remove a (partial) copy, whatever its permissions became."""

    def retry(func: Callable[..., object], failed: str, _exc: object) -> None:
        # A folder copied read-only stops its own entries from being removed.
        os.chmod(os.path.dirname(failed), 0o700)
        func(failed)

    if path.exists() or path.is_symlink():
        # `onerror`, not `onexc`: the latter needs Python 3.12.
        shutil.rmtree(path, onerror=retry)
