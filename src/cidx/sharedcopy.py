"""A copied project's collections in the global store, made its own.

A project in global storage mode keeps its collections in the one store
every such project shares. A copy of it (`cidx clone`, `cp -a`) brings its
config and state database along, but the collections stay behind in that
store, under the original's names. `cidx fix-config` gives the copy names
of its own (`cidx.relocate`); this module is the global store's part of
that: each collection is copied to its new name, verified, and recorded in
the registry as the copy's. The original's collections, config and
registry entries are only ever read.

The copy is of the shard's files (`cidx.treecopy.copy_tree`: reflinks
where the filesystem shares blocks, so it costs a metadata update per file)
while the original is kept still (`cidx.pause.paused`: its owner pauses and
flushes, or with no owner this process holds its lock). Points are not
copied one by one (`cidx.collections.copy_collection`) because a shard is
open in one process only, and the original's may be open in its owner.
When this process holds the original's lock it opens the original's shard
and compares the two with `verify_copy`; when an owner keeps it open, the
copy's count is compared with the original's manifest.

Crash-safe through the registry, which is the copy's journal: it records
the new name as `incoming` (the copy's, being copied in: never taken for
an orphan, `cidx collections list` shows it so) before any file is
written, and as `ready` only once the copy is verified. A run that finds
the new name `incoming` — a copy killed part-way — removes what is there
and copies again (a reflink copy costs a metadata update per file).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from cidx.collections import verify_copy
from cidx.config import Config
from cidx.errors import StoreError, UsageError
from cidx.failpoints import failpoint
from cidx.fsutil import fsync_folder
from cidx.pause import Paused, paused
from cidx.project import ProjectPaths
from cidx.registry import Registry, mirror_aliases, uses_collection
from cidx.state import Alias, StateDB
from cidx.storage import StorageLocation, open_store
from cidx.treecopy import copy_tree, remove_tree

__all__ = ["copy_to_own_names", "own_shared_collections"]


def own_shared_collections(
    location: StorageLocation,
    renames: list[tuple[str, str]],
    old: Config,
    new: Config,
    aliases: list[Alias],
    original: Paused | None = None,
) -> None:
    """The fix of a copied project whose collections are in a shared store
    (the config `old` before the fix, `new` after): each collection copied to
    its new name and registered, with the copy's `aliases`, as the copy's.
    `original`: the caller keeps the project copied from still already."""
    if location.mode != "global":
        raise UsageError(
            f"The index of {new.project_root} is on a Qdrant server, where cidx does not copy "
            "collections for a copied project. Run `cidx init --force` in its folder for an "
            "index of its own."
        )
    copy_to_own_names(
        location,
        renames,
        root=Path(new.project_root),
        project_id=new.identity.id,
        model=new.embedding.model_id,
        original_root=Path(old.project_root),
        original=original,
    )
    mirror_aliases(Path(new.project_root), aliases)


def copy_to_own_names(
    location: StorageLocation,
    renames: list[tuple[str, str]],
    *,
    root: Path,
    project_id: str,
    model: str,
    original_root: Path,
    original: Paused | None = None,
) -> None:
    """Copy each (old, new) collection of the global store to its new name and
    register it as the collection of the project at `root` (idempotent).

    `original_root` is where the project copied from was, when the registry
    does not say whose the old collection is; `original`, the pause of it
    that the caller holds, if any.
    """
    with Registry() as registry:
        for old, new in renames:
            entry = registry.entry(new)
            if entry is not None and entry.project_root != str(root):
                if uses_collection(Path(entry.project_root), new):
                    raise StoreError(
                        f"The collection {new} in the global store belongs to the project "
                        f"at {entry.project_root}, so {root} cannot take that name. Run "
                        f"`cidx init --force` in {root} for an index of its own."
                    )
            elif entry is not None and entry.state == "ready" and location.holds(new):
                continue  # copied by an earlier run
            if not location.holds(old):
                continue  # nothing to copy: the copy's next sync builds the collection
            owner = registry.entry(old)
            source_root = Path(owner.project_root) if owner is not None else original_root
            registry.put(new, root=root, project_id=project_id, model=model, state="incoming")
            _copy(location, old, new, source_root, original)
            failpoint("fix-config-placed")
            registry.put(new, root=root, project_id=project_id, model=model)


def _copy(
    location: StorageLocation, old: str, new: str, source_root: Path, held: Paused | None
) -> None:
    target = location.collection_dir(new)
    remove_tree(target)  # what a killed run left
    with _still(source_root, old, held) as pause:
        copy_tree(location.collection_dir(old), target)
        fsync_folder(location.folder)
        failpoint("fix-config-copied")
        problems = _verify(location, old, new, source_root, pause)
    if problems:
        remove_tree(target)
        raise StoreError(
            f"The copy of the collection {old} as {new} in the global store did not match "
            f"the original ({'; '.join(problems)}); it was removed and the original is "
            "untouched. Run `cidx fix-config` again."
        )


@contextlib.contextmanager
def _still(source_root: Path, name: str, held: Paused | None) -> Iterator[Paused | None]:
    """The original project kept still (paused, or its lock held) while its
    collection is copied: by the caller (`held`), or here; nothing to hold
    when no project uses it any more."""
    if held is not None:  # the project copied from, which is the collection's
        yield held
        return
    if not uses_collection(source_root, name):
        yield None
        return
    with paused(ProjectPaths(source_root), by="cidx fix-config") as pause:
        yield pause


def _verify(
    location: StorageLocation, old: str, new: str, source_root: Path, pause: Paused | None
) -> list[str]:
    """What differs between the original collection and its copy."""
    copy = open_store(location)
    try:
        if pause is None or pause.owner is None:
            # Nobody else has the original open: compare the two.
            return verify_copy(copy, old, copy, new)
        # Its owner has it open (and paused, flushed): its manifest says what it holds.
        db = StateDB(ProjectPaths(source_root).state_db, collection=old)
        try:
            chunks = db.manifest(old).counts()[1]
        finally:
            db.close()
        points = copy.count(new)
        if points != chunks:
            return [f"the copy holds {points:,} points, the original's manifest {chunks:,}"]
        return []
    finally:
        copy.close()
