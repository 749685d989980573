"""`cidx restore`: an archive of `cidx backup` back into a project, or into
the global store, safely.

Nothing in an archive is trusted and nothing of the current index is
touched until the restored one has proven itself:

1. the manifest is read first: an archive of a newer format, or of a newer
   config or state schema, is refused before a byte is extracted
   (`check_compatible`). Vectors of another embedding model (a backup taken
   before cidx shipped its current model) are restored as they are; the
   index then migrates to the bundled model when it is next opened, as any
   index of an older cidx does;
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

Where the collections go follows the backed-up project's storage mode. A
project in local mode gets them inside `.code-indexer/`. A project in
global mode restored at its own place gets them back into this user's
global store (`CIDX_DATA_DIR`): staged in `<data>/.restore.<pid>.tmp/`,
verified there, each swapped with the collection of the same name (which
must be this project's), and the project registered again. Restored at
another place, its collections could not keep their names in the global
store (those carry the project's place, and the original may still use
them), so it becomes a project in local mode, self-contained in its
`.code-indexer/`; `cidx init --storage global` moves it into the global
store. A backup of a server-mode index restored into a server-mode project
(or with `--storage server --qdrant-url URL`) is uploaded to the server,
into new collections; the old collection goes once the new index is in
place (`cidx.restore_server`). A backup of the whole global store (`cidx backup --global`) is
restored the same way into the data folder: the store folder swapped as
one, and the registry replaced through SQLite's backup API, with every
project registered there held (its lock taken) meanwhile. These second
steps (a collection or the registry, after the index folder or the store)
are not atomic with the first: a restore killed between them leaves the
restored collections with the older registry entries (or state database,
which reports the mismatch and `cidx index` repairs), never a lost one —
each project re-registers its collection when it next opens
(`cidx.registry.claim`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from cidx.archive import (
    CONFIG_MEMBER,
    REGISTRY_MEMBER,
    STATE_MEMBER,
    ArchiveManifest,
    read_archive,
    read_manifest,
)
from cidx.backup import CollectionCount
from cidx.compatibility import check_compatible
from cidx.config import Config, collection_name_for, load_config, save_config
from cidx.errors import ArchiveError, ConfigError, UsageError
from cidx.failpoints import failpoint
from cidx.fsutil import disk_full, free_bytes, fsync_folder, is_no_space, private_dir, swap_in
from cidx.owner.lock import pid_alive
from cidx.project import INDEX_DIR_NAME, ProjectPaths, project_paths, refuse_broad_root
from cidx.registry import Registry, belongs_to, registry_exists, registry_path, uses_collection
from cidx.restore_server import drop_new, drop_replaced, new_names, server_target
from cidx.service import WAIT_FOREVER, WaitPolicy, holding_lock
from cidx.snapshots import format_named, verify_collections
from cidx.state import StateDB
from cidx.storage import (
    STORE_DIR_NAME,
    StorageLocation,
    global_store_dir,
    open_store,
    server_location,
)
from cidx.store.server_settings import ServerSettings
from cidx.treecopy import remove_tree
from cidx.userdirs import data_dir

__all__ = ["RestoreResult", "relocate", "restore_archive"]

# Folders beside the index: the restored index being built, and the old one
# between the exchange and its deletion. Both end ".<pid>.tmp".
_INCOMING = "restore"
_OUTGOING = "replaced"
_TEMP = re.compile(
    "^" + re.escape(INDEX_DIR_NAME) + rf"\.(?:{_INCOMING}|{_OUTGOING})\.([0-9]+)\.tmp$"
)
# In the data folder: what a restore into the global store stages there.
_STAGING = re.compile(r"^\.restore\.([0-9]+)\.tmp$")
# Room needed beyond the files themselves: the state database's WAL, the
# config, the store's bookkeeping when it opens the shards.
_HEADROOM = 8 * 1024 * 1024


@dataclass(frozen=True)
class RestoreResult:
    archive: str
    # The project restored; for a backup of the global store, the data folder.
    root: str
    # Where the index went: the project's index folder, or the global store.
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
    kind: str = "project"
    # Where the restored collections are: "local", "global" or "server". A
    # project backed up in global mode and restored elsewhere is "local".
    storage_mode: str = "local"
    # Backed up in global mode at another place, or on a Qdrant server,
    # and restored in local mode: the storage mode it was backed up in.
    converted: bool = False
    converted_from: str | None = None
    # Damage the index had when it was backed up (each names its repair).
    problems: list[str] = field(default_factory=list)


def restore_archive(
    archive: Path,
    *,
    into: Path | None = None,
    force: bool = False,
    global_store: bool = False,
    wait: WaitPolicy = WAIT_FOREVER,
    storage: str | None = None,
    server: ServerSettings | None = None,
) -> RestoreResult:
    """Restore `archive` into the project at `into` (default: the current
    project), replacing its index only with `force` — or, for a backup of the
    global store, into this user's global store (see the module docstring).
    `storage` "local" keeps a server-mode backup's collections in the embedded
    store; `server` is the server to upload them to (`cidx.restore_server`)."""
    started = time.perf_counter()
    archive = archive.absolute()
    manifest = read_manifest(archive)
    check_compatible(manifest, archive)
    if manifest.kind == "global":
        if into is not None:
            raise UsageError(
                f"The backup {archive} is of a global store, which goes into your data folder, "
                "not into a project: run it without --into (set CIDX_DATA_DIR to restore it "
                "into another data folder)."
            )
        return _restore_global(archive, manifest, force, wait, started)
    if global_store:
        raise UsageError(
            f"The backup {archive} is of the project {manifest.project_root}, not of a global "
            f"store. Run `cidx restore {archive} --into DIR` (without --global) to restore it."
        )
    paths = _target(into)
    onto = server_target(paths, manifest, storage, server)
    in_global = (
        onto is None
        and manifest.storage_mode == "global"
        and manifest.project_root == str(paths.root)
    )
    # An index folder without any of these (left by a restore that failed, or
    # by a command that only took the lock) holds nothing to lose.
    had_index = any(p.exists() for p in (paths.config_file, paths.state_db, paths.qdrant_dir))
    if in_global:
        had_index = _check_global_names(manifest, paths.root) or had_index
    renames = _local_names(manifest, paths.root) if not in_global and onto is None else {}
    if had_index and not force:
        where = f" --into {into}" if into is not None else ""
        raise UsageError(
            f"{paths.root} has an index already ({paths.index_dir}). Run `cidx restore "
            f"{archive}{where} --force` to replace it (it stays in place until the restored "
            "index is verified), or restore into another folder with --into DIR."
        )
    with holding_lock(paths, "restore", wait):
        _remove_stale(paths.root, _TEMP)
        incoming = paths.root / f"{INDEX_DIR_NAME}.{_INCOMING}.{os.getpid()}.tmp"
        staging = data_dir() / f".restore.{os.getpid()}.tmp"
        restored = ProjectPaths(paths.root, incoming)
        mode = "global" if in_global else "server" if onto is not None else "local"
        replaced = _replaced_config(paths) if onto is not None else None
        swapped = False
        try:
            _room(paths.root, manifest)
            restored.create_index_dir()
            if in_global:
                _remove_stale(data_dir(), _STAGING)
                private_dir(staging)
                store = StorageLocation("global", staging / STORE_DIR_NAME)
            elif onto is not None:
                store = server_location(onto)
                renames = new_names(manifest, store)
            else:
                store = StorageLocation("local", incoming / STORE_DIR_NAME)
            own = {CONFIG_MEMBER: restored.config_file, STATE_MEMBER: restored.state_db}
            _extract(archive, manifest, own, incoming / "incoming", store, renames)
            relocate(restored, paths.root, mode, renames, server=onto)
            _verify(manifest, store, archive, renames)
            failpoint("restore.swap")
            if in_global:
                _swap_collections(manifest, store, staging)
            _swap(incoming, paths.index_dir, paths.root)
            swapped = True
            if in_global:
                _register(manifest, paths.root)
            if onto is not None:
                drop_replaced(paths, replaced, renames)
        except OSError as exc:
            if is_no_space(exc):
                raise disk_full(paths.root, manifest.disk_bytes) from None
            raise
        finally:
            if onto is not None and not swapped:
                drop_new(server_location(onto), renames)
            remove_tree(incoming)
            remove_tree(staging)
    moved = manifest.project_root if manifest.project_root != str(paths.root) else None
    return _result(
        archive,
        manifest,
        started,
        root=paths.root,
        index_dir=paths.index_dir,
        replaced=had_index,
        moved_from=moved,
        storage_mode=mode,
        renames=renames,
    )


def _result(
    archive: Path,
    manifest: ArchiveManifest,
    started: float,
    renames: dict[str, str] | None = None,
    **where: object,
) -> RestoreResult:
    return RestoreResult(
        archive=str(archive),
        root=str(where["root"]),
        index_dir=str(where["index_dir"]),
        replaced=bool(where["replaced"]),
        moved_from=where["moved_from"] if isinstance(where["moved_from"], str) else None,
        collections=[
            CollectionCount((renames or {}).get(c.name, c.name), c.points)
            for c in manifest.collections
        ],
        points=manifest.points,
        files=len(manifest.files),
        data_bytes=manifest.data_bytes,
        seconds=time.perf_counter() - started,
        kind=manifest.kind,
        storage_mode=str(where["storage_mode"]),
        converted=manifest.storage_mode != where["storage_mode"],
        converted_from=(
            manifest.storage_mode if manifest.storage_mode != where["storage_mode"] else None
        ),
        problems=list(manifest.problems),
    )


def relocate(
    paths: ProjectPaths,
    root: Path,
    storage_mode: str = "local",
    renames: dict[str, str] | None = None,
    server: ServerSettings | None = None,
) -> None:
    """Fix the index at `paths` (an index folder) for the project at `root`,
    its collections in `storage_mode` ("local": inside the index folder; for
    "server", on `server`) and renamed as `renames` says (the old name to the new).

    Nothing else in an index names its place: files are recorded relative to
    the root, and the collections are where the storage mode says. The config
    and state database are also brought forward to this cidx's schemas here.
    This is the one place a restore adapts an index to where it lands; a
    project restored into the global store is registered there once it is in
    place (`_register`).
    """
    config = load_config(paths)
    renames = renames or {}
    db = StateDB(paths.state_db, collection=config.collection)
    try:
        with db.transaction() as tx:
            for old, new in renames.items():
                db.manifest(old).rename(tx, new)
                db.aliases.retarget(tx, old, new)
    finally:
        db.close()
    update: dict[str, object] = {
        "project_root": str(root),
        "storage_mode": storage_mode,
        # A server's collections come back as points into the embedded store,
        # or onto the server they were uploaded to.
        "server": server if storage_mode == "server" else None,
        "collection": renames.get(config.collection, config.collection),
    }
    save_config(paths, config.model_copy(update=update))


def _replaced_config(paths: ProjectPaths) -> Config | None:
    """The config of the index a restore replaces, if it can be read."""
    try:
        return load_config(paths) if paths.config_file.exists() else None
    except ConfigError:
        return None


def _local_names(manifest: ArchiveManifest, root: Path) -> dict[str, str]:
    """The collections of a global-mode project restored in local mode, renamed
    as local mode names them. A global-mode backup holds exactly the project's
    own collection (`cidx.snapshots`): in the global store its name carries the
    old place, which a later move into the global store here must not meet."""
    if manifest.storage_mode != "global" or len(manifest.collections) != 1:
        return {}
    local = collection_name_for("local", manifest.project_id or "", manifest.model_id, root)
    return {manifest.collections[0].name: local}


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


def _remove_stale(folder: Path, pattern: re.Pattern[str]) -> None:
    """Delete what an earlier restore killed midway left in `folder`."""
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            match = pattern.match(entry.name)
            if match is not None and not pid_alive(int(match.group(1))):
                remove_tree(entry)


def _room(where: Path, manifest: ArchiveManifest) -> None:
    needed = manifest.disk_bytes + _HEADROOM
    free = free_bytes(where)
    if free < needed:
        raise disk_full(where, needed - free, free)


def _extract(
    archive: Path,
    manifest: ArchiveManifest,
    own: dict[str, Path],
    files: Path,
    store: StorageLocation,
    renames: dict[str, str] | None = None,
) -> None:
    """Extract and check every member of `archive`: its own members (config
    and state, or the registry) to the paths `own` gives, and each collection
    into `files/<name>/`, then installed by its format into `store` (under
    the name `renames` gives it, if any)."""
    made: set[Path] = set()

    def place(member: str) -> Path:
        if member in own:
            return own[member]
        # `read_archive` accepts only `collections/<listed name>/<relative path>`
        # without `..`, so the target stays inside `files`.
        _, name, *rest = member.split("/")
        target = files.joinpath(name, *rest)
        parent = target.parent
        if parent not in made:
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            made.add(parent)
        return target

    read_archive(archive, place=place)
    failpoint("restore.extracted")
    for collection in manifest.collections:
        folder = files / collection.name
        # A collection without points may come without files to make its folder.
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = (renames or {}).get(collection.name, collection.name)
        format_named(collection.format).install(folder, store, name)
    remove_tree(files)
    stores = [store.folder] if store.data_dir is not None and store.server is None else []
    for folder in {*(p.parent for p in own.values()), *stores}:
        fsync_folder(folder)


def _verify(
    manifest: ArchiveManifest,
    location: StorageLocation,
    archive: Path,
    renames: dict[str, str] | None = None,
) -> None:
    """The restored collections answer as the backed-up ones did (point
    counts and sample queries, `verify_collections`)."""
    renames = renames or {}
    expected = [
        c.model_copy(update={"name": renames.get(c.name, c.name)}) for c in manifest.collections
    ]
    store = open_store(location)
    try:
        problem = verify_collections(expected, store)
    finally:
        store.close()
    if problem is not None:
        raise ArchiveError(
            f"The index restored from {archive} does not check out: {problem}. The current "
            "index was left as it was. Use another backup (`cidx backup list` shows them)."
        )


def _swap(incoming: Path, index_dir: Path, root: Path) -> None:
    """Put `incoming` in the place of `index_dir` at once, then delete the old one."""
    outgoing = root / f"{INDEX_DIR_NAME}.{_OUTGOING}.{os.getpid()}.tmp"
    old = swap_in(incoming, index_dir, outgoing)
    failpoint("restore.swapped")
    if old is not None:
        remove_tree(old)


# -- a project in global storage mode -----------------------------------------


def _check_global_names(manifest: ArchiveManifest, root: Path) -> bool:
    """Whether the global store holds collections of the archive's already
    (which the restore would replace); UsageError when one of them belongs to
    another project, which a restore must never take."""
    store = StorageLocation("global", global_store_dir())
    present = [c.name for c in manifest.collections if store.holds(c.name)]
    if present and registry_exists():
        with Registry() as registry:
            for name in present:
                if not belongs_to(registry, name, root):
                    owner = registry.entry(name)
                    raise UsageError(
                        f"The collection {name} in the global store belongs to the project at "
                        f"{owner.project_root if owner else '?'}, which still uses it: a "
                        "restore never takes another project's collection. Restore into "
                        "another folder with --into DIR (the copy keeps its index inside it)."
                    )
    return bool(present)


def _swap_collections(manifest: ArchiveManifest, store: StorageLocation, staging: Path) -> None:
    """Put each verified collection of `store` (staged) into the global store."""
    target = StorageLocation("global", global_store_dir())
    private_dir(target.folder)
    for collection in manifest.collections:
        name = collection.name
        swap_in(store.collection_dir(name), target.collection_dir(name), staging / f"{name}.old")


def _register(manifest: ArchiveManifest, root: Path) -> None:
    """Record the restored collections in the registry as the project's at `root`."""
    config = load_config(ProjectPaths(root))
    with Registry() as registry:
        for collection in manifest.collections:
            registry.put(
                collection.name,
                root=root,
                project_id=config.identity.id,
                model=config.embedding.model_id,
            )


# -- the global store -----------------------------------------------------------


def _restore_global(
    archive: Path, manifest: ArchiveManifest, force: bool, wait: WaitPolicy, started: float
) -> RestoreResult:
    """Restore a backup of the global store into this user's data folder."""
    data, store_dir = data_dir(), global_store_dir()
    known = StorageLocation("global", store_dir).collections()
    entries = []
    if registry_exists():
        with Registry() as registry:
            entries = registry.entries()
    had_store = bool(known or entries)
    if had_store and not force:
        raise UsageError(
            f"{data} has a global store already ({len(known)} collections). Run `cidx restore "
            f"{archive} --force` to replace it as a whole (it stays in place until the "
            "restored one is verified), or restore into another data folder by setting "
            "CIDX_DATA_DIR."
        )
    private_dir(data)
    staging = data / f".restore.{os.getpid()}.tmp"
    with contextlib.ExitStack() as held:
        # Every project using the store now: none may have its shard open
        # while the store is exchanged under it.
        for entry in entries:
            root = Path(entry.project_root)
            if uses_collection(root, entry.name):
                held.enter_context(holding_lock(ProjectPaths(root), "restore", wait))
        _remove_stale(data, _STAGING)
        try:
            _room(data, manifest)
            private_dir(staging)
            store = StorageLocation("global", staging / STORE_DIR_NAME)
            own = {REGISTRY_MEMBER: staging / "registry.db"}
            _extract(archive, manifest, own, staging / "incoming", store)
            Registry(own[REGISTRY_MEMBER]).close()  # opens: a sound, known schema
            _verify(manifest, store, archive)
            failpoint("restore.swap")
            old = swap_in(store.folder, store_dir, staging / "replaced")
            _copy_registry(own[REGISTRY_MEMBER], registry_path())
            failpoint("restore.swapped")
            if old is not None:
                remove_tree(old)
        except OSError as exc:
            if is_no_space(exc):
                raise disk_full(data, manifest.disk_bytes) from None
            raise
        finally:
            remove_tree(staging)
    return _result(
        archive,
        manifest,
        started,
        root=data,
        index_dir=store_dir,
        replaced=had_store,
        moved_from=None,
        storage_mode="global",
    )


def _copy_registry(source: Path, target: Path) -> None:
    """Make `target` hold what the registry `source` holds, through SQLite's
    backup API: one transaction on `target`, safe beside its other readers."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target, timeout=30.0)) as dst,
    ):
        src.backup(dst)
    os.chmod(target, 0o600)
