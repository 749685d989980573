"""Where a project's root is, and where everything cidx keeps lives inside it.

The root is found by walking up from the working directory: the nearest
folder holding `.code-indexer/`, else the git top level, else the working
directory itself. Everything cidx writes for a project lives under
`<root>/.code-indexer/`, so the index travels with the project.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cidx.errors import UsageError

INDEX_DIR_NAME = ".code-indexer"


@dataclass(frozen=True)
class ProjectPaths:
    """The files and folders of one project's index."""

    root: Path

    @property
    def index_dir(self) -> Path:
        return self.root / INDEX_DIR_NAME

    @property
    def config_file(self) -> Path:
        return self.index_dir / "config.json"

    @property
    def state_db(self) -> Path:
        return self.index_dir / "state.db"

    @property
    def qdrant_dir(self) -> Path:
        return self.index_dir / "qdrant-data"

    def collection_dir(self, collection: str) -> Path:
        return self.qdrant_dir / collection

    @property
    def lock_file(self) -> Path:
        return self.index_dir / "owner.lock"

    @property
    def owner_info(self) -> Path:
        return self.index_dir / "owner.json"

    @property
    def socket_path(self) -> Path:
        return self.index_dir / "owner.sock"

    @property
    def logs_dir(self) -> Path:
        return self.index_dir / "logs"

    def exists(self) -> bool:
        return self.config_file.is_file()

    def relative(self, given: Sequence[str], base: Path | None = None) -> list[str]:
        """Root-relative POSIX paths for `given` (relative to `base`, else the root).

        Sorted and unique; empty when one of them is the root itself (the
        whole project). UsageError for an empty path or one outside the root.
        """
        root = self.root
        out: list[str] = []
        for text in given:
            if not text.strip():
                raise UsageError("A path to index is empty. Give paths inside the project.")
            path = Path(text.strip())
            # normpath, not resolve: a symlink inside the project is indexed
            # under its own path, wherever it points.
            absolute = Path(os.path.normpath(path if path.is_absolute() else (base or root) / path))
            if not absolute.is_relative_to(root):
                absolute = absolute.resolve()  # the root reached through a symlink
            if not absolute.is_relative_to(root):
                raise UsageError(
                    f"{text!r} is outside the project at {root}. Give paths inside it, "
                    "relative to the root (e.g. src/app.py) or absolute."
                )
            rel = PurePosixPath(*absolute.relative_to(root).parts).as_posix()
            if rel == ".":
                return []
            out.append(rel)
        return sorted(set(out))


def find_root(start: Path | None = None) -> Path:
    """The project root for `start` (default: the working directory)."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    git_top: Path | None = None
    home = Path.home()
    for folder in (here, *here.parents):
        # The home folder's `.code-indexer/` is not a project index (it is
        # where a global, per-user store lives), so it never claims a root.
        if folder != home and (folder / INDEX_DIR_NAME / "config.json").is_file():
            return folder
        # `.git` is a folder in a clone and a file in a worktree or submodule.
        if git_top is None and (folder / ".git").exists():
            git_top = folder
    return git_top if git_top is not None else here


def project_paths(start: Path | None = None) -> ProjectPaths:
    return ProjectPaths(find_root(start))
