"""`cidx backup --global`: the user's global store as one archive.

The global store (`cidx.storage.global_store_dir`) holds the collection of
every project in global storage mode, and its registry (`registry.db`)
says whose each one is. A backup of it is an archive of `kind: "global"`:
the registry, copied through SQLite's backup API, and every collection in
the store, each copied while it is still — the project that owns it is
paused (its owner flushes and holds its writes while queries go on) or,
with no owner, its lock is held (`cidx.pause.paused`), so no two projects
ever wait for each other. A collection no project uses any more is copied
as it lies; one still being copied in by a migration is left out, with a
note. The copies go into `<data>/.backup.<pid>.tmp/` (on the store's
filesystem, so they are clones where it can), each is opened there for its
point count and a sample query, and the archive is written, published and
pruned as a project's is (`cidx.backup`). `cidx restore` brings it back.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from cidx import __version__
from cidx.archive import (
    REGISTRY_MEMBER,
    ArchivedCollection,
    ArchivedFile,
    ArchiveManifest,
    SampleQuery,
)
from cidx.backup import (
    BackupResult,
    Member,
    add_collection,
    backup_result,
    check_keep,
    destination,
    remove_stale,
    write_archive,
)
from cidx.config import CONFIG_SCHEMA_VERSION
from cidx.embedding import EMBEDDING_DIM, model_id
from cidx.errors import UsageError
from cidx.fsutil import disk_full, is_no_space, private_dir
from cidx.pause import paused
from cidx.project import ProjectPaths
from cidx.registry import Registry, RegistryEntry, registry_exists, registry_path, uses_collection
from cidx.service import WAIT_FOREVER, WaitPolicy
from cidx.snapshots import copy_method, describe_collection, format_for_store
from cidx.state.migrations import MIGRATIONS as STATE_MIGRATIONS
from cidx.storage import StorageLocation, global_store_dir, open_store
from cidx.treecopy import CopyReport, copy_tree, remove_tree
from cidx.userdirs import data_dir

__all__ = ["backup_global"]


def backup_global(
    output: Path | None = None, keep: int | None = None, *, wait: WaitPolicy = WAIT_FOREVER
) -> BackupResult:
    """Back up the global store and its registry into one archive (see the module docstring)."""
    check_keep(keep)
    started = time.perf_counter()
    data, store = data_dir(), StorageLocation("global", global_store_dir())
    if not registry_exists() and not store.folder.is_dir():
        raise UsageError(
            f"There is no global store in {data}: no project there uses global storage "
            "mode. Run `cidx backup` in a project to back up its index, or set CIDX_DATA_DIR "
            "to the data folder that holds the global store."
        )
    folder, final = destination(output, "global")
    remove_stale(data, folder)
    scratch = data / f".backup.{os.getpid()}.tmp"
    try:
        private_dir(scratch / "collections")
        _copy_registry(registry_path(), scratch / "registry.db")
        with Registry(scratch / "registry.db") as copied:
            entries = {e.name: e for e in copied.entries()}
        copies, held, problems = _copy_collections(store, entries, scratch / "collections", wait)
        manifest, members = _manifest(scratch, copies, problems)
        written = write_archive(manifest, members, folder, final)
    except OSError as exc:
        if is_no_space(exc):
            raise disk_full(data) from None
        raise
    finally:
        remove_tree(scratch)
    return backup_result(
        written,
        manifest,
        keep=keep,
        root=str(data),
        started=started,
        paused=held,
        method=copy_method(copies),
    )


def _copy_registry(source: Path, target: Path) -> None:
    """The registry through SQLite's backup API, as one file without a WAL
    (an empty registry when the store has none yet)."""
    with contextlib.closing(sqlite3.connect(target)) as copy:
        if source.exists():
            with contextlib.closing(sqlite3.connect(source, timeout=30.0)) as live:
                live.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
    os.chmod(target, 0o600)


def _copy_collections(
    store: StorageLocation, entries: dict[str, RegistryEntry], into: Path, wait: WaitPolicy
) -> tuple[list[CopyReport], float, list[str]]:
    """Copy every collection of the store into `into`, each while its project
    is kept still: (the copies, seconds projects were held, notes)."""
    names = store.collections()
    copies: list[CopyReport] = []
    held = 0.0
    problems: list[str] = []
    for name in names:
        entry = entries.get(name)
        if entry is not None and entry.state == "incoming":
            problems.append(
                f"The collection {name} was being copied into the global store by a migration "
                f"of {entry.project_root}, and is not in this backup. Run `cidx backup "
                "--global` again once `cidx migrations` there shows it done."
            )
            continue
        root = Path(entry.project_root) if entry is not None else None
        if root is None or not uses_collection(root, name):
            # No project uses it: nothing writes it, nothing needs holding.
            copies.append(copy_tree(store.collection_dir(name), into / name))
            continue
        with paused(ProjectPaths(root), by="cidx backup", wait=wait):
            began = time.perf_counter()
            copies.append(copy_tree(store.collection_dir(name), into / name))
            held += time.perf_counter() - began
    return copies, held, problems


def _manifest(
    scratch: Path, copies: list[CopyReport], problems: list[str]
) -> tuple[ArchiveManifest, list[Member]]:
    """The manifest of the copied store (each copy opened for its count and
    sample query), and the members in the order they are written."""
    members = [Member.of(REGISTRY_MEMBER, scratch / "registry.db")]
    location = StorageLocation("global", scratch / "collections")
    fmt = format_for_store(location)
    collections: list[ArchivedCollection] = []
    copied = open_store(location)
    try:
        for name in copied.list_collections():
            described = describe_collection(copied, fmt, name)
            sample = (
                SampleQuery.of(described.sample_vector, described.sample_hits)
                if described.sample_vector
                else None
            )
            collections.append(
                ArchivedCollection(
                    name=name, points=described.points, format=fmt.name, sample=sample
                )
            )
    finally:
        copied.close()
    disk = os.lstat(members[0].path).st_blocks * 512
    for c in collections:
        disk += add_collection(members, c.name, location.collection_dir(c.name))
    manifest = ArchiveManifest(
        cidx_version=__version__,
        created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        kind="global",
        storage_mode="global",
        # The vectors this cidx makes: a collection of another model is an
        # older project's, rebuilt when that project next opens.
        model_id=model_id(),
        dim=EMBEDDING_DIM,
        config_schema=CONFIG_SCHEMA_VERSION,
        state_schema=len(STATE_MIGRATIONS),
        collections=collections,
        files=[ArchivedFile(path=m.name, size=m.size) for m in members],
        disk_bytes=disk,
        problems=problems,
    )
    return manifest, members
