"""Where a project's root is, and where everything cidx keeps lives inside it.

The root is found by walking up from the working directory: the nearest
folder holding `.code-indexer/`, else the git top level, else the working
directory itself. Everything cidx writes for a project lives under
`<root>/.code-indexer/`, so the index travels with the project. That folder
is private to its user (0700): the index holds the text of the source.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cidx.errors import AccessError, UsageError
from cidx.fsutil import private_dir

INDEX_DIR_NAME = ".code-indexer"
# Written into a new index folder, so that `git status` never shows it.
_GITIGNORE = "# Created by cidx: the search index of this project, rebuilt by `cidx index`.\n*\n"


@dataclass(frozen=True)
class ProjectPaths:
    """The files and folders of one project's index."""

    root: Path
    # Where the index folder is when not at `<root>/.code-indexer` (a private
    # read-only snapshot of it, for instance).
    index_location: Path | None = None

    @property
    def index_dir(self) -> Path:
        return self.index_location or self.root / INDEX_DIR_NAME

    def create_index_dir(self) -> None:
        """Make the index folder (user-only, with its own .gitignore) if missing."""
        private_dir(self.index_dir)
        ignore = self.index_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text(_GITIGNORE, encoding="utf-8")

    @property
    def config_file(self) -> Path:
        return self.index_dir / "config.json"

    @property
    def state_db(self) -> Path:
        return self.index_dir / "state.db"

    @property
    def qdrant_dir(self) -> Path:
        """The project-local store's folder (`cidx.storage` says where a
        project's collections really are)."""
        return self.index_dir / "qdrant-data"

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

    def writable(self) -> bool:
        """Whether this process may create or change the index (an existing
        index folder, else the root where it would be created)."""
        target = self.index_dir if self.index_dir.is_dir() else self.root
        return os.access(target, os.W_OK | os.X_OK)

    def folder_of(self, path: Path) -> str:
        """`path` (a folder, e.g. the working directory) as a root-relative POSIX
        path: "" for the root, or for a folder outside the project."""
        absolute = Path(os.path.normpath(path.absolute()))
        if not absolute.is_relative_to(self.root):
            absolute = absolute.resolve()
        if not absolute.is_relative_to(self.root):
            return ""
        rel = PurePosixPath(*absolute.relative_to(self.root).parts).as_posix()
        return "" if rel == "." else rel

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


def working_folder() -> Path:
    """The current folder; a UsageError when it was deleted under the process."""
    try:
        return Path(os.getcwd())
    except FileNotFoundError:
        raise UsageError(
            "The current folder no longer exists (it was deleted or moved away). Change "
            "into the project folder and run the command again."
        ) from None


def find_root(start: Path | None = None) -> Path:
    """The project root for `start` (default: the working directory)."""
    if start is None:
        start = working_folder()
    here = Path(start).resolve()
    git_top: Path | None = None
    home = Path.home()
    for folder in (here, *here.parents):
        # The home folder is never a project root (see `refuse_broad_root`),
        # so a `.code-indexer/` there (another tool's, or per-user data)
        # claims nothing. A folder whose index is being created, with no
        # config yet, is already the root: a command run meanwhile in a
        # subfolder must not start a second index there.
        if folder != home and (folder / INDEX_DIR_NAME).is_dir():
            return folder
        # `.git` is a folder in a clone and a file in a worktree or submodule.
        if git_top is None and (folder / ".git").exists():
            git_top = folder
    return git_top if git_top is not None else here


def project_paths(start: Path | None = None) -> ProjectPaths:
    return ProjectPaths(find_root(start))


def refuse_broad_root(root: Path) -> None:
    """UsageError if `root` is the filesystem root or the home folder.

    Either would index everything below it — every project, caches, mail,
    pseudo filesystems — which nobody means by a query typed there.
    """
    where = "the filesystem root" if root == Path(root.anchor) else None
    if root == Path.home():
        where = "your home folder"
    if where is not None:
        raise UsageError(
            f"cidx does not index {where} ({root}): it would take in everything below it. "
            "Run cidx inside a project folder (any folder below it, or a git repository)."
        )


def require_writable(paths: ProjectPaths) -> None:
    """AccessError, with the next step, when this process cannot write the index."""
    if not paths.writable():
        raise read_only_error(paths)


def read_only_error(paths: ProjectPaths) -> AccessError:
    where = paths.index_dir if paths.index_dir.is_dir() else paths.root
    return AccessError(
        f"Cannot write the index of {paths.root}: {where} is read-only for you. Searching "
        "and `cidx status` still work from the existing index; to index, run cidx as the "
        "user who owns the project, or in a copy of it you can write."
    )
