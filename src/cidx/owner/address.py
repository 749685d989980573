"""The address a Unix socket of cidx is bound and reached at, however deep its folder.

Apart from the server so that a client (the short way of `cidx query`)
connects without importing the server's logging and threads.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

# Longest path bind()/connect() accept; longer ones go through /proc.
_SUN_PATH_MAX = 100


@contextlib.contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """A path for bind/connect that fits in sun_path, however deep the project."""
    text = str(path)
    if len(text.encode()) < _SUN_PATH_MAX:
        yield text
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)
