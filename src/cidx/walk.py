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

Dropped silently, and only counted:

    ignored_dirs       directories excluded by the rules (not descended into)
    symlinked_dirs     symbolic links to directories, never followed (as git
                       and ripgrep do): following them can loop, escape the
                       project, or index the same files twice
    special_files      FIFOs, sockets and devices, never opened: opening a
                       FIFO blocks, and none of them holds source text
    vanished           files deleted between listing and stat. The walk is a
                       snapshot of what exists; a file gone mid-walk is not
                       part of it, and telling the user about a file they just
                       deleted (or an editor's temporary file) is noise. The
                       next sync, or the watcher, sees the new state.

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
from cidx.ignore import IgnoreRules

__all__ = [
    "SkipReason",
    "SkippedFile",
    "WalkResult",
    "WalkedFile",
    "human_size",
    "stat_file",
    "walk_project",
]

SkipReason = Literal[
    "too_large", "unreadable", "broken_symlink", "symlink_loop", "undecodable_name"
]


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
    special_files: int = 0
    vanished: int = 0


def human_size(size: int) -> str:
    """`size` bytes for a person: "812 bytes", "4.0 KB", "2.3 MB" (powers of 1024)."""
    if size < 1024:
        return f"{size} byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def _too_large(rel: str, size: int, max_file_size: int) -> SkippedFile:
    return SkippedFile(
        rel,
        "too_large",
        f"{human_size(size)} is over the {human_size(max_file_size)} limit "
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


def walk_project(
    root: Path, *, max_file_size: int, rules: IgnoreRules | None = None, start: str = ""
) -> WalkResult:
    """Every file under `root` the index should hold, and what it cannot.

    `rules` defaults to `IgnoreRules(root)`; pass the long-lived instance a
    watcher keeps, so its caches are shared. `start`, a directory relative to
    the root, limits the walk to that subtree (nothing, if the rules exclude
    it). Raises `UsageError` only if `root` itself is not a directory; any
    other problem is reported in the result and the walk goes on.
    """
    root_str = os.fspath(root)
    if not os.path.isdir(root_str):
        raise UsageError(f"Cannot index {root_str}: it is not a directory.")
    if rules is None:
        rules = IgnoreRules(root)
    ignores_entry = rules.ignores_entry  # the hot loop calls it for every entry

    files: list[WalkedFile] = []
    skipped: list[SkippedFile] = []
    ignored_dirs = symlinked_dirs = special_files = vanished = 0

    start = start.strip("/")
    if start and (rules.is_ignored(start, is_dir=True) or _below_link(root_str, start)):
        return WalkResult(files=[], skipped=[], ignored_dirs=1)
    pending = [start]
    while pending:
        rel_dir = pending.pop()
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
                else:
                    pending.append(rel)
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
                special_files += 1

    files.sort(key=lambda f: f.rel)
    skipped.sort(key=lambda s: s.rel)
    return WalkResult(
        files=files,
        skipped=skipped,
        ignored_dirs=ignored_dirs,
        symlinked_dirs=symlinked_dirs,
        special_files=special_files,
        vanished=vanished,
    )


def stat_file(
    root: Path, rel: str, *, max_file_size: int, rules: IgnoreRules
) -> WalkedFile | SkippedFile | None:
    """What `walk_project` would say about the one path `rel`, for a watcher.

    None when the path is ignored, gone, a directory, a link to a directory,
    a special file, or below a symbolic link to a directory (the walk does
    not follow those).
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
    st: os.stat_result | SkippedFile | None = lst
    if stat.S_ISLNK(lst.st_mode):
        st = _stat_link(path, rel)
    if st is None or isinstance(st, SkippedFile):
        return st
    if not stat.S_ISREG(st.st_mode):
        return None
    if st.st_size > max_file_size:
        return _too_large(rel, st.st_size, max_file_size)
    return WalkedFile(rel, st.st_size, st.st_mtime_ns)
