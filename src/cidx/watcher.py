"""File-system events for a project, as batches of changed relative paths.

Built on `watchfiles` (inotify through Rust's notify; no busy polling). A
batch is what changed since the last one, debounced: events keep being
gathered until `step_ms` pass without a new one, or `debounce_ms` after the
first, so an editor's write-temp-then-rename or a `git checkout` touching
hundreds of files arrives as one batch. What a path *is* now (present,
gone, ignored) is decided later, by looking at the disk, so event order and
kind do not matter: a delete followed by a create is simply a changed file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from cidx.project import INDEX_DIR_NAME

log = logging.getLogger(__name__)

# Events under these never matter: cidx's own writes (which would otherwise
# trigger syncs of their own), and git's object store churning on checkout.
_IGNORED_TOP = {INDEX_DIR_NAME}
_GIT_KEEP = {".git/info/exclude", ".git/info"}


class FileWatcher:
    """Watches one project root recursively."""

    def __init__(
        self,
        root: Path,
        *,
        step_ms: int = 50,
        debounce_ms: int = 1000,
        force_polling: bool | None = None,
    ) -> None:
        self.root = root
        self._root = os.fspath(root)
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.force_polling = force_polling

    def relative(self, path: str) -> str | None:
        """`path` relative to the root, or None when its events are noise."""
        rel = os.path.relpath(path, self._root)
        if rel == "." or rel.startswith(".."):
            return None
        rel = rel.replace(os.sep, "/")
        top = rel.split("/", 1)[0]
        if top in _IGNORED_TOP:
            return None
        if top == ".git" and rel not in _GIT_KEEP:
            return None
        return rel

    def batches(self, stop: threading.Event) -> Iterator[set[str]]:
        """Yield sets of changed paths until `stop` is set."""
        import watchfiles

        for changes in watchfiles.watch(
            self.root,
            # No filter here: `relative` below drops what cidx never indexes.
            watch_filter=None,
            debounce=self.debounce_ms,
            step=self.step_ms,
            stop_event=stop,
            # How often the Rust side returns to check `stop`: rare enough to
            # cost nothing when idle, short enough for a prompt shutdown.
            rust_timeout=500,
            raise_interrupt=False,
            force_polling=self.force_polling,
            ignore_permission_denied=True,
        ):
            paths = {rel for _, path in changes if (rel := self.relative(path)) is not None}
            if paths:
                yield paths
