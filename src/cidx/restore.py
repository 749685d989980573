"""`cidx restore`: an archive of `cidx backup` back into a project, safely.

Nothing in an archive is trusted and nothing of the current index is
touched until the restored one has proven itself:

1. the manifest is read first: an archive of a newer format, of a newer
   config or state schema, or of another embedding model is refused before
   a byte is extracted (`check_compatible`);
2. the project's owner lock is taken (a running `cidx watch` is waited for,
   as `--wait-timeout` allows), so no process uses the index meanwhile;
3. every member is extracted into a new folder beside the index,
   `.code-indexer.restore.<pid>.tmp`, by `cidx.archive.read_archive`, which
   refuses links, devices, paths outside the archive's layout and members
   larger than announced, and checks every sha256 — any failure deletes that
   folder and leaves the index as it was;
4. the config is fixed for its new place (`relocate`), the state database
   opened (and migrated, for an older archive), and each collection's point
   count and recorded sample query checked against the manifest;
5. only then are the two folders exchanged in one atomic rename
   (`renameat2(RENAME_EXCHANGE)`), and the old index deleted.

A restore killed before step 5 leaves the old index in place and a
temporary folder that the next restore deletes; killed after it, the
restored index is in place. A full disk fails step 3 with the old index
untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from cidx.archive import (
    CONFIG_MEMBER,
    STATE_MEMBER,
    ArchiveManifest,
    read_archive,
    read_manifest,
)
from cidx.backup import CollectionCount
from cidx.compatibility import check_compatible
from cidx.config import load_config, save_config
from cidx.errors import ArchiveError, CidxError, UsageError
from cidx.failpoints import failpoint
from cidx.fsutil import disk_full, free_bytes, fsync_folder, is_no_space
from cidx.owner.lock import pid_alive
from cidx.project import INDEX_DIR_NAME, ProjectPaths, project_paths, refuse_broad_root
from cidx.service import WAIT_FOREVER, WaitPolicy, holding_lock
from cidx.snapshots import format_named, sample_hits
from cidx.state import StateDB
from cidx.storage import STORE_DIR_NAME, StorageLocation, open_store
from cidx.treecopy import remove_tree

__all__ = ["RestoreResult", "relocate", "restore_archive"]

# Folders beside the index: the restored index being built, and the old one
# between the exchange and its deletion. Both end ".<pid>.tmp".
_INCOMING = "restore"
_OUTGOING = "replaced"
_TEMP = re.compile(
    "^" + re.escape(INDEX_DIR_NAME) + rf"\.(?:{_INCOMING}|{_OUTGOING})\.([0-9]+)\.tmp$"
)
# Scores of the sample query may differ in the last bits between runs.
_SCORE_TOLERANCE = 1e-4
# Room needed beyond the files themselves: the state database's WAL, the
# config, the store's bookkeeping when it opens the shards.
_HEADROOM = 8 * 1024 * 1024


@dataclass(frozen=True)
class RestoreResult:
    archive: str
    root: str
    index_dir: str
    # An index was there before, and was replaced.
    replaced: bool
    # Where the archive's project was, when it was somewhere else.
    moved_from: str | None
    collections: list[CollectionCount]
    points: int
    files: int
    data_bytes: int
    seconds: float
    # Damage the index had when it was backed up (each names its repair).
    problems: list[str] = field(default_factory=list)


def restore_archive(
    archive: Path,
    *,
    into: Path | None = None,
    force: bool = False,
    wait: WaitPolicy = WAIT_FOREVER,
) -> RestoreResult:
    """Restore `archive` into the project at `into` (default: the current
    project), replacing its index only with `force` (see the module docstring)."""
    started = time.perf_counter()
    archive = archive.absolute()
    manifest = read_manifest(archive)
    check_compatible(manifest, archive)
    paths = _target(into)
    # An index folder without any of these (left by a restore that failed, or
    # by a command that only took the lock) holds nothing to lose.
    had_index = any(p.exists() for p in (paths.config_file, paths.state_db, paths.qdrant_dir))
    if had_index and not force:
        where = f" --into {into}" if into is not None else ""
        raise UsageError(
            f"{paths.root} has an index already ({paths.index_dir}). Run `cidx restore "
            f"{archive}{where} --force` to replace it (it stays in place until the restored "
            "index is verified), or restore into another folder with --into DIR."
        )
    with holding_lock(paths, "restore", wait):
        _remove_stale(paths.root)
        incoming = paths.root / f"{INDEX_DIR_NAME}.{_INCOMING}.{os.getpid()}.tmp"
        try:
            _room(paths.root, manifest)
            _extract(archive, manifest, incoming)
            relocate(ProjectPaths(paths.root, incoming), paths.root)
            _verify(manifest, ProjectPaths(paths.root, incoming), archive)
            failpoint("restore.swap")
            _swap(incoming, paths.index_dir, paths.root)
        except OSError as exc:
            if is_no_space(exc):
                raise disk_full(paths.root, manifest.disk_bytes) from None
            raise
        finally:
            remove_tree(incoming)
    moved = manifest.project_root if manifest.project_root != str(paths.root) else None
    return RestoreResult(
        archive=str(archive),
        root=str(paths.root),
        index_dir=str(paths.index_dir),
        replaced=had_index,
        moved_from=moved,
        collections=[CollectionCount(c.name, c.points) for c in manifest.collections],
        points=manifest.points,
        files=len(manifest.files),
        data_bytes=manifest.data_bytes,
        seconds=time.perf_counter() - started,
        problems=list(manifest.problems),
    )


def relocate(paths: ProjectPaths, root: Path) -> None:
    """Fix the config at `paths` (an index folder) for the project at `root`.

    A project-local index keeps nothing else that names its place: files are
    recorded relative to the root and the collections are inside the index
    folder. The config is also brought forward to this cidx's schema here.
    This is the one place a restore adapts an index to where it lands: a
    global-mode restore would register the project here as well.
    """
    config = load_config(paths)
    if config.project_root != str(root):
        config = config.model_copy(update={"project_root": str(root)})
    save_config(paths, config)


def _target(into: Path | None) -> ProjectPaths:
    if into is None:
        paths = project_paths()
    else:
        folder = into.expanduser().absolute()
        if not folder.is_dir():
            raise UsageError(
                f"There is no folder {folder} to restore into. Create it first (`mkdir -p "
                f"{folder}`), or give another folder with --into."
            )
        paths = ProjectPaths(folder.resolve())
    refuse_broad_root(paths.root)
    return paths


def _remove_stale(root: Path) -> None:
    """Delete what an earlier restore killed midway left beside the index."""
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            match = _TEMP.match(entry.name)
            if match is not None and not pid_alive(int(match.group(1))):
                remove_tree(entry)


def _room(root: Path, manifest: ArchiveManifest) -> None:
    needed = manifest.disk_bytes + _HEADROOM
    free = free_bytes(root)
    if free < needed:
        raise disk_full(root, needed - free, free)


def _extract(archive: Path, manifest: ArchiveManifest, folder: Path) -> None:
    """Extract and check every member of `archive` into the new `folder`:
    `config.json`, `state.db`, and each collection installed by its format
    into `qdrant-data/` (from `incoming/<name>/`, where it was extracted)."""
    # With the index folder's own `.gitignore` (`*`): neither git nor a sync
    # of the project ever takes in this folder, should a kill leave it behind.
    ProjectPaths(folder.parent, folder).create_index_dir()
    incoming = folder / "incoming"
    made: set[Path] = set()

    def place(member: str) -> Path:
        if member == CONFIG_MEMBER:
            return folder / "config.json"
        if member == STATE_MEMBER:
            return folder / "state.db"
        # `read_archive` accepts only `collections/<listed name>/<relative path>`
        # without `..`, so the target stays inside `incoming`.
        _, name, *rest = member.split("/")
        target = incoming.joinpath(name, *rest)
        parent = target.parent
        if parent not in made:
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            made.add(parent)
        return target

    read_archive(archive, place=place)
    failpoint("restore.extracted")
    location = StorageLocation("local", folder / STORE_DIR_NAME)
    for collection in manifest.collections:
        files = incoming / collection.name
        # A collection without points may come without files to make its folder.
        files.mkdir(mode=0o700, parents=True, exist_ok=True)
        format_named(collection.format).install(files, location, collection.name)
    remove_tree(incoming)
    fsync_folder(folder)


def _verify(manifest: ArchiveManifest, paths: ProjectPaths, archive: Path) -> None:
    """The restored files answer as the backed-up index did: the state
    database opens, each collection holds the points the manifest lists,
    and its sample query gives the same hits."""
    config = load_config(paths)
    db = StateDB(paths.state_db, collection=config.collection)
    db.close()
    store = open_store(StorageLocation("local", paths.index_dir / STORE_DIR_NAME))
    try:
        for collection in manifest.collections:
            try:
                points = store.count(collection.name)
            except CidxError as exc:
                raise _not_verified(
                    archive, f"the collection {collection.name} does not open: {exc}"
                ) from None
            if points != collection.points:
                raise _not_verified(
                    archive,
                    f"the collection {collection.name} holds {points:,} points where the "
                    f"manifest lists {collection.points:,}",
                )
            if collection.sample is None:
                continue
            got = sample_hits(store, collection.name, collection.sample.dense())
            expected = collection.sample.hits
            if [i for i, _ in got] != [i for i, _ in expected] or any(
                abs(a - b) > _SCORE_TOLERANCE for (_, a), (_, b) in zip(got, expected, strict=True)
            ):
                raise _not_verified(
                    archive,
                    f"the sample query of the collection {collection.name} answers otherwise "
                    "than when the backup was taken",
                )
    finally:
        store.close()


def _not_verified(archive: Path, why: str) -> ArchiveError:
    return ArchiveError(
        f"The index restored from {archive} does not check out: {why}. The current index was "
        "left as it was. Use another backup (`cidx backup list` shows them)."
    )


# -- the swap ----------------------------------------------------------------

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _swap(incoming: Path, index_dir: Path, root: Path) -> None:
    """Put `incoming` in the place of `index_dir` at once, then delete the old one."""
    outgoing = root / f"{INDEX_DIR_NAME}.{_OUTGOING}.{os.getpid()}.tmp"
    if not index_dir.exists():
        os.rename(incoming, index_dir)
    elif not _exchange(incoming, index_dir):
        # No atomic exchange here (an old kernel, or a filesystem without
        # it): two renames, with the old index kept under a known name
        # until the new one is in place.
        os.rename(index_dir, outgoing)
        os.rename(incoming, index_dir)
        incoming = outgoing
    fsync_folder(root)
    failpoint("restore.swapped")
    remove_tree(incoming)


def _exchange(a: Path, b: Path) -> bool:
    """Swap the folders `a` and `b` in one step (False: not supported here)."""
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
