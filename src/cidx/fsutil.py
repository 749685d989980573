"""Small filesystem helpers shared by the core and the adapters: durable atomic
writes, disk usage, and the free-space checks that turn a full disk into a
`DiskFullError` instead of a crash.

Why free space is checked before writing rather than only handled after: the
store writes through memory-mapped files, and a write to a mapped page that
the filesystem cannot back kills the process with SIGBUS — there is no error
to catch. Every other write path (SQLite, plain files) reports ENOSPC, which
`disk_full` turns into the same error.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from pathlib import Path

from cidx.errors import DiskFullError
from cidx.formatting import size

# Errors that mean "no room": the disk is full, or the user's quota is.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_usage(folder: Path) -> int:
    """Bytes allocated under `folder`: the store preallocates sparse files, so
    their apparent size says little about the disk they take."""
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding `path`.

    `f_bavail`, not `f_bfree`: it leaves out the blocks reserved for root, so
    the answer does not depend on who runs cidx.
    """
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def is_no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


def disk_full(path: Path, needed: int | None = None, free: int | None = None) -> DiskFullError:
    """The error for a full disk at `path`, with what is free and (if known) needed."""
    if free is None:
        try:
            free = free_bytes(path)
        except OSError:
            free = 0
    need = f", about {size(needed)} more is needed" if needed else ""
    return DiskFullError(
        f"The disk holding {path} is full ({size(free)} free{need}). Free some space "
        "there, then run the command again: the index is left consistent, and `cidx index` "
        "completes it."
    )


def ensure_free(path: Path, needed: int) -> None:
    """Raise `DiskFullError` unless `needed` bytes are free where `path` lives."""
    free = free_bytes(path)
    if free < needed:
        raise disk_full(path, needed - free, free)


def write_atomic(path: Path, text: str, *, mode: int | None = None, durable: bool = True) -> None:
    """Replace `path` with `text` so that readers see the old file or the new
    one, never a part (a temporary file per process, then a rename). With
    `mode`, the file has exactly that mode from its creation on, so a private
    file is never readable by others, not even for a moment.

    `durable` also survives a power cut: the file's bytes reach the disk
    before the rename, and the rename itself is committed (the folder is
    synced) before this returns. Without the first, a crash can leave an
    empty config.json behind the rename; without the second, the old one.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode or 0o666)
        with open(fd, "w", encoding="utf-8") as fh:
            if mode is not None:
                # A leftover temporary file keeps its old mode through O_CREAT.
                os.fchmod(fh.fileno(), mode)
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_no_space(exc):
            raise disk_full(path.parent) from None
        raise
    if durable:
        fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Commit the folder's entries (a rename, a new file) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> None:
    """Make `path` (and missing parents) a folder only its user can enter.

    An existing folder is narrowed to 0700 when this user owns it (indexes
    made before folders were private).
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        with contextlib.suppress(OSError):
            st = path.stat()
            if st.st_uid == os.getuid() and st.st_mode & 0o077:
                os.chmod(path, 0o700)
        return
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        private_dir(path)
        return
    # mkdir's mode is filtered by the umask; make sure of it.
    os.chmod(path, 0o700)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def swap_in(incoming: Path, target: Path, outgoing: Path) -> Path | None:
    """Put the folder `incoming` in the place of `target` at once (synced);
    where the old `target` is now, for the caller to delete (None: there was none).

    One `renameat2(RENAME_EXCHANGE)` where the kernel and filesystem have it;
    elsewhere two renames, the old folder kept under the name `outgoing`
    until the new one is in place. Both paths must be on one filesystem.
    """
    if not os.path.lexists(target):
        os.rename(incoming, target)
        old = None
    elif _exchange(incoming, target):
        old = incoming
    else:
        os.rename(target, outgoing)
        os.rename(incoming, target)
        old = outgoing
    for folder in {target.parent, incoming.parent, outgoing.parent}:
        fsync_folder(folder)
    return old


def _exchange(a: Path, b: Path) -> bool:
    """Swap `a` and `b` in one step (False: not supported here)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))
