"""`cidx clone SRC DST`: copy an indexed project, index and all, as a new project.

The index lives inside the project, so a copy of the project's tree is a
copy of its index. To make that copy consistent, SRC is kept still for the
length of the copy (`cidx.pause.paused`: its owner is paused and flushes,
or, with no owner, the clone holds its lock, and the files are at rest).
The tree is copied with `cidx.treecopy.copy_tree`: reflinks (FICLONE,
`copy_file_range`) where the filesystem shares blocks between files — XFS
with reflink=1, btrfs, ZFS with block cloning, APFS — so the copy costs a
metadata update per file whatever the index's size; a plain copy
elsewhere. The owner's runtime files (lock, owner record, socket, server
record) are left out: they belong to SRC's running processes.

Then SRC is resumed and the copy becomes a project of its own
(`cidx.relocate.fix_held`: its root, a new identity, its collections
renamed). A project in the global store is made independent before SRC is
resumed instead: its collection there is copied for the copy
(`cidx.sharedcopy`) while SRC is still, so that it matches the state
database copied with the tree. A failure at any point leaves SRC as it was — it is only ever
read, and its pause ends however the copy ends — and removes whatever of
DST was made.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import time
from pathlib import Path

from cidx.config import read_config
from cidx.errors import AccessError, CidxError, DiskFullError, NoIndexError, OwnerError, UsageError
from cidx.messages import CloneResult, FixReport
from cidx.owner.lock import OwnerLock
from cidx.owner.waiting import WAIT_FOREVER, WaitPolicy
from cidx.pause import Paused, paused
from cidx.project import INDEX_DIR_NAME, ProjectPaths, working_folder
from cidx.registry import Registry
from cidx.relocate import fix_held
from cidx.storage import global_store_dir
from cidx.treecopy import copy_tree, remove_tree

__all__ = ["RUNTIME_FILES", "clone_project"]

# Files of the index folder that belong to the processes running on SRC,
# never to a copy of it.
RUNTIME_FILES = ("owner.lock", "owner.json", "owner.sock", "serve.json")
# Leftovers a copy has no use for: set-aside damaged or dropped shards.
_LEFTOVERS = ("*.damaged-*", "*.dropped-*")


def _skip(rel: str) -> bool:
    """Whether the entry `rel` (relative to SRC) stays out of the copy."""
    folder, _, name = rel.rpartition("/")
    if folder == INDEX_DIR_NAME and name in RUNTIME_FILES:
        return True
    if folder == f"{INDEX_DIR_NAME}/qdrant-data":
        return any(fnmatch.fnmatch(name, pattern) for pattern in _LEFTOVERS)
    return False


def _check(source: Path, target: Path) -> None:
    """Refuse, before anything is done, what cannot become a clone."""
    if not (source / INDEX_DIR_NAME / "config.json").is_file():
        what = "a folder" if source.is_dir() else "not a folder"
        raise NoIndexError(
            f"{source} is {what} without a cidx index, so there is nothing to clone. Give the "
            "root folder of an indexed project (`cidx status` there says whether it has one)."
        )
    if os.path.lexists(target):
        raise UsageError(
            f"{target} exists already. `cidx clone` makes a new folder: give a path that does "
            "not exist yet (remove that one first if it is yours to lose)."
        )
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(
            f"The folder {parent}, where the clone would go, does not exist. Create it "
            f"(`mkdir -p {parent}`), then run `cidx clone` again."
        )
    if target.is_relative_to(source):
        raise UsageError(
            f"{target} is inside {source}, so the copy would contain itself. Give a path "
            "outside the project."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AccessError(
            f"Cannot create {target}: {parent} is not writable for you. Give a folder you "
            "can write, or ask its owner for write access."
        )


def clone_project(
    source: Path,
    target: Path,
    *,
    wait: WaitPolicy = WAIT_FOREVER,
) -> CloneResult:
    """Copy the indexed project at `source` to `target` (which must not exist)
    and make the copy an independent project."""
    started = time.perf_counter()
    here = working_folder()  # relative paths are taken from it
    source = Path(os.path.realpath(here / source))
    target = Path(os.path.abspath(here / target))
    if os.path.isdir(target.parent):
        target = Path(os.path.realpath(target.parent)) / target.name
    _check(source, target)
    src_paths = ProjectPaths(source)
    dst_paths = ProjectPaths(target)
    # In the global store the copy's collection is copied from SRC's too:
    # while SRC is still, so that it matches the state database copied with
    # the tree.
    shared = _in_global_store(src_paths)
    fix: FixReport | None = None
    began = time.time()
    made = False
    try:
        asked_at = time.perf_counter()
        with paused(src_paths, by="cidx clone", wait=wait) as pause:
            paused_at = time.perf_counter()
            try:
                made = True
                report = copy_tree(source, target, skip=_skip)
            except FileExistsError:
                made = False  # someone else made it between the check and the copy
                raise UsageError(
                    f"{target} was created by someone else while `cidx clone` started. Give "
                    "a path that does not exist."
                ) from None
            except OSError as exc:
                raise _copy_error(exc, source, target) from None
            copied_at = time.perf_counter()
            if shared:
                fix = _make_independent(dst_paths, source, pause)
        resumed_at = time.perf_counter()
        if not pause.held_throughout:
            raise OwnerError(
                f"The pause of {source} ended while it was being copied (someone ran `cidx "
                "resume`, or its owner stopped), so the copy may not be consistent; it was "
                "removed. Run `cidx clone` again."
            )
        if fix is None:
            fix = _make_independent(dst_paths, source, None)
    except BaseException:
        if made:
            remove_tree(target)
            if shared:
                _remove_from_global_store(target, since=began)
        raise
    return CloneResult(
        source=str(source),
        target=str(target),
        method=report.method,
        copy_on_write=report.copy_on_write,
        files_cloned=report.cloned,
        files_copied=report.copied,
        bytes=report.bytes,
        paused_owner=pause.owner,
        pause_seconds=resumed_at - asked_at,
        copy_seconds=copied_at - paused_at,
        fix=fix,
        seconds=time.perf_counter() - started,
    )


def _in_global_store(paths: ProjectPaths) -> bool:
    try:  # SRC is only read: an older config is not written back
        return read_config(paths, write_back=False)[0].storage_mode == "global"
    except CidxError:
        return False  # the copy's first command reports it


def _remove_from_global_store(target: Path, *, since: float) -> None:
    """What a failed clone made in the global store: the collections (whole or
    part-copied) registered for `target` from `since` on, and their entries."""
    with Registry() as registry:
        for entry in registry.of_project(target):
            if entry.created_at >= since:
                remove_tree(global_store_dir() / entry.name)
                registry.forget(entry.name)
        registry.set_aliases(target, [])


def _make_independent(dst: ProjectPaths, source: Path, original: Paused | None) -> FixReport:
    """Make the copy at `dst` a project of its own (`cidx.relocate.fix_held`)."""
    lock = OwnerLock(dst, "clone")
    if not lock.try_acquire():
        raise OwnerError(
            f"Another cidx process started using {dst.root} before `cidx clone` finished "
            "with it; the copy was removed. Run `cidx clone` again."
        )
    try:
        return fix_held(dst, clone_of=source, quick=True, original=original)
    finally:
        lock.release()
        # The lock file is the clone's own runtime file: not part of a
        # project at rest, as in SRC's copy.
        with contextlib.suppress(OSError):
            dst.lock_file.unlink()


def _copy_error(exc: OSError, source: Path, target: Path) -> CidxError:
    """A failed copy as the error to show (the partial copy is removed)."""
    where = exc.filename or target
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            f"The disk holding {target} is full (writing {where}): the partial copy was "
            f"removed and {source} is untouched. Free some space there (`df -h "
            f"{target.parent}`), or clone to another disk."
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return AccessError(
            f"Cannot write the clone at {target} ({exc.strerror}: {where}): the partial copy "
            f"was removed and {source} is untouched. Give a place you can write."
        )
    return CidxError(
        f"Copying {source} to {target} failed ({exc.strerror or exc}: {where}): the partial "
        f"copy was removed and {source} is untouched. Fix the cause and run `cidx clone` again."
    )
