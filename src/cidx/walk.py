"""Listing the files of a project that the index should hold, from metadata alone.

`walk_project` owns the walk: it lists directories with `os.scandir`
(iteratively, so depth is no problem), asks `IgnoreRules` about every entry
before touching it, and `stat`s only the survivors; it never opens a file,
because a no-op sync of a large project must cost no more than that. Sniffing
content for binary files is the indexer's job, and only for files whose stat
changed. `stat_file` answers the same question for one path, for a watcher,
and agrees with the walk.

Nothing stops the walk. What it cannot index is reported in `skipped`, with
one of these reasons:

    too_large          bigger than `max_file_size`
    unreadable         a directory that cannot be listed (with everything in
                       it), or a file whose metadata cannot be read
    broken_symlink     a symbolic link whose target does not exist
    symlink_loop       a symbolic link that resolves back through itself
    undecodable_name   a name that is not valid UTF-8, which the index cannot
                       store or print faithfully
    special_file       a FIFO, socket or device, never opened: opening a FIFO
                       blocks, opening some devices has effects, and none of
                       them holds source text
    pseudo_filesystem  a directory where a pseudo filesystem is mounted
                       (proc, sysfs, devtmpfs, cgroup, ...; see
                       `cidx.mounts`), never entered

Dropped silently, and only counted:

    ignored_dirs       directories excluded by the rules (not descended into)
    symlinked_dirs     symbolic links to directories, never followed (as git
                       and ripgrep do): following them can loop, escape the
                       project, or index the same files twice
    vanished           files deleted between listing and stat. The walk is a
                       snapshot of what exists; a file gone mid-walk is not
                       part of it, and telling the user about a file they just
                       deleted (or an editor's temporary file) is noise. The
                       next sync, or the watcher, sees the new state.

Files excluded by the ignore rules are not counted at all: the user chose to
leave them out.

A symbolic link to a regular file is indexed under the link's own path, with
the size and mtime of its target, wherever the target lives.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cidx.errors import UsageError
from cidx.formatting import size as format_size
from cidx.ignore import IgnoreRules
from cidx.mounts import MountTypes

__all__ = [
    "AUTO_INDEX_MAX_FILES",
    "AUTO_INDEX_MAX_FILES_ENV",
    "FileCount",
    "SkipReason",
    "SkippedFile",
    "WalkResult",
    "WalkedFile",
    "auto_index_limit",
    "count_files",
    "refuse_large_first_index",
    "special_file",
    "stat_file",
    "walk_project",
]

SkipReason = Literal[
    "too_large",
    "unreadable",
    "broken_symlink",
    "symlink_loop",
    "undecodable_name",
    "special_file",
    "pseudo_filesystem",
]

# A first index (no index yet) of more files than this is not started by
# itself: `cidx init` must ask for it explicitly. Tests lower it through the
# environment variable, since a tree over the real limit is slow to make.
AUTO_INDEX_MAX_FILES = 100_000
AUTO_INDEX_MAX_FILES_ENV = "CIDX_MAX_AUTO_FILES"


@dataclass(frozen=True)
class WalkedFile:
    """A regular file (or a link to one) the index should hold."""

    rel: str  # POSIX path relative to the root, e.g. "src/app/main.py"
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class SkippedFile:
    """A path the index cannot hold, and why, in words a user can act on."""

    rel: str
    reason: SkipReason
    detail: str  # e.g. "2.3 MB is over the 1.0 MB limit (cidx init --max-file-size)."


@dataclass
class WalkResult:
    """Everything one walk found. Lists are sorted by `rel`; the counts are
    for the summary (see the module docstring for what each one counts)."""

    files: list[WalkedFile]
    # An "unreadable" directory here means its contents are unknown, not
    # gone: the indexer can keep what it indexed below it last time.
    skipped: list[SkippedFile]
    ignored_dirs: int
    symlinked_dirs: int = 0
    vanished: int = 0
    # True when `stop_after` ended the walk early: the lists are then partial.
    stopped_early: bool = False


@dataclass(frozen=True)
class FileCount:
    """How many files a walk of `root` would index, counted up to a limit."""

    root: Path
    files: int  # exact if not `over_limit`; else how many were seen when it stopped
    limit: int

    @property
    def over_limit(self) -> bool:
        return self.files > self.limit


def _too_large(rel: str, size: int, max_file_size: int) -> SkippedFile:
    return SkippedFile(
        rel,
        "too_large",
        f"{format_size(size)} is over the {format_size(max_file_size)} limit "
        "(cidx init --max-file-size).",
    )


def _printable(rel: str) -> str:
    # A name os.scandir could not decode carries lone surrogates; show its
    # bytes as escapes so the report itself can always be printed.
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_decodable(name: str) -> bool:
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _undecodable(rel: str) -> SkippedFile:
    return SkippedFile(
        _printable(rel),
        "undecodable_name",
        "The name is not valid UTF-8, so the index cannot store it; rename it to index it.",
    )


def _unreadable_dir(rel: str, error: OSError) -> SkippedFile:
    return SkippedFile(
        rel or ".",
        "unreadable",
        f"This directory cannot be listed ({error.strerror or error}), "
        "so nothing in it is indexed; check its permissions.",
    )


def _unreadable_file(rel: str, error: OSError) -> SkippedFile:
    return SkippedFile(
        rel,
        "unreadable",
        f"Its metadata cannot be read ({error.strerror or error}); check its permissions.",
    )


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_file(rel: str, mode: int) -> SkippedFile:
    """The report for `rel`, which is neither a regular file nor a directory."""
    kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "not a regular file")
    return SkippedFile(rel, "special_file", f"It is {kind}, which is never read.")


def _pseudo_filesystem(rel: str, fstype: str) -> SkippedFile:
    return SkippedFile(
        rel or ".",
        "pseudo_filesystem",
        f"A {fstype} filesystem is mounted here: system state, not files, so it is never entered.",
    )


def _stat_link(path: str, rel: str) -> os.stat_result | SkippedFile | None:
    """Follow the symbolic link at `path`: its target's stat, a skip, or None
    if the link itself is gone."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        try:
            target = os.readlink(path)
        except OSError:
            return None  # the link itself vanished
        return SkippedFile(
            rel,
            "broken_symlink",
            f"It is a symbolic link to {_printable(target)!r}, which does not exist.",
        )
    except OSError as error:
        if error.errno == errno.ELOOP:
            return SkippedFile(
                rel,
                "symlink_loop",
                "It is a symbolic link that resolves back through itself (a loop).",
            )
        return _unreadable_file(rel, error)


def _below_link(root_str: str, rel_dir: str) -> bool:
    """Whether `rel_dir` (or one of its parents) is not a real directory."""
    ancestor = root_str
    for part in rel_dir.split("/"):
        ancestor = os.path.join(ancestor, part)
        try:
            if not stat.S_ISDIR(os.lstat(ancestor).st_mode):
                return True
        except OSError:
            return True
    return False


def _device(path: str) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


def walk_project(
    root: Path,
    *,
    max_file_size: int,
    rules: IgnoreRules | None = None,
    start: str = "",
    stop_after: int | None = None,
) -> WalkResult:
    """Every file under `root` the index should hold, and what it cannot.

    `rules` defaults to `IgnoreRules(root)`; pass the long-lived instance a
    watcher keeps, so its caches are shared. `start`, a directory relative to
    the root, limits the walk to that subtree (nothing, if the rules exclude
    it). `stop_after` ends the walk once more files than that were found
    (checked per directory, so an ordinary walk pays nothing for it); the
    result then says `stopped_early`. Raises `UsageError` only if `root`
    itself is not a directory; any other problem is reported in the result
    and the walk goes on.
    """
    root_str = os.fspath(root)
    if not os.path.isdir(root_str):
        raise UsageError(f"Cannot index {root_str}: it is not a directory.")
    if rules is None:
        rules = IgnoreRules(root)
    ignores_entry = rules.ignores_entry  # the hot loop calls it for every entry

    files: list[WalkedFile] = []
    skipped: list[SkippedFile] = []
    ignored_dirs = symlinked_dirs = vanished = 0
    stopped_early = False
    mounts = MountTypes()

    start = start.strip("/")
    if start and (rules.is_ignored(start, is_dir=True) or _below_link(root_str, start)):
        return WalkResult(files=[], skipped=[], ignored_dirs=1)
    # Where the walk starts is checked like every directory it enters: on
    # another device than what holds it (the root's parent, or the root),
    # it may be a pseudo filesystem.
    start_path = f"{root_str}/{start}" if start else root_str
    start_dev = _device(start_path)
    outer_dev = _device(root_str if start else os.path.join(root_str, os.pardir))
    if start_dev is not None and start_dev != outer_dev:
        fstype = mounts.pseudo(start_dev, start_path)
        if fstype is not None:
            return WalkResult(files=[], skipped=[_pseudo_filesystem(start, fstype)], ignored_dirs=0)
    pending: list[tuple[str, int | None]] = [(start, start_dev)]
    while pending:
        if stop_after is not None and len(files) > stop_after:
            stopped_early = True
            break
        rel_dir, dir_dev = pending.pop()
        try:
            # Listing in full first: an error part-way through (EIO, a
            # directory made unreadable mid-walk) then reports the directory
            # once instead of leaving a silently partial view of it.
            with os.scandir(f"{root_str}/{rel_dir}" if rel_dir else root_str) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed or replaced since its parent was listed
        except OSError as error:
            skipped.append(_unreadable_dir(rel_dir, error))
            continue

        rules.listed(rel_dir, (e.name for e in entries))
        for entry in entries:
            name = entry.name
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not _is_decodable(name):
                skipped.append(_undecodable(rel))
                continue
            try:
                is_link = entry.is_symlink()
                is_dir = not is_link and entry.is_dir(follow_symlinks=False)
            except FileNotFoundError:
                vanished += 1
                continue
            except OSError as error:
                skipped.append(_unreadable_file(rel, error))
                continue

            if is_dir:
                if ignores_entry(rel_dir, name, True):
                    ignored_dirs += 1
                    continue
                # The one stat a directory costs: a mount point is where
                # the device changes.
                try:
                    dev: int | None = entry.stat(follow_symlinks=False).st_dev
                except OSError:
                    dev = None  # listing it will say what is wrong
                if dev is not None and dev != dir_dev:
                    fstype = mounts.pseudo(dev, entry.path)
                    if fstype is not None:
                        skipped.append(_pseudo_filesystem(rel, fstype))
                        continue
                pending.append((rel, dev))
                continue
            # A link is judged by its own name as a file, as git stores it.
            if ignores_entry(rel_dir, name, False):
                continue

            st: os.stat_result | SkippedFile | None
            if is_link:
                st = _stat_link(entry.path, rel)
            else:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    st = None
                except OSError as error:
                    st = _unreadable_file(rel, error)
            if st is None:
                vanished += 1
            elif isinstance(st, SkippedFile):
                skipped.append(st)
            elif stat.S_ISREG(st.st_mode):
                if st.st_size > max_file_size:
                    skipped.append(_too_large(rel, st.st_size, max_file_size))
                else:
                    files.append(WalkedFile(rel, st.st_size, st.st_mtime_ns))
            elif stat.S_ISDIR(st.st_mode):
                symlinked_dirs += 1
            else:
                skipped.append(special_file(rel, st.st_mode))

    files.sort(key=lambda f: f.rel)
    skipped.sort(key=lambda s: s.rel)
    return WalkResult(
        files=files,
        skipped=skipped,
        ignored_dirs=ignored_dirs,
        symlinked_dirs=symlinked_dirs,
        vanished=vanished,
        stopped_early=stopped_early,
    )


def auto_index_limit() -> int:
    """The most files a first index may cover without an explicit `cidx init`."""
    value = os.environ.get(AUTO_INDEX_MAX_FILES_ENV, "").strip()
    if not value:
        return AUTO_INDEX_MAX_FILES
    try:
        limit = int(value)
    except ValueError:
        raise UsageError(
            f"{AUTO_INDEX_MAX_FILES_ENV}={value!r} is not a number of files. Set it to a "
            "whole number, or unset it for the default of "
            f"{AUTO_INDEX_MAX_FILES:,}."
        ) from None
    return max(limit, 0)


def count_files(root: Path, *, max_file_size: int, limit: int | None = None) -> FileCount:
    """How many files a walk of `root` would index, stopping soon after `limit`
    (default `auto_index_limit()`) is passed: for the question "is this tree
    too large to index without asking?", which must not take as long as
    walking all of `/` would."""
    limit = auto_index_limit() if limit is None else limit
    walked = walk_project(root, max_file_size=max_file_size, stop_after=limit)
    return FileCount(root=root, files=len(walked.files), limit=limit)


def refuse_large_first_index(root: Path, *, max_file_size: int) -> None:
    """UsageError when a first index of `root`, started without being asked
    for, would cover more than `auto_index_limit()` files; `cidx init` (which
    creates the index without this check) is the way to index it anyway."""
    counted = count_files(root, max_file_size=max_file_size)
    if counted.over_limit:
        raise UsageError(
            f"This would index more than {counted.limit:,} files under {counted.root}; "
            "run `cidx init` there explicitly to index it anyway."
        )


def stat_file(
    root: Path, rel: str, *, max_file_size: int, rules: IgnoreRules
) -> WalkedFile | SkippedFile | None:
    """What `walk_project` would say about the one path `rel`, for a watcher.

    None when the path is ignored, gone, a directory, a link to a directory,
    below a symbolic link to a directory (the walk does not follow those),
    or inside a pseudo filesystem (the walk never enters one).
    """
    rel = rel.strip("/")
    if not rel:
        return None
    parent, _, name = rel.rpartition("/")
    if not _is_decodable(parent):
        return None  # the walk reports the directory and never lists inside it
    if not _is_decodable(name):
        return _undecodable(rel)
    # Names first: if `rel` is really a directory the answer is None anyway.
    if rules.is_ignored(rel, is_dir=False):
        return None
    root_str = os.fspath(root)
    path = os.path.join(root_str, rel)
    # Below a linked directory the walk never goes; a few lstats per watcher
    # event is cheap next to indexing the same file under two paths.
    if parent and _below_link(root_str, parent):
        return None
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        return _unreadable_file(rel, error)
    if stat.S_ISDIR(lst.st_mode):
        return None
    if parent and lst.st_dev != _device(root_str):
        parent_path = os.path.join(root_str, parent)
        if MountTypes().pseudo(lst.st_dev, parent_path) is not None:
            return None
    st: os.stat_result | SkippedFile | None = lst
    if stat.S_ISLNK(lst.st_mode):
        st = _stat_link(path, rel)
    if st is None or isinstance(st, SkippedFile):
        return st
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        return special_file(rel, st.st_mode)
    if st.st_size > max_file_size:
        return _too_large(rel, st.st_size, max_file_size)
    return WalkedFile(rel, st.st_size, st.st_mtime_ns)
