"""Small filesystem helpers shared by the core and the adapters."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def disk_usage(folder: Path) -> int:
    """Bytes allocated under `folder`: the store preallocates sparse files, so
    their apparent size says little about the disk they take."""
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def write_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace `path` with `text` so that readers see the old file or the new
    one, never a part (a temporary file per process, then a rename). With
    `mode`, the file has exactly that mode from its creation on, so a private
    file is never readable by others, not even for a moment."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if mode is None:
        tmp.write_text(text, encoding="utf-8")
    else:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with open(fd, "w", encoding="utf-8") as f:
            # A leftover temporary file keeps its old mode through O_CREAT.
            os.fchmod(f.fileno(), mode)
            f.write(text)
    os.replace(tmp, path)


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
