"""`.code-indexer/serve.json`: how local clients find a running `cidx serve` and its token.

Written once the endpoint accepts connections and removed when it stops:
`{"url": …, "pid": …, "token": …}`, so scripts can reach a server started on
port 0 without being told the token. The file is the owner's only (0600,
written atomically, never readable half-written): the token guards the same
indexed text the files beside it hold.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cidx.fsutil import write_atomic

INFO_FILE_NAME = "serve.json"
INFO_FILE_MODE = 0o600


@dataclass(frozen=True)
class ServeInfo:
    url: str
    pid: int
    token: str


def write_info(path: Path, info: ServeInfo) -> None:
    write_atomic(path, json.dumps(asdict(info)) + "\n", mode=INFO_FILE_MODE)


def remove_info(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
